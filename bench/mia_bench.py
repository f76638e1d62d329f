#!/usr/bin/env python3
"""Membership inference on scikit-learn digits: Garrison's threshold baseline, LiRA and RMIA beside ART's
MembershipInferenceBlackBox, on the same splits.

Design (Carlini et al. 2022): M target models (scikit-learn MLPClassifier, one hidden layer of 64, 200 epochs of
Adam, no early stopping: it fits its training half perfectly) each trained on a random half of the 1797 digits,
every record IN for half of the models. Model i in turn is the target and the other M-1 its reference models
(leave-one-out); scores of its IN records are member scores, of its OUT records non-member scores, pooled over all
targets (M=32: about 28,750 pooled scores, 14,376 of them non-members). A seeded half of the pooled non-member
scores fixes each threshold; the other half measures the FPR reached, the members the TPR (Clopper–Pearson 95 %).

ART: for each target, a seeded half of the records (the same for every target) trains ART's black-box attack
model on the target's outputs (``attack.fit(x, y, test_x, test_y)`` with the target's members and non-members among
them, the documented workflow with ART's ``SklearnClassifier`` wrapper); the other half is inferred
(``probabilities=True``) and pooled, then evaluated as above (about 7,200 non-member scores).

Bar (issue #5): LiRA-online's TPR at 0.1 % FPR has a CP lower bound above the threshold baseline's CP upper bound.

Usage (venv from bench/requirements-art.txt; Garrison is imported from this checkout's src/):
    .bench-env-art/bin/python bench/mia_bench.py [--models 32] [--seed 0] [--no-art] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from garrison.privacy.membership import METHODS, run_shadow_experiment, sklearn_trainer
from garrison.privacy.roc import MembershipEvaluation, evaluate_membership

FPRS = (0.001, 0.01)


def make_estimator() -> Any:
    from sklearn.neural_network import MLPClassifier

    return MLPClassifier(hidden_layer_sizes=(64,), max_iter=200, alpha=1e-4, random_state=0)


def art_scores(
    x: np.ndarray, y: np.ndarray, in_mask: np.ndarray, fitted: list[Any], seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """ART MembershipInferenceBlackBox per target: fit on a fixed half of the records, infer on the other half."""
    from art.attacks.inference.membership_inference import MembershipInferenceBlackBox
    from art.estimators.classification import SklearnClassifier as ArtSklearn

    rng = np.random.default_rng([seed, 7])
    attack_half = np.zeros(len(x), dtype=bool)
    attack_half[rng.permutation(len(x))[: len(x) // 2]] = True
    members, nonmembers = [], []
    for i, est in enumerate(fitted):
        target = ArtSklearn(model=est, clip_values=(0.0, 1.0))
        attack = MembershipInferenceBlackBox(target, attack_model_type="nn")
        fit_in = attack_half & in_mask[i]
        fit_out = attack_half & ~in_mask[i]
        attack.fit(x[fit_in].astype(np.float32), y[fit_in], x[fit_out].astype(np.float32), y[fit_out])
        ev_in = ~attack_half & in_mask[i]
        ev_out = ~attack_half & ~in_mask[i]
        members.append(np.asarray(attack.infer(x[ev_in].astype(np.float32), y[ev_in], probabilities=True),
                                  dtype=np.float64).reshape(-1))  # fmt: skip
        nonmembers.append(np.asarray(attack.infer(x[ev_out].astype(np.float32), y[ev_out], probabilities=True),
                                     dtype=np.float64).reshape(-1))  # fmt: skip
    return np.concatenate(members), np.concatenate(nonmembers)


def fmt_point(ev: MembershipEvaluation, fpr: float) -> str:
    p = ev.point(fpr)
    return (
        f"{100 * p.tpr:6.2f}% [{100 * p.tpr_ci[0]:5.2f}, {100 * p.tpr_ci[1]:5.2f}] (fpr {100 * p.fpr:.2f}%)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-art", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")  # MLPClassifier's ConvergenceWarning: it is meant to overfit
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float64)
    y = digits.target.astype(np.int64)
    t0 = time.perf_counter()
    fitted: list[Any] = []
    trainer = sklearn_trainer(make_estimator())

    def train(xs: np.ndarray, ys: np.ndarray, seed: int) -> Any:
        model = trainer(xs, ys, seed)
        fitted.append(model.estimator)  # ART wraps the very same fitted estimators
        return model

    experiment = run_shadow_experiment(train, x, y, n_models=args.models, seed=args.seed)
    train_s = time.perf_counter() - t0
    results: dict[str, MembershipEvaluation] = {}
    counts: dict[str, tuple[int, int]] = {}
    t1 = time.perf_counter()
    for method in METHODS:
        members, nonmembers = experiment.pooled(method)
        assert members.dtype == np.float64
        assert nonmembers.dtype == np.float64
        results[method] = evaluate_membership(members, nonmembers, method=method, fprs=FPRS, seed=args.seed)
        counts[method] = (len(members), len(nonmembers))
    score_s = time.perf_counter() - t1
    art_s = None
    if not args.no_art:
        t2 = time.perf_counter()
        members, nonmembers = art_scores(x, y, experiment.in_mask, fitted, args.seed)
        results["art-blackbox-nn"] = evaluate_membership(
            members, nonmembers, method="art", fprs=FPRS, seed=args.seed
        )
        counts["art-blackbox-nn"] = (len(members), len(nonmembers))
        art_s = time.perf_counter() - t2
    print(
        f"digits: {len(x)} records, {args.models} MLP target models on random halves (leave-one-out references)"
    )
    print(f"training {train_s:.1f}s, scoring {score_s:.1f}s" + (f", ART {art_s:.1f}s" if art_s else ""))
    print(
        f"{'method':16} {'members':>8} {'non-m.':>7} {'AUC':>6}  {'TPR@0.1% FPR [CP 95%]':38} TPR@1% FPR [CP 95%]"
    )
    for method, ev in results.items():
        n_m, n_n = counts[method]
        print(f"{method:16} {n_m:8d} {n_n:7d} {ev.auc:6.4f}  {fmt_point(ev, 0.001):38} {fmt_point(ev, 0.01)}")
    lira = results["lira-online"].point(0.001)
    base = results["threshold"].point(0.001)
    passed = lira.tpr_ci[0] > base.tpr_ci[1]
    print(
        f"bar: LiRA-online TPR@0.1% CP low {100 * lira.tpr_ci[0]:.2f}% > threshold baseline CP high "
        f"{100 * base.tpr_ci[1]:.2f}%: {'PASS' if passed else 'FAIL'}"
    )
    if args.json:
        payload = {
            "schema_version": 1,
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "models": args.models,
            "seed": args.seed,
            "train_s": train_s,
            "results": {k: v.to_dict() for k, v in results.items()},
            "bar_passed": passed,
        }
        args.json.write_text(json.dumps(payload, indent=2, sort_keys=True))
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
