#!/usr/bin/env python3
"""Gradient-masking bar (issue #4): Garrison's masking finding and its reported robust accuracy on masked models,
against a strong hand-written BPDA/EOT attack.

Setup: the digits CNN of bench/adv_bench.py (2 convs, scikit-learn digits 8x8 in [0, 1], stratified 70/30 split,
seed 0, 15 epochs of Adam) and a PGD-trained copy (``adversarial_training(method="pgd-at", eps=0.1, epochs=10)``,
as bench/advtrain_bench.py). Five models, L∞ eps=0.1, the first ``--n`` test samples (default all 540):

- plain, PGD-trained: must not be flagged;
- Quantised(plain): shattered gradients, the input rounded to 5 levels (``round(4x)/4``);
- Noisy(plain): stochastic gradients, N(0, 0.1²) noise added to the input at every call;
- Saturated(plain): vanishing gradients, logits × 1000.

Garrison: ``evaluate_robustness(TorchClassifier(module), x, y, eps=[0.1], min_perturbation=False, seed=0)`` with
the default attacks (APGD-CE, APGD-T, FAB-T, Square; plus the adaptive BPDA/EOT attack when masking is suspected).

Reference attack (written out here, sharing no code with Garrison except its ``straight_through`` BPDA switch,
which the same hand-written loop in tests/robustness/test_masking.py also uses): PGD L∞ from the clean point (no
random start), 100 steps of size 0.01, sign of the gradient of the logit margin ``max_{j≠y} z_j − z_y`` (the CW
loss, immune to the ×1000 saturation), backward through rounding as the identity (BPDA), gradients averaged over
EOT=20 forward passes for Noisy (1 for the deterministic models). Deterministic models: a sample counts as broken
if any iterate misclassifies it. Noisy: the last iterate is scored.

Randomised models. A single forward pass of Noisy gives a random verdict, so "the robust accuracy" of a randomised
model here is the *expected* accuracy under its randomness at the adversarial inputs: per sample the mean
correctness over K=20 seeded forward passes, averaged over samples (for the reference too). Garrison's own
reported number uses one forward pass per verdict and counts a sample broken if any verdict along its ensemble
(each attack's success check, then the evaluator's) came out wrong, which biases it downward (a lower bound on
the expected accuracy, noisy). The table shows that number ("reported") and the re-scored one: Garrison's final
adversarial per sample (``evaluation.extras["x_adv"]``: the example that fooled it, else the adaptive attack's
highest-loss point) scored with the same K passes. For deterministic models both are the same number. The bar is
judged on the re-scored number for randomised models (the reported one for deterministic ones): it must not be
more than 2 points above the reference (below it means Garrison's attack is the stronger).

Usage (Garrison from this checkout's src/; needs torch and scikit-learn):
    .venv/bin/python bench/masking_bench.py [--n 540] [--threads 1] [--models "Noisy(plain)" ...] [--json out.json]
At n=540 a run takes about 6 min on a quiet 2-core machine (17 min when shared; Square on the shattered model
dominates).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
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
from garrison.robustness.bpda import straight_through
from garrison.robustness.evaluate import evaluate_robustness
from garrison.robustness.training import adversarial_training

EPS = 0.1
SPEC = InputSpec((1, 8, 8))
REF_STEPS, REF_STEP_SIZE, REF_EOT = 100, 0.01, 20
K_PASSES = 20
BAR_POINTS = 2.0


def make_data(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None, :, :]
    y = d.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.3, random_state=seed, stratify=y)
    return x_tr, y_tr, x_te, y_te


def make_model(seed: int) -> nn.Module:
    torch.manual_seed(seed)
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


class Quantised(nn.Module):
    """Shattered gradients: the input is rounded to 5 levels, whose derivative is zero."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(torch.round(x * 4) / 4)


class Noisy(nn.Module):
    """Stochastic gradients: Gaussian noise on the input at every call."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x + 0.1 * torch.randn_like(x))


class Saturated(nn.Module):
    """Vanishing gradients: logits × 1000 saturate the softmax of the cross-entropy."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x) * 1000


@torch.no_grad()
def expected_accuracy(
    module: nn.Module, x: np.ndarray, y: np.ndarray, passes: int, seed: int = 1234
) -> float:
    """Mean over samples of the correctness averaged over ``passes`` seeded forward passes."""
    xt, yt = torch.as_tensor(np.asarray(x, dtype=np.float32)), torch.as_tensor(y)
    hits = torch.zeros(len(xt))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for _ in range(passes):
            hits += (module(xt).argmax(1) == yt).float()
    return float((hits / passes).mean())


def hand_written_attack(
    module: nn.Module, x: np.ndarray, y: np.ndarray, *, eot: int, seed: int = 1
) -> np.ndarray:
    """Reference BPDA + EOT PGD (see the module docstring); returns the adversarial set it leaves."""
    xb, yb = torch.from_numpy(x), torch.from_numpy(y)
    adv = xb.clone()
    frozen = xb.clone()
    broken = torch.zeros(len(xb), dtype=torch.bool)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for _ in range(REF_STEPS):
            grad = torch.zeros_like(adv)
            for _ in range(eot):
                a = adv.clone().requires_grad_(True)
                with straight_through():
                    z = module(a)
                true = z.gather(1, yb[:, None])[:, 0]
                other = z.masked_fill(F.one_hot(yb, 10).bool(), -torch.inf).max(1).values
                (g,) = torch.autograd.grad((other - true).sum(), a)
                grad += g
            with torch.no_grad():
                adv = (xb + (adv + REF_STEP_SIZE * grad.sign() - xb).clamp(-EPS, EPS)).clamp(0, 1)
                if eot == 1:  # deterministic: keep the first iterate that fools the model
                    wrong = (module(adv).argmax(1) != yb) & ~broken
                    frozen[wrong], broken[wrong] = adv[wrong], True
    if eot == 1:
        return torch.where(broken.view(-1, 1, 1, 1), frozen, adv).numpy()
    return adv.numpy()


def run_model(name: str, module: nn.Module, x: np.ndarray, y: np.ndarray, randomised: bool) -> dict[str, Any]:
    module.eval()
    clf = TorchClassifier(module, input_spec=SPEC, n_classes=10)
    t0 = time.perf_counter()
    ev = evaluate_robustness(clf, x, y, eps=[EPS], min_perturbation=False, seed=0)
    t_garrison = time.perf_counter() - t0
    passes = K_PASSES if randomised else 1
    reported = ev.robust_accuracy(EPS)
    rescored = expected_accuracy(module, ev.extras["x_adv"][0], y, passes)
    t0 = time.perf_counter()
    ref_adv = hand_written_attack(module, x, y, eot=REF_EOT if randomised else 1)
    t_ref = time.perf_counter() - t0
    reference = expected_accuracy(module, ref_adv, y, passes)
    assert np.abs(ref_adv - x).max() <= EPS + 1e-6
    assert np.abs(ev.extras["x_adv"][0] - x).max() <= EPS + 1e-6
    diag = ev.masking
    fired = list(diag.fired) if diag is not None else []
    judged = rescored if randomised else reported
    diff = (judged - reference) * 100
    return {
        "model": name,
        "randomised": randomised,
        "clean_accuracy": expected_accuracy(module, x, y, passes),
        "masking_fired": fired,
        "masking": None if diag is None else diag.to_dict(),
        "attacks": list(ev.attacks),
        "notes": list(ev.notes),
        "white_box_robust_accuracy": None
        if ev.white_box_robust_accuracy is None
        else ev.white_box_robust_accuracy[0],
        "garrison_reported": reported,
        "garrison_rescored": rescored,
        "reference": reference,
        "difference_points": diff,
        "garrison_s": t_garrison,
        "reference_s": t_ref,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--n", type=int, default=540, help="evaluation samples (first n of the 540-sample test split)"
    )
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--models", nargs="*", help="run only these models (names as in the table)")
    ap.add_argument("--json", help="write the results to this JSON file")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()

    x_tr, y_tr, x_te, y_te = make_data(0)
    x, y = x_te[: args.n].copy(), y_te[: args.n].copy()
    plain = make_model(0)
    train(plain, x_tr, y_tr, args.epochs, 0)
    robust = make_model(0)
    adversarial_training(robust, x_tr, y_tr, method="pgd-at", eps=EPS, epochs=10, seed=0)
    robust.eval()

    cases: list[tuple[str, nn.Module, bool, bool]] = [  # name, module, randomised, masked
        ("plain", plain, False, False),
        ("PGD-trained", robust, False, False),
        ("Quantised(plain)", Quantised(plain), False, True),
        ("Noisy(plain)", Noisy(plain), True, True),
        ("Saturated(plain)", Saturated(plain), False, True),
    ]
    rows = []
    for name, module, randomised, masked in cases:
        if args.models and name not in args.models:
            continue
        row = run_model(name, module, x, y, randomised)
        row["masked"] = masked
        if masked:
            row["pass"] = bool(row["masking_fired"]) and row["difference_points"] <= BAR_POINTS
        else:
            row["pass"] = not row["masking_fired"]
        rows.append(row)
        print(f"... {name}: {time.perf_counter() - started:.0f}s", file=sys.stderr, flush=True)

    print(
        f"torch {torch.__version__}  python {platform.python_version()}  threads={torch.get_num_threads()}"
        f"  cpus={os.cpu_count()}  loadavg(1m) {os.getloadavg()[0]:.2f}  total {time.perf_counter() - started:.0f}s"
    )
    print(
        f"N={len(x)} eps={EPS} (L∞)  reference: PGD {REF_STEPS} steps × {REF_STEP_SIZE}, margin loss, BPDA, "
        f"EOT {REF_EOT} (Noisy) / 1; randomised models scored as the mean over K={K_PASSES} seeded passes"
    )
    print(
        "\n| model | clean acc | masking fired (signals) | white-box robust acc | Garrison reported robust acc "
        "| Garrison re-scored (K-pass mean) | hand-written BPDA/EOT robust acc | difference (points) | bar |\n"
        "|---|---:|---|---:|---:|---:|---:|---:|---|"
    )
    for r in rows:
        fired = ", ".join(r["masking_fired"]) if r["masking_fired"] else "no"
        wb = "—" if r["white_box_robust_accuracy"] is None else f"{r['white_box_robust_accuracy']:.3f}"
        res = f"{r['garrison_rescored']:.3f}" if r["randomised"] else "(same)"
        print(
            f"| {r['model']} | {r['clean_accuracy']:.3f} | {fired} | {wb} | {r['garrison_reported']:.3f} | {res} "
            f"| {r['reference']:.3f} | {r['difference_points']:+.1f} | {'PASS' if r['pass'] else 'FAIL'} |"
        )
    bars = []
    for r in rows:
        if r["masked"]:
            bars.append(
                (
                    f"{r['model']}: masking fires ({', '.join(r['masking_fired']) or 'none'}) and Garrison's robust "
                    f"acc is <= reference + {BAR_POINTS:g} points ({r['difference_points']:+.1f})",
                    r["pass"],
                )
            )
        else:
            detail = "; ".join(
                f"{s['name']}: {s['detail']}" for s in (r["masking"] or {}).get("signals", []) if s["fired"]
            )
            bars.append(
                (f"{r['model']}: masking does not fire{(' — fired: ' + detail) if detail else ''}", r["pass"])
            )
    print("\n| bar | result |\n|---|---|")
    for text, ok in bars:
        print(f"| {text} | {'PASS' if ok else 'FAIL'} |")
    print(f"\nall bars: {'PASS' if all(ok for _, ok in bars) else 'FAIL'}")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "torch": torch.__version__,
                    "args": vars(args),
                    "reference": {"steps": REF_STEPS, "step_size": REF_STEP_SIZE, "eot": REF_EOT},
                    "k_passes": K_PASSES,
                    "results": rows,
                    "bars": [{"bar": t, "pass": ok} for t, ok in bars],
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
