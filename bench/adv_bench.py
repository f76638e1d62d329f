#!/usr/bin/env python3
"""Garrison's white-box attacks beside ART and torchattacks, in one process, on the same data and model.

Setup as /work/shared/anchors/adv_bench.py: a 2-conv CNN trained on scikit-learn digits (8x8 in [0, 1]),
1000 evaluation samples, PGD L∞ eps=0.1, step 0.01, 40 steps, batch 256, no random start. The floor is
40 x (one forward + one input-gradient backward) over the same data, timed twice: on the module as it is and on a
channels-last copy (the layout Garrison's attacks run a CPU conv net in); the PGD bar is judged against the faster
of the two. Methods are warmed up, then timed in
interleaved rounds with a rotating order; ratios are medians of per-round ratios (and, as a second estimate on a
loaded machine, the ratio of the fastest rounds).

Bars (issue #4): Garrison PGD <= 1.1x floor; its robust accuracy within 0.5 points of ART's PGD;
Garrison APGD-CE (same 40-step budget) <= 0.5x ART AutoProjectedGradientDescent's time, robust accuracy <= ART's.
The two draw different random starts (torch's generator vs numpy's), which moves robust accuracy by a few samples
either way; bench/apgd_same_starts.py compares them from the same starts.

Usage (venv from bench/requirements-art.txt; Garrison is imported from this checkout's src/):
    .bench-env-art/bin/python bench/adv_bench.py [--repeats 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from garrison.adapters import InputSpec, TorchClassifier
from garrison.robustness import APGD, PGD, ThreatModel


def make_data(n_eval: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None, :, :]
    y = d.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.3, random_state=seed, stratify=y)
    reps = int(np.ceil(n_eval / len(x_te)))
    return (
        x_tr,
        y_tr,
        np.concatenate([x_te] * reps)[:n_eval].copy(),
        np.concatenate([y_te] * reps)[:n_eval].copy(),
    )


def make_model() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 4 * 4, 10),
    )


def train(model: nn.Module, x: np.ndarray, y: np.ndarray, epochs: int, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(xt), generator=g)
        for i in range(0, len(xt), 64):
            idx = perm[i : i + 64]
            opt.zero_grad()
            F.cross_entropy(model(xt[idx]), yt[idx]).backward()
            opt.step()
    model.eval()


@torch.no_grad()
def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    xt, yt = torch.as_tensor(np.asarray(x, dtype=np.float32)), torch.as_tensor(y)
    return sum(
        (model(xt[i : i + 512]).argmax(1) == yt[i : i + 512]).sum().item() for i in range(0, len(xt), 512)
    ) / len(xt)


def floor(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int, bs: int) -> None:
    """steps x (forward + backward to the input only) over all batches; nothing else."""
    for i in range(0, len(x), bs):
        xb, yb = x[i : i + bs], y[i : i + bs]
        for _ in range(steps):
            xg = xb.detach().requires_grad_(True)
            torch.autograd.grad(F.cross_entropy(model(xg), yb), xg)


def bench_interleaved(methods: dict[str, Callable[[], Any]], repeats: int) -> dict[str, dict[str, Any]]:
    names = list(methods)
    out: dict[str, dict[str, Any]] = {n: {"times_s": [], "result": None} for n in names}
    for n in names:  # warm-up, not timed
        out[n]["result"] = methods[n]()
    for r in range(repeats):
        k = r % len(names)
        for n in names[k:] + names[:k]:
            t0 = time.perf_counter()
            methods[n]()
            out[n]["times_s"].append(time.perf_counter() - t0)
    for n in names:
        out[n]["median_s"] = statistics.median(out[n]["times_s"])
        out[n]["min_s"] = min(out[n]["times_s"])
    return out


def ratio(res: dict[str, dict[str, Any]], num: str, den: str) -> float:
    return statistics.median(a / b for a, b in zip(res[num]["times_s"], res[den]["times_s"], strict=True))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-eval", type=int, default=1000)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="write the results to this JSON file")
    args = ap.parse_args()
    eps, step, iters, bs = 0.1, 0.01, 40, 256

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    from art import __version__ as art_version
    from art.attacks.evasion import AutoProjectedGradientDescent, ProjectedGradientDescent
    from art.estimators.classification import PyTorchClassifier

    x_tr, y_tr, x_ev, y_ev = make_data(args.n_eval, args.seed)
    model = make_model()
    train(model, x_tr, y_tr, args.epochs, args.seed)
    xt, yt = torch.from_numpy(x_ev), torch.from_numpy(y_ev)
    clean = accuracy(model, x_ev, y_ev)

    est = PyTorchClassifier(
        model=model,
        loss=nn.CrossEntropyLoss(),
        input_shape=(1, 8, 8),
        nb_classes=10,
        clip_values=(0.0, 1.0),
        device_type="cpu",
    )
    y_onehot = np.eye(10, dtype=np.float32)[y_ev]
    art_pgd = ProjectedGradientDescent(
        est,
        norm=np.inf,
        eps=eps,
        eps_step=step,
        max_iter=iters,
        batch_size=bs,
        num_random_init=0,
        verbose=False,
    )
    art_apgd = AutoProjectedGradientDescent(
        est,
        norm=np.inf,
        eps=eps,
        eps_step=2 * eps,
        max_iter=iters,
        nb_random_init=1,
        batch_size=bs,
        loss_type="cross_entropy",
        verbose=False,
    )
    clf = TorchClassifier(model, input_spec=InputSpec((1, 8, 8)), n_classes=10, batch_size=bs)
    threat = ThreatModel("linf", eps)
    g_pgd = PGD(steps=iters, step_size=step, random_start=False, batch_size=bs)
    g_apgd = APGD(loss="ce", steps=iters, batch_size=bs)

    FLOOR = "floor: 40 x fwd+input-grad"
    FLOOR_CL = "floor, channels-last copy"
    model_cl = copy.deepcopy(model).to(memory_format=torch.channels_last)
    methods: dict[str, Callable[[], Any]] = {
        FLOOR: lambda: floor(model, xt, yt, iters, bs),
        FLOOR_CL: lambda: floor(model_cl, xt, yt, iters, bs),
        "Garrison PGD": lambda: g_pgd.run(clf, x_ev, y_ev, threat, seed=args.seed).x_adv,
        "ART PGD": lambda: art_pgd.generate(x_ev, y=y_onehot),
        "Garrison APGD-CE": lambda: g_apgd.run(clf, x_ev, y_ev, threat, seed=args.seed).x_adv,
        "ART AutoPGD (CE)": lambda: art_apgd.generate(x_ev, y=y_onehot),
    }
    ta_version = None
    try:
        import torchattacks

        ta_version = torchattacks.__version__
        ta_pgd = torchattacks.PGD(model, eps=eps, alpha=step, steps=iters, random_start=False)
        methods["torchattacks PGD"] = lambda: torch.cat(
            [ta_pgd(xt[i : i + bs], yt[i : i + bs]) for i in range(0, len(xt), bs)]
        ).numpy()
    except ImportError:
        pass

    load0 = os.getloadavg()[0]
    res = bench_interleaved(methods, args.repeats)
    load1 = os.getloadavg()[0]
    for r in res.values():
        adv = r.pop("result")
        r["robust_acc"] = None if adv is None else accuracy(model, adv, y_ev)

    print(
        f"torch {torch.__version__}  ART {art_version}  torchattacks {ta_version}  python {platform.python_version()}"
        f"  threads={torch.get_num_threads()}  cpus={os.cpu_count()}  loadavg(1m) {load0:.2f}/{load1:.2f}"
    )
    print(
        f"N={len(xt)} clean acc={clean:.3f} eps={eps} step={step} steps={iters} batch={bs} repeats={args.repeats}"
    )
    print(
        "| method | median s | min s | median ratio to floor | ratio of mins | robust acc |\n"
        "|---|---:|---:|---:|---:|---:|"
    )
    for n, r in res.items():
        ra = "" if r["robust_acc"] is None else f"{r['robust_acc']:.3f}"
        mins = r["min_s"] / res[FLOOR]["min_s"]
        print(
            f"| {n} | {r['median_s']:.4f} | {r['min_s']:.4f} | {ratio(res, n, FLOOR):.2f} | {mins:.2f} | {ra} |"
        )
    pgd_floor = max(ratio(res, "Garrison PGD", FLOOR), ratio(res, "Garrison PGD", FLOOR_CL))
    gap = abs(res["Garrison PGD"]["robust_acc"] - res["ART PGD"]["robust_acc"]) * 100
    apgd_vs = ratio(res, "Garrison APGD-CE", "ART AutoPGD (CE)")
    apgd_ra = (res["Garrison APGD-CE"]["robust_acc"], res["ART AutoPGD (CE)"]["robust_acc"])
    bars = [
        (f"Garrison PGD / the faster floor = {pgd_floor:.2f} (bar <= 1.10)", pgd_floor <= 1.10),
        (f"|robust acc Garrison PGD - ART PGD| = {gap:.2f} points (bar <= 0.5)", gap <= 0.5),
        (f"Garrison APGD-CE / ART AutoPGD time = {apgd_vs:.2f} (bar <= 0.50)", apgd_vs <= 0.50),
        (
            f"robust acc Garrison APGD-CE {apgd_ra[0]:.3f} vs ART {apgd_ra[1]:.3f} (bar <=)",
            apgd_ra[0] <= apgd_ra[1],
        ),
    ]
    print("\n| bar | result |\n|---|---|")
    for text, ok in bars:
        print(f"| {text} | {'PASS' if ok else 'FAIL'} |")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "torch": torch.__version__,
                    "art": art_version,
                    "torchattacks": ta_version,
                    "clean_acc": clean,
                    "loadavg": [load0, load1],
                    "args": vars(args),
                    "results": res,
                    "bars": [{"bar": t, "pass": ok} for t, ok in bars],
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
