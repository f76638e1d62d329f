#!/usr/bin/env python3
"""Drift-test speed: Garrison's per-column KS against a stored reference vs scipy and Evidently.

Data (as in the peers' anchor benchmark): a reference and a current table of ``--rows`` x ``--cols`` standard
normal float64 values (seed 7); columns 0-3 of the current table are mean-shifted by 0.02, 0.05, 0.1 and 0.25
standard deviations.

Implementations, each run in its own fresh process (so that peak RSS is attributable), round-robin for
``--rounds`` rounds (A B C, A B C, ...) so that background load hits all alike:

  garrison       DriftReference.fit(ref) (timed apart: the one-time fit), then ks_columns(reference, cur): the
                 per-column two-sample KS statistics and p-values (equal to scipy's); the time also reported for
                 detect_drift (KS + Wasserstein + PSI + BH + linear MMD) as ``full_s``
  scipy          scipy.stats.ks_2samp(ref[:, j], cur[:, j]) for every column
  evidently-ks   Evidently Report([DataDriftPreset(method="ks")]) on pandas frames, in its own venv
                 (evidently 0.7.x needs pandas < 3: see bench/requirements-evidently.txt)

Columns "flagged" by a KS implementation: raw p-value <= 0.05 per column (Evidently's rule with method="ks").
Garrison's own drift rule (BH-adjusted p <= 0.05 and Wasserstein/std >= 0.1) is reported beside it.

Usage:
  .venv/bin/python bench/drift_bench.py --rows 1000000 --rounds 3 \\
      --evidently-python .bench-env-evidently/bin/python [--json-out drift_bench.json]
  .venv/bin/python bench/drift_bench.py --impl garrison --rows 100000     # one implementation, one process
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("DO_NOT_TRACK", "1")  # Evidently telemetry opt-out

SHIFTS = {0: 0.02, 1: 0.05, 2: 0.1, 3: 0.25}  # column -> mean shift (in std units)
IMPLS = ["garrison", "scipy", "evidently-ks"]
ALPHA = 0.05


def make_data(rows: int, cols: int, seed: int = 7):  # type: ignore[no-untyped-def]
    import numpy as np

    rng = np.random.default_rng(seed)
    ref = rng.standard_normal((rows, cols))
    cur = rng.standard_normal((rows, cols))
    for c, s in SHIFTS.items():
        if c < cols:
            cur[:, c] += s
    return ref, cur


def maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# ---------------------------------------------------------------- implementations (one per process)
def run_garrison(ref, cur) -> dict:  # type: ignore[no-untyped-def]
    from garrison.monitor import DriftReference, detect_drift, ks_columns

    t0 = time.perf_counter()
    reference = DriftReference.fit(ref)
    fit_s = time.perf_counter() - t0
    del ref  # a monitor keeps the fitted reference, not the raw table
    t0 = time.perf_counter()
    stat, p = ks_columns(reference, cur)
    ks_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    report = detect_drift(reference, cur, alpha=ALPHA)
    full_s = time.perf_counter() - t0
    return {
        "time_s": ks_s,
        "fit_s": fit_s,
        "full_s": full_s,
        "statistic": [float(s) for s in stat],
        "p_value": [float(v) for v in p],
        "flagged": [j for j, v in enumerate(p) if v <= ALPHA],
        "garrison_drifted": [int(n[1:]) for n in report.drifted_columns],
    }


def run_scipy(ref, cur) -> dict:  # type: ignore[no-untyped-def]
    from scipy.stats import ks_2samp

    t0 = time.perf_counter()
    results = [ks_2samp(ref[:, j], cur[:, j]) for j in range(ref.shape[1])]
    elapsed = time.perf_counter() - t0
    p = [float(r.pvalue) for r in results]
    return {
        "time_s": elapsed,
        "statistic": [float(r.statistic) for r in results],
        "p_value": p,
        "flagged": [j for j, v in enumerate(p) if v <= ALPHA],
    }


def run_evidently_ks(ref, cur) -> dict:  # type: ignore[no-untyped-def]
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    names = [f"f{j}" for j in range(ref.shape[1])]
    ref_df = pd.DataFrame(ref, columns=names)
    cur_df = pd.DataFrame(cur, columns=names)
    del ref, cur
    t0 = time.perf_counter()
    dd = DataDefinition(numerical_columns=names)
    ref_ds = Dataset.from_pandas(ref_df, data_definition=dd)
    cur_ds = Dataset.from_pandas(cur_df, data_definition=dd)
    snapshot = Report([DataDriftPreset(method="ks")]).run(cur_ds, ref_ds)
    elapsed = time.perf_counter() - t0
    flagged, p_values = [], {}
    for m in snapshot.dict()["metrics"]:
        cfg = m.get("config", {})
        if cfg.get("type", "").endswith("ValueDrift"):
            col, val = cfg.get("column"), m.get("value")
            if val is None or col is None:
                continue
            thr = cfg.get("threshold")
            p_values[int(col[1:])] = float(val)
            if val <= (thr if thr is not None else ALPHA):
                flagged.append(int(col[1:]))
    return {
        "time_s": elapsed,
        "p_value": [p_values.get(j) for j in range(len(names))],
        "flagged": sorted(flagged),
    }


def bench_one(impl: str, rows: int, cols: int) -> dict:
    ref, cur = make_data(rows, cols)
    input_mib = (ref.nbytes + cur.nbytes) / 2**20
    rss_data = maxrss_mib()
    t0 = time.perf_counter()  # import cost, reported apart
    if impl == "garrison":
        import scipy.special
        import scipy.stats

        import garrison.monitor  # noqa: F401
    elif impl == "evidently-ks":
        import evidently
        import evidently.presets  # noqa: F401
    else:
        import scipy.stats  # noqa: F401
    import_s = time.perf_counter() - t0
    runner = {"garrison": run_garrison, "scipy": run_scipy, "evidently-ks": run_evidently_ks}[impl]
    out = runner(ref, cur)
    del ref, cur
    peak = maxrss_mib()
    return {
        "impl": impl,
        "rows": rows,
        "cols": cols,
        **{k: round(v, 4) if isinstance(v, float) and k.endswith("_s") else v for k, v in out.items()},
        "import_s": round(import_s, 3),
        "input_mib": round(input_mib, 1),
        "rss_after_data_mib": round(rss_data, 1),
        "peak_rss_mib": round(peak, 1),
        "peak_over_input": round(peak / input_mib, 2),
    }


# ---------------------------------------------------------------- the driver
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--impl", default="all", help=f"one of {IMPLS} or 'all'")
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--cols", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--evidently-python", default=None, help="python of the Evidently venv (skipped without)")
    ap.add_argument("--timeout", type=int, default=1500, help="per-process limit, seconds")
    ap.add_argument("--json-out", default=None)
    a = ap.parse_args()

    if a.impl != "all":
        print(json.dumps(bench_one(a.impl, a.rows, a.cols)), flush=True)
        return

    impls = [i for i in IMPLS if i != "evidently-ks" or a.evidently_python]
    runs: dict[str, list[dict]] = {i: [] for i in impls}
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parent.parent / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    for rnd in range(a.rounds):
        for impl in impls:
            py = a.evidently_python if impl == "evidently-ks" else sys.executable
            cmd = [
                py,
                os.path.abspath(__file__),
                "--impl",
                impl,
                "--rows",
                str(a.rows),
                "--cols",
                str(a.cols),
            ]
            load = os.getloadavg()[0]
            try:
                cp = subprocess.run(cmd, capture_output=True, text=True, timeout=a.timeout, env=env)
            except subprocess.TimeoutExpired:
                print(f"{impl}: timed out after {a.timeout}s", flush=True)
                continue
            lines = [ln for ln in cp.stdout.splitlines() if ln.startswith("{")]
            if cp.returncode != 0 or not lines:
                print(f"{impl}: failed rc={cp.returncode}\n{cp.stderr[-2000:]}", flush=True)
                continue
            r = json.loads(lines[-1]) | {"round": rnd, "loadavg_1m_before": round(load, 2)}
            runs[impl].append(r)
            brief = {k: v for k, v in r.items() if k not in ("statistic", "p_value")}
            print(json.dumps(brief), flush=True)

    summary: dict[str, dict] = {}
    for impl, rs in runs.items():
        if rs:
            summary[impl] = {
                "median_s": round(statistics.median(r["time_s"] for r in rs), 3),
                "times_s": [r["time_s"] for r in rs],
                "peak_rss_mib": max(r["peak_rss_mib"] for r in rs),
                "peak_over_input": max(r["peak_over_input"] for r in rs),
                "input_mib": rs[0]["input_mib"],
                "flagged": rs[-1]["flagged"],
            }
    g = runs.get("garrison", [])
    if g:
        summary["garrison"]["fit_s"] = round(statistics.median(r["fit_s"] for r in g), 3)
        summary["garrison"]["full_s"] = round(statistics.median(r["full_s"] for r in g), 3)
        summary["garrison"]["garrison_drifted"] = g[-1]["garrison_drifted"]

    def ratios(num: str, den: str) -> list[float]:
        by_round = {r["round"]: r["time_s"] for r in runs.get(den, [])}
        return [r["time_s"] / by_round[r["round"]] for r in runs.get(num, []) if r["round"] in by_round]

    print("\nimpl            median_s  peak_RSS_MiB  peak/input  flagged (p<=0.05)")
    for impl, s in summary.items():
        print(
            f"{impl:15s} {s['median_s']:8.3f}  {s['peak_rss_mib']:12.0f}  {s['peak_over_input']:10.2f}  {s['flagged']}"
        )
    if g:
        print(
            f"garrison fit (once): {summary['garrison']['fit_s']:.3f} s; detect_drift (KS+W1+PSI+BH+MMD): "
            f"{summary['garrison']['full_s']:.3f} s; drifted by Garrison's rule: {summary['garrison']['garrison_drifted']}"
        )
    checks: dict[str, object] = {}
    if g and runs.get("scipy"):
        import numpy as np

        gs, ss = g[-1], runs["scipy"][-1]
        checks["max_abs_diff_statistic"] = float(
            np.max(np.abs(np.subtract(gs["statistic"], ss["statistic"])))
        )
        checks["max_abs_diff_p_value"] = float(np.max(np.abs(np.subtract(gs["p_value"], ss["p_value"]))))
        rr = ratios("garrison", "scipy")
        checks["garrison_over_scipy_per_round"] = [round(x, 3) for x in rr]
        checks["garrison_over_scipy_median"] = round(statistics.median(rr), 3)
    if g and runs.get("evidently-ks"):
        rr = ratios("evidently-ks", "garrison")
        checks["evidently_over_garrison_per_round"] = [round(x, 1) for x in rr]
        checks["evidently_over_garrison_median"] = round(statistics.median(rr), 1)
        checks["same_columns_flagged_as_evidently"] = g[-1]["flagged"] == runs["evidently-ks"][-1]["flagged"]
    for k, v in checks.items():
        print(f"{k}: {v}")
    if a.json_out:
        Path(a.json_out).write_text(
            json.dumps({"summary": summary, "checks": checks, "runs": runs}, indent=1)
        )


if __name__ == "__main__":
    main()
