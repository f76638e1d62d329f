#!/usr/bin/env python3
"""Garrison's APGD-CE against ART's AutoProjectedGradientDescent from the *same* random starts.

bench/adv_bench.py compares both at equal budgets, each with its own random start (torch's generator for
Garrison, numpy's global one for ART); their robust accuracies then differ by a few samples either way. This script
removes that noise: it draws ART's start exactly as ART does (``np.random.uniform(-eps, eps)`` for every initially
correct sample, in order, after ``np.random.seed(seed)``) and feeds the same points to Garrison's APGD, so any
remaining difference is the algorithm's.

Setup as bench/adv_bench.py (digits CNN, 1000 samples, L∞ ε=0.1, 40 steps, ART eps_step=2ε, one restart).

Usage (venv from bench/requirements-art.txt; Garrison imported from this checkout's src/):
    .bench-env-art/bin/python bench/apgd_same_starts.py [--seeds 0 1 2 3 4 5]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from adv_bench import accuracy, make_data, make_model, train

import garrison.robustness.attacks.apgd as apgd_module
from garrison.adapters import InputSpec, TorchClassifier
from garrison.robustness import APGD, ThreatModel

EPS, STEPS = 0.1, 40


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=list(range(6)))
    args = ap.parse_args()
    from art.attacks.evasion import AutoProjectedGradientDescent
    from art.estimators.classification import PyTorchClassifier

    torch.set_num_threads(1)
    torch.manual_seed(0)
    np.random.seed(0)
    x_tr, y_tr, x_ev, y_ev = make_data(1000, 0)
    model = make_model()
    train(model, x_tr, y_tr, 15, 0)
    clf = TorchClassifier(model, input_spec=InputSpec((1, 8, 8)), n_classes=10, batch_size=256)
    est = PyTorchClassifier(
        model=model,
        loss=nn.CrossEntropyLoss(),
        input_shape=(1, 8, 8),
        nb_classes=10,
        clip_values=(0.0, 1.0),
        device_type="cpu",
    )
    with torch.no_grad():
        n_correct = int((model(torch.from_numpy(x_ev)).argmax(1).numpy() == y_ev).sum())
    print("| seed | ART robust acc | Garrison robust acc (same starts) |\n|---|---:|---:|")
    rows = []
    for seed in args.seeds:
        np.random.seed(seed)
        art = AutoProjectedGradientDescent(
            est, norm=np.inf, eps=EPS, eps_step=2 * EPS, max_iter=STEPS, nb_random_init=1, batch_size=256,
            loss_type="cross_entropy", verbose=False,
        )  # fmt: skip
        art_acc = accuracy(model, art.generate(x_ev, y=np.eye(10, dtype=np.float32)[y_ev]), y_ev)
        np.random.seed(seed)
        starts = iter(np.random.uniform(-EPS, EPS, (n_correct, 64)).astype(np.float32).reshape(-1, 1, 8, 8))

        def art_start(torch_: Any, gen: Any, like: Any, threat: Any, starts: Any = starts) -> Any:
            return torch.from_numpy(np.stack([next(starts) for _ in range(len(like))]))

        apgd_module._noise = art_start  # the one substitution: ART's start points
        ours = APGD(loss="ce", steps=STEPS, batch_size=len(x_ev)).run(
            clf, x_ev, y_ev, ThreatModel("linf", EPS)
        )
        g_acc = accuracy(model, ours.x_adv, y_ev)
        rows.append((art_acc, g_acc))
        print(f"| {seed} | {art_acc:.3f} | {g_acc:.3f} |", flush=True)
    same = sum(abs(a - g) < 1e-9 for a, g in rows)
    print(f"\nidentical on {same} of {len(rows)} seeds; Garrison <= ART on {sum(g <= a for a, g in rows)}")


if __name__ == "__main__":
    main()
