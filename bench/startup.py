"""Start-up cost of `garrison --help` over a bare interpreter (`python -c pass`), interleaved rounds, medians.

Bar (issue #2): the median difference is at most 0.3 s. Also asserts that --help imports none of the heavy modules.
Usage: .venv/bin/python bench/startup.py [--rounds 15]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HEAVY = ("numpy", "pandas", "sklearn", "torch", "scipy", "onnxruntime")


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    python = sys.executable
    garrison = shutil.which("garrison", path=str(Path(python).parent)) or "garrison"
    bare, cli = [], []
    for _ in range(args.rounds):  # A B A B ...
        bare.append(timed([python, "-c", "pass"]))
        cli.append(timed([garrison, "--help"]))
    diffs = [c - b for b, c in zip(bare, cli, strict=True)]
    probe = f"import sys, garrison.cli; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    loaded = subprocess.run([python, "-c", probe], check=True, capture_output=True, text=True).stdout.strip()
    print(f"python -c pass   median {statistics.median(bare) * 1000:7.1f} ms")
    print(f"garrison --help  median {statistics.median(cli) * 1000:7.1f} ms")
    print(f"difference       median {statistics.median(diffs) * 1000:7.1f} ms (bar: <= 300 ms)")
    print(f"heavy modules imported by garrison.cli: {loaded or 'none'}")
    ok = statistics.median(diffs) <= 0.3 and not loaded
    print("bar met" if ok else "bar NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
