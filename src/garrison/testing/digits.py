"""A small reference CNN for scikit-learn's 8 × 8 digits, to test image checks against (needs the torch extra).

The 2-conv network of Garrison's backdoor tests and benchmarks (poisoned or clean digits train in seconds on a CPU):
``train_digits_cnn(x, y, seed=0)`` with ``x`` of shape ``(n, 1, 8, 8)`` in [0, 1].
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

__all__ = ["digits_cnn", "train_digits_cnn"]


def digits_cnn(seed: int = 0) -> nn.Module:
    """An untrained 2-conv CNN for (1, 8, 8) digits, 10 classes, initialised from ``seed``."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 4 * 4, 64),
        nn.ReLU(),
        nn.Linear(64, 10),
    )


def train_digits_cnn(x: np.ndarray, y: np.ndarray, *, seed: int = 0, epochs: int = 15) -> nn.Module:
    """``digits_cnn(seed)`` trained with Adam (lr 2e-3, batches of 64 shuffled by ``seed``); in eval mode."""
    model = digits_cnn(seed)
    gen = torch.Generator().manual_seed(seed)
    xt, yt = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(xt), generator=gen)
        for start in range(0, len(xt), 64):
            idx = order[start : start + 64]
            opt.zero_grad()
            nn.functional.cross_entropy(model(xt[idx]), yt[idx]).backward()
            opt.step()
    return model.eval()
