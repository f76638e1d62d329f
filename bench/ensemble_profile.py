#!/usr/bin/env python3
"""Member-by-member profile of Garrison's default ensemble on the PGD-trained digits CNN of ensemble_bench.py.

Times each member on the samples every earlier member failed on (as the ensemble runs them), the forward and
forward+backward floors over the same samples, and torchattacks' members on the same samples beside them.

Usage: .bench-env-art/bin/python bench/ensemble_profile.py [--cache /tmp/pgd_cnn.pt] [--steps 100] [--peers]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from adv_bench import make_model
from advtrain_bench import make_data

from garrison.adapters import InputSpec, TorchClassifier
from garrison.robustness import ThreatModel, default_ensemble
from garrison.robustness.training import adversarial_training

EPS = 0.1


def trained_model(cache: str | None, epochs: int, seed: int) -> torch.nn.Module:
    x_tr, y_tr, _, _ = make_data(0)
    torch.manual_seed(seed)
    model = make_model()
    if cache and Path(cache).exists():
        model.load_state_dict(torch.load(cache, weights_only=True))
    else:
        adversarial_training(model, x_tr, y_tr, method="pgd-at", eps=EPS, epochs=epochs, seed=seed)
        if cache:
            torch.save(model.state_dict(), cache)
    return model.eval()


def passes(module: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, reps: int = 50) -> tuple[float, float]:
    """Seconds for one forward pass and for one forward + input-gradient pass over ``x`` (medians of ``reps``),
    in batches of 256 like the attacks."""
    fwd, fwdbwd = [], []
    for _ in range(reps):
        t0 = time.perf_counter()
        with torch.no_grad():
            for i in range(0, len(x), 256):
                module(x[i : i + 256])
        t1 = time.perf_counter()
        for i in range(0, len(x), 256):
            xr = x[i : i + 256].clone().requires_grad_(True)
            torch.autograd.grad(F.cross_entropy(module(xr), y[i : i + 256]), xr)
        fwd.append(t1 - t0)
        fwdbwd.append(time.perf_counter() - t1)
    return statistics.median(fwd), statistics.median(fwdbwd)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cache", help="save/load the trained model's weights here")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--queries", type=int, default=5000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--peers", action="store_true", help="also time torchattacks' members on the same samples"
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = trained_model(args.cache, args.epochs, 0)
    _, _, x_te, y_te = make_data(0)
    clf = TorchClassifier(model, input_spec=InputSpec((1, 8, 8)), n_classes=10, batch_size=256)
    threat = ThreatModel("linf", EPS)
    ens = default_ensemble(clf, 10, steps=args.steps, queries=args.queries)
    ens.run(clf, x_te[:8], y_te[:8], threat)  # warm-up
    x, y = x_te, y_te
    with torch.no_grad():
        robust = model(torch.from_numpy(x)).argmax(1).numpy() == y
    print(f"clean {robust.mean():.3f} on {len(x)}")
    fast = copy.deepcopy(model).to(memory_format=torch.channels_last)
    total = 0.0
    for attack in ens.attacks:
        idx = np.flatnonzero(robust)
        xt, yt = torch.from_numpy(x[idx]), torch.from_numpy(y[idx])
        floors = {
            name: passes(module, xt, yt) for name, module in (("as is", model), ("channels-last", fast))
        }
        t0 = time.perf_counter()
        res = attack.run(clf, x[idx], y[idx], threat, seed=0)
        s = time.perf_counter() - t0
        total += s
        robust[idx[res.success]] = False
        print(
            f"{attack.name:10s} n={len(idx):4d} {s:6.2f} s  fooled {int(res.success.sum()):3d}  "
            f"queries {res.queries}  "
            + "  ".join(
                f"{k}: fwd {f * 1e3:.2f} ms, fwd+bwd {b * 1e3:.2f} ms" for k, (f, b) in floors.items()
            ),
            flush=True,
        )
    print(f"total {total:.2f} s  robust {robust.mean():.3f}")
    if args.peers:
        import torchattacks

        with torch.no_grad():
            idx0 = np.flatnonzero(model(torch.from_numpy(x)).argmax(1).numpy() == y)
        keep = torch.ones(len(idx0), dtype=torch.bool)
        xt, yt = torch.from_numpy(x[idx0]), torch.from_numpy(y[idx0])
        peers = [
            ("ta-apgd", torchattacks.APGD(model, norm="Linf", eps=EPS, loss="ce", steps=args.steps, seed=0)),
            (
                "ta-apgdt",
                torchattacks.APGDT(model, norm="Linf", eps=EPS, n_classes=10, steps=args.steps, seed=0),
            ),
            (
                "ta-fab",
                torchattacks.FAB(
                    model, norm="Linf", eps=EPS, multi_targeted=True, n_classes=10, steps=args.steps, seed=0
                ),
            ),
            ("ta-square", torchattacks.Square(model, norm="Linf", eps=EPS, n_queries=args.queries, seed=0)),
        ]
        for name, atk in peers:
            sel = keep.nonzero().flatten()
            t0 = time.perf_counter()
            adv = atk(xt[sel], yt[sel])
            s = time.perf_counter() - t0
            with torch.no_grad():
                fooled = model(adv).argmax(1) != yt[sel]
            keep[sel[fooled]] = False
            print(f"{name:12s} n={len(sel):4d} {s:6.2f} s  fooled {int(fooled.sum())}", flush=True)


if __name__ == "__main__":
    main()
