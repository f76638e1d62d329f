"""Scan speed of `garrison scan` beside ModelScan and picklescan, on the same files in one run.

(a) a pickle of large numpy arrays (default 500 MB): Garrison wall time against `cat FILE > /dev/null`
    (bar: at most 2x), with ModelScan and picklescan measured beside it;
(b) a pickle of ~6 million small Python floats (about 50 MB, opcode-heavy): Garrison against ModelScan
    (bar: at least 5x faster), picklescan beside it.

Every tool runs as a CLI in its own process (Garrison from .venv, each peer from its .bench-env-<peer> venv made
by `make bench-env`); rounds are interleaved (A B C A B C ...) and medians quoted. Garrison's in-process library
time (`scan_paths`, imports already done) is reported too. The files are generated under /tmp and deleted.

With a warm page cache `cat` of 500 MB takes ~0.06 s here (memory speed), so `--cold` (root: drops the page cache
before every timed run of every tool) measures what the bar means: reading the file from disk.

Usage: .venv/bin/python bench/scan_bench.py [--rounds 5] [--array-mb 500] [--floats 6000000] [--only arrays|floats]
       [--cold]
"""

from __future__ import annotations

import argparse
import os
import pickle
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def make_arrays(path: Path, megabytes: int) -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    chunk = 50 * 2**20 // 4  # float32 values per 50 MB array
    arrays = {}
    remaining = megabytes * 2**20 // 4
    while remaining > 0:
        n = min(chunk, remaining)
        arrays[f"layer{len(arrays)}.weight"] = rng.standard_normal(n, dtype=np.float32)
        remaining -= n
    with path.open("wb") as handle:
        pickle.dump(arrays, handle, protocol=4)


def make_floats(path: Path, count: int) -> None:
    with path.open("wb") as handle:
        pickle.dump([i * 0.5 + 0.25 for i in range(count)], handle, protocol=4)


def commands(path: Path) -> dict[str, list[str]]:
    tools = {
        "cat": ["sh", "-c", f"cat '{path}' > /dev/null"],
        "garrison": [str(BIN / "garrison"), "scan", str(path), "--format", "json"],
        # the CLI's fixed cost: the same command on a 4-byte pickle beside the file
        "garrison (4-byte file)": [
            str(BIN / "garrison"),
            "scan",
            str(path.parent / "tiny.pkl"),
            "--format",
            "json",
        ],
        "modelscan": [str(ROOT / ".bench-env-modelscan/bin/modelscan"), "scan", "-p", str(path)],
        "picklescan": [str(ROOT / ".bench-env-picklescan/bin/picklescan"), "-p", str(path)],
    }
    return {name: cmd for name, cmd in tools.items() if name == "cat" or Path(cmd[0]).exists()}


def timed(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def drop_page_cache() -> None:
    """Make the next read come from disk (needs root; --cold only)."""
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def bench(path: Path, rounds: int, *, cold: bool = False) -> tuple[dict[str, float], dict[str, str]]:
    """Median seconds per tool, and what each tool said on its first run (exit code, last output line).
    ``cold``: the page cache is dropped before every timed run, so each tool reads the file from disk."""
    from garrison.supplychain import scan_paths

    (path.parent / "tiny.pkl").write_bytes(b"\x80\x04N.")
    cmds = commands(path)
    said: dict[str, str] = {}
    for name, cmd in cmds.items():  # warm the page cache and record each tool's answer once
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        lines = [line for line in (done.stdout + done.stderr).strip().splitlines() if line.strip()]
        last = lines[-1][:120] if lines and lines[-1] not in ("}", "]") else ""
        said[name] = f"exit {done.returncode}" + (f": {last}" if last else "")
    result = scan_paths([path])
    said["garrison (library)"] = (
        f"exit {result.exit_code()}: {len(result.findings)} findings, {len(result.incomplete)} incomplete"
    )
    samples: dict[str, list[float]] = {name: [] for name in [*cmds, "garrison (library)"]}
    for _ in range(rounds):
        for name, cmd in cmds.items():
            samples[name].append(
                timed(
                    lambda cmd=cmd: subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                )
            )
        samples["garrison (library)"].append(timed(lambda: scan_paths([path])))
    return {name: statistics.median(values) for name, values in samples.items()}, said


def report(title: str, path: Path, medians: dict[str, float], said: dict[str, str], base: str) -> None:
    print(f"\n### {title} ({path.stat().st_size / 2**20:.0f} MiB)\n")
    print(f"| tool | median | vs {base} | said |\n|---|---:|---:|---|")
    for name, seconds in medians.items():
        print(f"| {name} | {seconds:.2f} s | {seconds / medians[base]:.2f}x | {said.get(name, '')} |")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--array-mb", type=int, default=500)
    parser.add_argument("--floats", type=int, default=6_000_000)
    parser.add_argument("--only", choices=("arrays", "floats"))
    parser.add_argument(
        "--cold", action="store_true", help="drop the page cache before every timed run (root)"
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="garrison-scan-bench-", dir="/tmp"))
    ok = True
    try:
        if args.only in (None, "arrays"):
            path = work / "arrays.pkl"
            make_arrays(path, args.array_mb)
            medians, said = bench(path, args.rounds, cold=args.cold)
            cache = "cold page cache" if args.cold else "warm page cache"
            report(f"(a) pickle of large numpy arrays, {cache}", path, medians, said, "cat")
            ratio = medians["garrison"] / medians["cat"]
            met = ratio <= 2.0
            ok &= met
            print(f"\ngarrison scan / cat = {ratio:.2f} (bar <= 2): {'met' if met else 'NOT met'}")
            path.unlink()
        if args.only in (None, "floats"):
            path = work / "floats.pkl"
            make_floats(path, args.floats)
            medians, said = bench(path, args.rounds, cold=args.cold)
            report(f"(b) pickle of {args.floats:,} Python floats", path, medians, said, "garrison")
            if "modelscan" in medians:
                speedup = medians["modelscan"] / medians["garrison"]
                met = speedup >= 5.0
                ok &= met
                print(
                    f"\nModelScan / garrison scan = {speedup:.1f}x (bar >= 5x): {'met' if met else 'NOT met'}"
                )
            else:
                print("\nModelScan venv missing (make bench-env): bar (b) not measured")
                ok = False
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("\nall bars met" if ok else "\nsome bar NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
