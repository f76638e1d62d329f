#!/usr/bin/env python3
"""Slices: how often `find_slices` reports a significant slice on a model whose errors are random (false
discoveries after Benjamini-Hochberg), and how often it finds a planted weak region first (power).

Generated data: 1,500 rows; region (4 values), age, premium (bool), children (0-3), x1, x2 (22 slices per run).
Usage: .venv/bin/python bench/slices_power.py   (about 20 s)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from garrison.explain.slices import find_slices

RUNS = 200


def frame(n: int, rng: np.random.Generator) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "region": rng.choice(["north", "south", "east", "west"], size=n),
            "age": rng.normal(40, 12, size=n),
            "premium": rng.random(n) < 0.3,
            "children": rng.integers(0, 4, size=n),
            "x1": rng.normal(size=n),
            "x2": rng.exponential(size=n),
        }
    )


def main() -> None:
    start = time.perf_counter()
    significant = raw = 0
    for seed in range(RUNS):
        rng = np.random.default_rng(seed)
        report = find_slices(rng.random(1500) < 0.85, frame(1500, rng))
        significant += bool(report.significant)
        raw += any(s.p_value <= 0.05 and s.difference < 0 for s in report.slices)
    per_run = (time.perf_counter() - start) / RUNS * 1000
    print(f"random errors: runs with a BH-significant slice {significant}/{RUNS}; "
          f"with a raw p <= 0.05 worse slice {raw}/{RUNS}; {per_run:.1f} ms per run")  # fmt: skip
    significant = 0
    for seed in range(RUNS):
        rng = np.random.default_rng(seed)
        significant += bool(find_slices(rng.normal(size=1500), frame(1500, rng)).significant)
    print(f"random float metric: runs with a significant slice {significant}/{RUNS}")
    for error in (0.15, 0.20, 0.30):
        hits = 0
        for seed in range(100):
            rng = np.random.default_rng(1000 + seed)
            data = frame(1500, rng)
            east = (data["region"] == "east").to_numpy()
            correct = rng.random(1500) < 0.90
            correct[east] = rng.random(int(east.sum())) < 1 - error
            first = [(s.feature, s.label) for s in find_slices(correct, data).significant][:1]
            hits += first == [("region", "east")]
        print(f"planted: east error {error:.2f} vs 0.10 elsewhere: found first and significant {hits}/100")


if __name__ == "__main__":
    main()
