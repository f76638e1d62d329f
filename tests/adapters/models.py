"""Tiny torch models and the data to train them on, shared by the adapter tests.

Importing this module needs torch: test modules call ``pytest.importorskip("torch")`` first.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

__all__ = ["digits", "fit", "small_cnn", "small_mlp"]


@lru_cache(maxsize=1)
def digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """sklearn's bundled 8x8 digits, flat 64 features scaled to [0, 1]: ``x_train, x_test, y_train, y_test``."""
    bunch = load_digits()
    x = (bunch.data / 16.0).astype(np.float32)
    y = bunch.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)
    return x_train, x_test, y_train, y_test


def small_mlp(
    n_features: int = 8, n_classes: int = 3, *, hidden: int = 16, activation: str = "relu", seed: int = 0
) -> nn.Module:
    """``Linear -> activation -> Linear``, returning logits. ``activation="tanh"`` gives a smooth net."""
    torch.manual_seed(seed)
    act: nn.Module = nn.Tanh() if activation == "tanh" else nn.ReLU()
    return nn.Sequential(nn.Linear(n_features, hidden), act, nn.Linear(hidden, n_classes))


def small_cnn(n_classes: int = 10, *, seed: int = 0) -> nn.Module:
    """A conv net for ``(n, 1, 8, 8)`` images, returning logits."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 8, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(8 * 4 * 4, n_classes),
    )


def fit(
    module: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int = 15,
    lr: float = 1e-2,
    batch_size: int = 64,
    seed: int = 0,
) -> nn.Module:
    """Train with Adam on cross-entropy; returns the module in eval mode."""
    gen = torch.Generator().manual_seed(seed)
    xt = torch.as_tensor(x, dtype=torch.float32)
    yt = torch.as_tensor(y, dtype=torch.long)
    opt = torch.optim.Adam(module.parameters(), lr=lr)
    module.train()
    for _ in range(epochs):
        order = torch.randperm(len(xt), generator=gen)
        for start in range(0, len(xt), batch_size):
            idx = order[start : start + batch_size]
            opt.zero_grad()
            nn.functional.cross_entropy(module(xt[idx]), yt[idx]).backward()
            opt.step()
    return module.eval()
