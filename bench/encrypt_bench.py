"""Encryption at rest: streaming ``encrypt_file`` / ``decrypt_file`` against the floor, one in-memory AES-GCM call.

The floor is ``AESGCM(key).encrypt(nonce, data, None)`` of ``cryptography`` over the whole file already in memory
(no I/O at all). ``encrypt_file`` reads the file, encrypts it chunk by chunk, writes a temporary file, fsyncs it
and renames it. Rounds are interleaved (the floor, then encrypt, decrypt, both without fsync, in an order rotating by round) and the bar uses the median of the
per-round throughput ratios. Peak memory is the ``ru_maxrss`` of a child process that only runs ``encrypt_file``,
at two file sizes, to show it does not grow with the file.

    .venv/bin/python bench/encrypt_bench.py --rounds 5
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

BAR = 0.8
MIB = 1024 * 1024

# VmHWM (peak RSS of this process image) rather than ru_maxrss, which Linux carries over exec from the parent.
_CHILD = """
import resource, sys
def peak():
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
from garrison.protect import KeyEncryptionKey, encrypt_file, generate_key
before = peak()
encrypt_file(sys.argv[1], sys.argv[2], KeyEncryptionKey.from_text(generate_key()), chunk_size=int(sys.argv[3]))
print(before, peak())
"""


def _write_random(path: Path, size: int) -> None:
    with open(path, "wb") as fh:
        left = size
        while left:
            block = os.urandom(min(left, 16 * MIB))
            fh.write(block)
            left -= len(block)


def _peak_rss(src: Path, dst: Path, chunk_size: int) -> tuple[int, int]:
    """(peak RSS after imports, peak RSS after encrypting) in KiB of a child that only encrypts ``src``."""
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(src), str(dst), str(chunk_size)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    dst.unlink()
    return int(out[0]), int(out[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--chunk-size", type=int, default=0, help="bytes per chunk (default: the library's)")
    parser.add_argument("--tmp", default=None, help="directory for the test files (default: the system temp)")
    args = parser.parse_args()

    import cryptography
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from garrison.protect import (
        DEFAULT_CHUNK_SIZE,
        KeyEncryptionKey,
        decrypt_file,
        encrypt_file,
        generate_key,
    )

    chunk = args.chunk_size or DEFAULT_CHUNK_SIZE
    size = args.size_mib * MIB
    work = Path(tempfile.mkdtemp(prefix="garrison-encbench-", dir=args.tmp))
    try:
        src, enc, dec = work / "plain.bin", work / "plain.bin.enc", work / "plain.out"
        _write_random(src, size)
        small = work / "small.bin"
        _write_random(small, 64 * MIB)
        data = src.read_bytes()
        key = KeyEncryptionKey.from_text(generate_key())
        aead, nonce = AESGCM(AESGCM.generate_key(bit_length=256)), os.urandom(12)

        floor_t, enc_t, dec_t, nosync_t, dec_nosync_t = [], [], [], [], []
        sealed = work / "sealed.enc"  # decrypt's input, made once
        encrypt_file(src, sealed, key, chunk_size=chunk)

        def timed(step: Callable[[], object], into: list[float], *remove: Path) -> None:
            for path in remove:  # freeing the previous output's pages is not part of the step
                path.unlink(missing_ok=True)
            # each timed step starts with no dirty pages of the one before (an untimed `sync`): on this VM's
            # disk, writeback left by one step otherwise lands, seconds long, on whichever step comes next
            os.sync()
            t = time.perf_counter()
            step()
            into.append(time.perf_counter() - t)

        for r in range(args.rounds):
            t = time.perf_counter()
            ct = aead.encrypt(nonce, data, None)
            floor_t.append(time.perf_counter() - t)
            del ct
            steps = [
                lambda: timed(lambda: encrypt_file(src, enc, key, chunk_size=chunk), enc_t, enc),
                lambda: timed(lambda: decrypt_file(sealed, dec, key), dec_t, dec),
                lambda: timed(lambda: decrypt_file(sealed, dec, key, durable=False), dec_nosync_t, dec),
                lambda: timed(
                    lambda: encrypt_file(src, enc, key, chunk_size=chunk, durable=False), nosync_t, enc
                ),
            ]
            # a durable write right after another one is slower on this VM: rotate which step goes first
            for step in steps[r % 4 :] + steps[: r % 4]:
                step()
        assert enc.stat().st_size > size
        os.sync()
        del data

        rss_small = _peak_rss(small, work / "small.enc", chunk)
        rss_big = _peak_rss(src, work / "big.enc", chunk)

        enc_ratio = statistics.median(f / e for f, e in zip(floor_t, enc_t, strict=True))
        dec_ratio = statistics.median(f / d for f, d in zip(floor_t, dec_t, strict=True))
        nosync_ratio = statistics.median(f / e for f, e in zip(floor_t, nosync_t, strict=True))
        dec_nosync_ratio = statistics.median(f / d for f, d in zip(floor_t, dec_nosync_t, strict=True))

        def gbps(times: list[float]) -> str:
            return f"{size / statistics.median(times) / 1e9:.2f}"

        print(
            f"cryptography {cryptography.__version__}, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
            f"{args.size_mib} MiB file, chunk {chunk} B, {args.rounds} interleaved rounds, medians"
        )
        print()
        print("| operation | median time (s) | throughput (GB/s) | ratio to floor (median of rounds) |")
        print("| --- | --- | --- | --- |")
        print(
            f"| floor: one in-memory `AESGCM.encrypt` | {statistics.median(floor_t):.3f} | {gbps(floor_t)} | 1.00 |"
        )
        print(
            f"| `encrypt_file` (read, encrypt, write, fsync) | {statistics.median(enc_t):.3f} | {gbps(enc_t)} | {enc_ratio:.2f} |"
        )
        print(
            f"| `decrypt_file` (read, verify, write, fsync) | {statistics.median(dec_t):.3f} | {gbps(dec_t)} | {dec_ratio:.2f} |"
        )
        print(
            f"| `encrypt_file(durable=False)` (no fsync) | {statistics.median(nosync_t):.3f} | {gbps(nosync_t)} "
            f"| {nosync_ratio:.2f} |"
        )
        print(
            f"| `decrypt_file(durable=False)` (no fsync) | {statistics.median(dec_nosync_t):.3f} | "
            f"{gbps(dec_nosync_t)} | {dec_nosync_ratio:.2f} |"
        )
        print()
        print(
            "per-round encrypt/floor ratios: "
            + ", ".join(f"{f / e:.2f}" for f, e in zip(floor_t, enc_t, strict=True))
        )
        print()
        print("| file size | child RSS after imports (MiB) | child peak RSS during `encrypt_file` (MiB) |")
        print("| --- | --- | --- |")
        for label, (base, peak) in (("64 MiB", rss_small), (f"{args.size_mib} MiB", rss_big)):
            print(f"| {label} | {base / 1024:.1f} | {peak / 1024:.1f} |")
        print()
        verdict = "PASS" if enc_ratio >= BAR else "FAIL"
        print(
            f"bar: encrypt throughput >= {BAR}x the floor: {enc_ratio:.2f}x -> {verdict}; "
            f"memory flat: peak RSS grows {(rss_big[1] - rss_small[1]) / 1024:+.1f} MiB from 64 MiB to "
            f"{args.size_mib} MiB"
        )
        print(f"(this process peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
