"""Accuracy of DP training at fixed ε: DPLogisticRegression on scikit-learn's bundled data sets, and an MLP on digits
through train_private (what `garrison train --dp` runs). Numbers for docs/privacy.md.

Run: .venv/bin/python bench/dp_logreg.py   (about 3 minutes on 2 cores)
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.datasets import load_breast_cancer, load_digits, load_iris, load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from garrison.privacy import DPLogisticRegression, train_private

SEEDS = range(5)


def logreg() -> None:
    print("| data (train n) | ε | settings | DP accuracy mean (worst) | non-private | σ |")
    for name, loader, eps, extra in (
        ("breast cancer", load_breast_cancer, 1.0, {}),
        ("wine", load_wine, 3.0, {}),
        ("iris", load_iris, 3.0, {}),
        ("iris", load_iris, 3.0, {"lr": 0.2}),
    ):
        x, y = loader(return_X_y=True)
        x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)
        base = (
            make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
            .fit(x_tr, y_tr)
            .score(x_te, y_te)
        )
        accs, sigma = [], 0.0
        for seed in SEEDS:
            model = make_pipeline(
                StandardScaler(), DPLogisticRegression(epsilon=eps, random_state=seed, **extra)
            )
            accs.append(model.fit(x_tr, y_tr).score(x_te, y_te))
            sigma = model[-1].ledger_.noise_multiplier
        print(
            f"| {name} ({len(x_tr)}) | {eps:g} | {extra or 'defaults'} | {np.mean(accs):.3f} ({min(accs):.3f}) "
            f"| {base:.3f} | {sigma:.2f} |",
            flush=True,
        )


def digits_mlp() -> None:
    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    x_tr, x_te, y_tr, y_te = x[:1400], x[1400:], d.target[:1400], d.target[1400:]
    print("| digits MLP 64-32-10, 10 epochs, lr 0.1, batch 64 | ε | test accuracy | σ | ε spent |")
    for eps in (1.0, 8.0):
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
        result = train_private(net, x_tr, y_tr, target_epsilon=eps, epochs=10, batch_size=64, lr=0.1, seed=0)
        with torch.no_grad():
            acc = float((result.module(torch.from_numpy(x_te)).argmax(1).numpy() == y_te).mean())
        led = result.ledger
        print(f"| | {eps:g} | {acc:.3f} | {led.noise_multiplier:.3f} | {led.epsilon:.4f} |", flush=True)


if __name__ == "__main__":
    torch.set_num_threads(1)
    logreg()
    digits_mlp()
