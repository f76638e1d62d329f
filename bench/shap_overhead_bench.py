#!/usr/bin/env python3
"""Garrison's SHAP path beside a direct shap call, and the per-row latency of every attribution path.

Overhead (bar, issue #7: Garrison's SHAP path costs <= 1.1x a direct shap call on the same model and rows):
- data: ``make_classification(5000 + rows, 20, n_informative=10, random_state=0)``, the first 5000 rows train,
  the next ``rows`` (10,000) are explained, as in the peer measurement (shared/anchors/xai_bench.py);
- model: ``RandomForestClassifier(100 trees, max_depth=8)``, binary;
- A (peer): ``shap.TreeExplainer(model).shap_values(rows)`` (path-dependent, as the peer default);
- B (Garrison): ``garrison.explain.attributions(SklearnClassifier(model), rows)`` (the same explainer, plus
  predicting the target class of each row and picking its values);
- rounds interleaved A B A B ..., each after one warm-up of both; the figure is the median of per-round B/A.

Per-row latency (the guarded service calls an :class:`Explainer` built once, one row per call): median wall time
of one-row ``explain`` calls for each route, on the same 20-feature data (background 50 rows where one is used).

Usage: .venv/bin/python bench/shap_overhead_bench.py [--quick] [--rounds 3] [--rows 10000] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def _timed(fn: Any) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def _per_row_ms(explainer: Any, rows: Any, calls: int) -> float:
    explainer.explain(rows[:1])  # warm-up (builds the backend)
    times = [_timed(lambda i=i: explainer.explain(rows[i : i + 1]))[0] for i in range(calls)]
    return round(1e3 * statistics.median(times), 3)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--trees", type=int, default=100)
    ap.add_argument(
        "--quick", action="store_true", help="2,000 rows, 30 trees, 2 rounds, fewer latency calls"
    )
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    if a.quick:
        a.rows, a.trees, a.rounds = 2_000, 30, 2

    warnings.filterwarnings("ignore", message=r"The set_\w+ function will be deprecated")
    import numpy as np
    import shap
    import sklearn
    import torch
    from sklearn.datasets import make_classification
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    from garrison.adapters import InputSpec, SklearnClassifier, TorchClassifier
    from garrison.explain import Explainer, attributions

    torch.set_num_threads(1)
    x, y = make_classification(n_samples=5_000 + a.rows, n_features=20, n_informative=10, random_state=0)
    xtr, ytr, xex = x[:5_000], y[:5_000], x[5_000:]
    forest = RandomForestClassifier(n_estimators=a.trees, max_depth=8, random_state=0, n_jobs=1).fit(xtr, ytr)
    model = SklearnClassifier(forest)

    def direct() -> Any:
        return shap.TreeExplainer(forest).shap_values(xex)

    def garrison() -> Any:
        return attributions(model, xex)

    # warm-up, and a check that both compute the same numbers
    sv = direct()
    ours = garrison()
    pred = forest.predict_proba(xex).argmax(axis=1)
    same = bool(np.allclose(ours.values, sv[np.arange(len(xex)), :, pred], atol=1e-12))
    rounds: list[dict[str, float]] = []
    for r in range(a.rounds):
        ta, _ = _timed(direct)
        tb, _ = _timed(garrison)
        rounds.append({"direct_s": round(ta, 3), "garrison_s": round(tb, 3), "ratio": round(tb / ta, 4)})
        print(f"round {r}: direct {ta:.3f} s, garrison {tb:.3f} s, ratio {tb / ta:.4f}", flush=True)
    ratio = statistics.median(x["ratio"] for x in rounds)

    # per-row latency of each route, Explainer built once
    calls = 10 if a.quick else 30
    bg = xtr[:50]
    rows = xex[:calls]
    torch.manual_seed(0)
    mlp = torch.nn.Sequential(torch.nn.Linear(20, 64), torch.nn.ReLU(), torch.nn.Linear(64, 2))
    net = TorchClassifier(mlp, input_spec=InputSpec((20,)))
    gb3 = GradientBoostingClassifier(n_estimators=30, random_state=0).fit(xtr, ytr % 2 + (xtr[:, 0] > 1))
    linear = SklearnClassifier(LogisticRegression(max_iter=1000).fit(xtr, ytr))
    routes: dict[str, Any] = {
        f"shap.tree (RandomForest {a.trees} trees, depth 8)": Explainer(model),
        "shap.linear (LogisticRegression)": Explainer(linear, background=bg),
        "captum.integrated-gradients (MLP 20-64-2, 50 steps)": Explainer(net),
        "captum.saliency (MLP 20-64-2)": Explainer(net, method="saliency"),
        "captum.deeplift (MLP 20-64-2)": Explainer(net, method="deeplift"),
        "shap.permutation (GB 3-class, 30 trees; 500 evals x 50 background)": Explainer(
            SklearnClassifier(gb3), background=bg
        ),
        "shap.permutation (GB 3-class, budget 0.05 s)": Explainer(
            SklearnClassifier(gb3), background=bg[:20], budget_s=0.05
        ),
    }
    latency: dict[str, float] = {}
    for name, explainer in routes.items():
        n_calls = min(calls, 5) if "permutation (GB 3-class, 30" in name else calls
        latency[name] = _per_row_ms(explainer, rows, n_calls)
        print(f"per row: {name}: {latency[name]} ms", flush=True)

    out = {
        "shap": shap.__version__,
        "sklearn": sklearn.__version__,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "loadavg_1m": round(os.getloadavg()[0], 2),
        "rows": a.rows,
        "trees": a.trees,
        "same_values": same,
        "rounds": rounds,
        "median_ratio_garrison_over_direct": round(ratio, 4),
        "bar": "<= 1.1",
        "per_row_ms": latency,
    }
    print(json.dumps(out, indent=1))
    print(
        f"median ratio Garrison / direct shap: {ratio:.4f} (bar <= 1.1) -> {'PASS' if ratio <= 1.1 else 'FAIL'}"
    )
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
