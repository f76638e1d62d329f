#!/usr/bin/env python3
"""The figures in docs/detectors.md: false-alarm and detection rates of the per-request detectors, the number of
queries after which QueryMonitor flags two extraction scripts, benign traffic's false alarms, and per-row costs.

Setups (all data bundled with scikit-learn, everything seeded):
- OOD: breast cancer (400 reference rows, 169 held out); a 20-feature heavy-tailed synthetic set (20 000
  reference rows, 50 000 held out) over 5 seeds; shifted rows, digits rows (first 30 pixels) and uniform rows
  within the reference bounds as the foreign traffic.
- Adversarial: a 64-32-10 MLP on digits (same as tests/adapters/models.py), 200 clean test rows calibrate,
  250 are attacked with Garrison's FGSM and PGD (L∞ 0.1) and Square (L∞ 0.15, 300 queries); rates are over the
  successful adversarial examples. Needs torch.
- Probing: logistic regression on breast cancer (200 train, 140 calibrate the monitor, 229 replayed); the two
  extraction scripts of tests/monitor/test_mon_probing.py over 10 attacker seeds, one query per request; benign
  replay: 14 keys each sending the 229 held-out rows in their own random order, over 5 seeds.
- Timings: ``timeit`` best of 5 on 20 synthetic features, batches of 1, 128 and 1000 rows (model time excluded;
  the query monitor's with a full 128-row history per key).

Usage:  .venv/bin/python bench/probing_bench.py [--json out.json] [--no-torch]
"""

from __future__ import annotations

import argparse
import json
import sys
import timeit
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from garrison.adapters import InputSpec, SklearnClassifier
from garrison.monitor.detectors import MarginDetector, OODDetector
from garrison.monitor.probing import QueryMonitor
from garrison.monitor.squeezing import BitDepth, FeatureSqueezing
from garrison.testing.extraction import boundary_queries, uniform_queries


def cancer() -> tuple[np.ndarray, np.ndarray]:
    x, y = load_breast_cancer(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))
    return x[order], y[order]


def ood_figures() -> dict[str, Any]:
    x, _ = cancer()
    ref, held = x[:400], x[400:]
    det = OODDetector().fit(ref)
    sd = ref.std(axis=0)
    shifted = held + 3 * sd * np.where(np.arange(30) % 2 == 0, 1, -1)
    uniform = np.random.default_rng(0).uniform(ref.min(axis=0), ref.max(axis=0), size=(1000, 30))
    out: dict[str, Any] = {
        "cancer_held_out_fpr": float(det.flag(held).mean()),
        "cancer_n_held_out": len(held),
        "cancer_shifted_tpr": float(det.flag(shifted).mean()),
        "digits_rows_tpr": float(det.flag(load_digits().data[:, :30]).mean()),
        "uniform_in_bounds_tpr": float(det.flag(uniform).mean()),
    }
    rates = []
    for seed in range(5):
        rng = np.random.default_rng(seed)
        mixing = rng.normal(size=(20, 20))
        ref20 = rng.standard_t(df=8, size=(20000, 20)) @ mixing
        held20 = rng.standard_t(df=8, size=(50000, 20)) @ mixing
        rates.append(float(OODDetector(fpr=0.01).fit(ref20).flag(held20).mean()))
    out["synthetic20_fpr_at_1pct"] = rates
    return out


def adversarial_figures() -> dict[str, Any]:
    import torch
    from torch import nn

    from garrison.adapters import TorchClassifier
    from garrison.robustness import FGSM, PGD, Square, ThreatModel

    bunch = load_digits()
    xd = (bunch.data / 16.0).astype(np.float32)
    x_train, x_test, y_train, y_test = train_test_split(
        xd, bunch.target.astype(np.int64), test_size=0.25, random_state=0, stratify=bunch.target
    )
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    gen = torch.Generator().manual_seed(0)
    xt, yt = torch.as_tensor(x_train), torch.as_tensor(y_train)
    opt = torch.optim.Adam(module.parameters(), lr=1e-2)
    for _ in range(15):
        order = torch.randperm(len(xt), generator=gen)
        for start in range(0, len(xt), 64):
            idx = order[start : start + 64]
            opt.zero_grad()
            nn.functional.cross_entropy(module(xt[idx]), yt[idx]).backward()
            opt.step()
    model = TorchClassifier(module.eval(), input_spec=InputSpec((64,)))
    cal, x, y = x_test[:200], x_test[200:], y_test[200:]
    squeezing = FeatureSqueezing(model, [BitDepth(2)]).fit(cal)
    margins = MarginDetector().fit(model.predict_proba(cal))
    out: dict[str, Any] = {
        "clean_accuracy": float((model.predict_proba(x).argmax(1) == y).mean()),
        "squeezing_clean_fpr": float(squeezing.flag(x).mean()),
        "margin_clean_fpr": float(margins.flag(model.predict_proba(x)).mean()),
        "n_clean": len(x),
    }
    for attack, eps in ((FGSM(), 0.1), (PGD(steps=20), 0.1), (Square(queries=300), 0.15)):
        result = attack.run(model, x, y, ThreatModel("linf", eps), seed=0)
        adv = result.x_adv[result.success]
        out[attack.name] = {
            "eps": eps,
            "attack_success": float(result.success.mean()),
            "n_adversarial": len(adv),
            "squeezing_tpr": float(squeezing.flag(adv).mean()),
            "margin_tpr": float(margins.flag(model.predict_proba(adv)).mean()),
        }
    return out


def probing_figures() -> dict[str, Any]:
    x, y = cancer()
    train, cal, replay = x[:200], x[200:340], x[340:]
    model = SklearnClassifier(
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(train, y[:200])
    )
    ood = OODDetector().fit(x[:340])
    lo, hi = x.min(axis=0), x.max(axis=0)

    def fresh() -> QueryMonitor:
        return QueryMonitor(ood=ood).fit(cal, model.predict_proba(cal))

    def first_flag(queries: Iterator[np.ndarray]) -> tuple[int, list[str]]:
        mon = fresh()
        for n, row in enumerate(queries, 1):
            signals = mon.observe("attacker", row, model.predict_proba(row[None, :]), now=float(n))
            if signals:
                return n, [s.kind for s in signals]
            if n >= 5000:
                break
        return -1, []

    out: dict[str, Any] = {}
    for name, make in (
        ("uniform", lambda s: uniform_queries(lo, hi, seed=s)),
        ("boundary", lambda s: boundary_queries(model, cal[:10], hi - lo, seed=s)),
    ):
        runs = [first_flag(make(seed)) for seed in range(10)]
        out[f"{name}_queries_to_flag"] = [n for n, _ in runs]
        out[f"{name}_kinds"] = sorted({k for _, kinds in runs for k in kinds})
    sent = fired = 0
    for seed in range(5):
        mon = fresh()
        rng = np.random.default_rng(100 + seed)
        now = 0.0
        for k in range(14):
            for i in rng.permutation(len(replay)):
                now += 0.25
                sent += 1
                fired += len(mon.observe(f"key-{k}", replay[i], model.predict_proba(replay[i : i + 1]), now))
    out["benign_queries"] = sent
    out["benign_signals"] = fired
    return out


def timings() -> dict[str, Any]:
    rng = np.random.default_rng(0)
    mixing = rng.normal(size=(20, 20))
    ref = rng.standard_t(df=8, size=(5000, 20)) @ mixing
    probs_ref = rng.dirichlet(np.ones(3) * 0.3, size=5000)
    ood = OODDetector().fit(ref)
    mon = QueryMonitor(ood=ood).fit(ref, probs_ref)
    margins = MarginDetector().fit(probs_ref)
    out: dict[str, Any] = {}
    for batch in (1, 128, 1000):
        rows = rng.standard_t(df=8, size=(batch, 20)) @ mixing
        probs = rng.dirichlet(np.ones(3), size=batch)
        reps = max(20, 2000 // batch)
        cases = [
            ("ood_flag", lambda r=rows: ood.flag(r)),
            ("margin_flag", lambda p=probs: margins.flag(p)),
        ]
        if batch <= 128:  # the monitor keeps only the last `history` (128) rows of a batch
            cases.append(("query_monitor_observe", lambda r=rows, p=probs: mon.observe("k", r, p, now=0.0)))
        for name, fn in cases:
            best = min(timeit.repeat(fn, number=reps, repeat=5)) / reps
            out[f"{name}_batch{batch}_us_per_row"] = round(best / batch * 1e6, 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--no-torch", action="store_true", help="skip the adversarial-example figures")
    args = parser.parse_args()
    figures: dict[str, Any] = {"ood": ood_figures(), "probing": probing_figures(), "timings": timings()}
    if not args.no_torch:
        figures["adversarial"] = adversarial_figures()
    text = json.dumps(figures, indent=2, sort_keys=True)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
