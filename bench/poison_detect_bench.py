#!/usr/bin/env python3
"""Finding poisons in a training set: Garrison's ``scan_training_set`` beside ART's SpectralSignatureDefense and
ActivationDefence, in one process.

Setup (that of /work/shared/anchors/poison_bench.py): scikit-learn digits (8x8 in [0, 1]), 70/30 stratified split
(seed 0), the anchor's 2-conv CNN trained with Adam (lr 2e-3, batch 64, 20 epochs). Poisons come from
``garrison.poisoning.poison``: BadNets (3x3 patch of 1.0, bottom-right) and blended (alpha 0.2 random pattern)
triggers on rows of other classes, all relabelled to the target class 0, at 1 %, 5 % and 10 % of ALL training rows
(the generator's ``rate`` is a share of the eligible rows, so ``rate = share * n / n_eligible``).

Detectors, each on the backdoored model's penultimate layer (the input of the last Linear):
- Garrison ``scan_training_set(x, y, model=...)`` with its defaults (no poison rate given);
- ART ``SpectralSignatureDefense`` given the true in-class poison rate as ``expected_pp_poison`` (it removes
  1.5 x that share of EVERY class), and with its default 0.33;
- ART ``ActivationDefence`` (2-means on PCA-10, relative-size analyser, its defaults).
ART's defences read the last layer of ``layer_names``; here its ``get_activations`` is pointed at the penultimate
layer, as the issue asks.

Also: Garrison alone on four other (split seed, target class) pairs at 5 % and 10 % (``--sweep``), to show that
target 0 is not a lucky draw; five clean seeds (clean data, clean model; new split and training seed each) for classes flagged and the
per-sample false-positive rate, and the model-agnostic k-NN method on tables (breast_cancer, wine: targeted label
flips at 5 % / 10 % of all rows; digits as 64 flat features with the same flips).

Bars (issue #6): recall >= 0.9 at precision >= 0.8 at 5 % and 10 %; zero classes flagged on five clean seeds;
per-sample false-positive rate on clean data <= 1 %.

Usage (ART lives in the bench venv; Garrison is imported from this checkout's src/):
    .bench-env-art/bin/python bench/poison_detect_bench.py [--quick] [--epochs 20] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_breast_cancer, load_digits, load_wine
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from garrison.poisoning import poison
from garrison.poisoning.detect import scan_training_set

TARGET = 0


def make_model() -> nn.Module:
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


def train(x: np.ndarray, y: np.ndarray, epochs: int, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    model = make_model()
    g = torch.Generator().manual_seed(seed)
    xt, yt = torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(xt), generator=g)
        for i in range(0, len(xt), 64):
            idx = perm[i : i + 64]
            opt.zero_grad()
            F.cross_entropy(model(xt[idx]), yt[idx]).backward()
            opt.step()
    return model.eval()


def digits(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]
    y = d.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.3, random_state=seed, stratify=y)
    return x_tr, x_te, y_tr, y_te


def score(flagged: np.ndarray, truth: np.ndarray) -> dict[str, Any]:
    tp = int((flagged & truth).sum())
    return {
        "recall": tp / int(truth.sum()) if truth.any() else None,
        "precision": tp / int(flagged.sum()) if flagged.any() else None,
        "n_flagged": int(flagged.sum()),
        "fpr": float(flagged[~truth].mean()),
    }


def mask(indices: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros(n, dtype=bool)
    out[np.asarray(indices, dtype=np.int64)] = True
    return out


def art_detectors(model: nn.Module, x: np.ndarray, y: np.ndarray, pp: float) -> dict[str, np.ndarray]:
    from art.defences.detector.poison import ActivationDefence, SpectralSignatureDefense
    from art.estimators.classification import PyTorchClassifier

    est = PyTorchClassifier(
        model=model,
        loss=nn.CrossEntropyLoss(),
        input_shape=(1, 8, 8),
        nb_classes=10,
        clip_values=(0.0, 1.0),
        device_type="cpu",
    )
    body = model[:-1]

    def penultimate(
        x_in: np.ndarray, layer: Any = None, batch_size: int = 128, framework: bool = False
    ) -> Any:
        with torch.no_grad():
            return body(torch.from_numpy(np.asarray(x_in, dtype=np.float32))).numpy()

    est.get_activations = penultimate  # type: ignore[method-assign]
    y1h = np.eye(10, dtype=np.float32)[y]
    out: dict[str, np.ndarray] = {}
    for name, rate in ((f"ART spectral (pp=true {pp:.2f})", pp), ("ART spectral (default pp=0.33)", 0.33)):
        _, is_clean = SpectralSignatureDefense(
            est, x, y1h, expected_pp_poison=rate, batch_size=128, eps_multiplier=1.5
        ).detect_poison()
        out[name] = np.asarray(is_clean) == 0
    _, is_clean = ActivationDefence(est, x, y1h).detect_poison(nb_clusters=2, nb_dims=10, reduce="PCA")
    out["ART activation clustering"] = np.asarray(is_clean) == 0
    return out


def poisoned_runs(args: argparse.Namespace) -> list[dict[str, Any]]:
    x_tr, x_te, y_tr, y_te = digits(0)
    n = len(y_tr)
    eligible = int((y_tr != TARGET).sum())
    rows: list[dict[str, Any]] = []
    for kind in ("badnets", "blend"):
        for share in args.shares:
            p = poison(x_tr, y_tr, kind=kind, rate=share * n / eligible, target=TARGET, seed=args.seed)
            truth = mask(p.indices, n)
            in_class = float(truth[p.y == TARGET].mean())
            model = train(p.x, p.y, args.epochs, args.seed)
            with torch.no_grad():
                triggered = p.trigger.apply(x_te[y_te != TARGET]).astype(np.float32)  # type: ignore[union-attr]
                asr = float((model(torch.from_numpy(triggered)).argmax(1).numpy() == TARGET).mean())
            t0 = time.perf_counter()
            scan = scan_training_set(p.x, p.y, model=model, seed=args.seed)
            seconds = time.perf_counter() - t0
            base = {"kind": kind, "share": share, "n_poison": int(truth.sum()), "in_class_share": in_class}
            found = mask(scan.suspects, n)
            rows.append(
                {
                    **base,
                    "detector": "Garrison scan_training_set",
                    **score(found, truth),
                    "flagged_classes": list(scan.flagged_classes),
                    "seconds": seconds,
                    "asr": asr,
                }
            )
            if args.layers:
                scan_l = scan_training_set(p.x, p.y, model=model, seed=args.seed, layer="5")
                rows.append(
                    {
                        **base,
                        "detector": "Garrison, layer=conv features",
                        **score(mask(scan_l.suspects, n), truth),
                        "flagged_classes": list(scan_l.flagged_classes),
                    }
                )
            if not args.no_art:
                t0 = time.perf_counter()
                for name, flagged in art_detectors(model, p.x, p.y, in_class).items():
                    rows.append({**base, "detector": name, **score(flagged, truth)})
                rows[-1]["seconds_all_art"] = time.perf_counter() - t0
            print(f"  done {kind} {share:.0%} (attack success {asr:.2f})", flush=True)
    return rows


def sweep_runs(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Garrison alone on other splits and target classes (split seed, target): is target 0 a lucky draw?"""
    out = []
    for seed, target in ((1, 8), (2, 3), (3, 5), (6, 2))[: args.sweep]:
        x_tr, _, y_tr, _ = digits(seed)
        n, eligible = len(y_tr), int((y_tr != target).sum())
        for kind in ("badnets", "blend"):
            for share in (0.05, 0.10):
                p = poison(x_tr, y_tr, kind=kind, rate=share * n / eligible, target=target, seed=seed)
                scan = scan_training_set(p.x, p.y, model=train(p.x, p.y, args.epochs, seed), seed=seed)
                out.append(
                    {
                        "seed": seed,
                        "target": target,
                        "kind": kind,
                        "share": share,
                        **score(mask(scan.suspects, n), mask(p.indices, n)),
                        "flagged_classes": list(scan.flagged_classes),
                    }
                )
        print(f"  done sweep seed {seed} target {target}", flush=True)
    return out


def clean_runs(args: argparse.Namespace) -> list[dict[str, Any]]:
    out = []
    for seed in range(args.clean_seeds):
        x_tr, _, y_tr, _ = digits(seed)
        model = train(x_tr, y_tr, args.epochs, seed)
        scan = scan_training_set(x_tr, y_tr, model=model, seed=seed)
        out.append(
            {
                "seed": seed,
                "classes_flagged": len(scan.flagged_classes),
                "flagged_classes": list(scan.flagged_classes),
                "n_suspects": len(scan.suspects),
                "fpr": len(scan.suspects) / len(y_tr),
                "max_class_z": max(c.statistic for c in scan.classes),
            }
        )
        print(f"  done clean seed {seed}", flush=True)
    return out


def tabular_runs(args: argparse.Namespace) -> list[dict[str, Any]]:
    sets = {
        "breast_cancer": load_breast_cancer(return_X_y=True),
        "wine": load_wine(return_X_y=True),
        "digits (64 flat features)": load_digits(return_X_y=True),
    }
    out = []
    for name, (x, y) in sets.items():
        y = y.astype(np.int64)
        n = len(y)
        clean = scan_training_set(x, y, method="knn", seed=args.seed)
        for target in sorted(set(y.tolist()))[: args.tab_targets]:
            for share in (0.05, 0.10):
                eligible = int((y != target).sum())
                p = poison(
                    x, y, kind="flip-targeted", rate=share * n / eligible, target=target, seed=args.seed
                )
                scan = scan_training_set(p.x, p.y, method="knn", seed=args.seed)
                out.append(
                    {
                        "data": name,
                        "attack": "flip-targeted",
                        "target": target,
                        "share": share,
                        **score(mask(scan.suspects, n), mask(p.indices, n)),
                        "flagged_classes": list(scan.flagged_classes),
                        "clean_classes_flagged": len(clean.flagged_classes),
                    }
                )
    return out


def fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.2f}"
    return str(v)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--quick", action="store_true", help="10 epochs, 5 %% and 10 %% only, 2 clean seeds, 1 sweep pair"
    )
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--clean-seeds", type=int, default=5)
    ap.add_argument("--sweep", type=int, default=4, help="other (split seed, target) pairs, Garrison only")
    ap.add_argument("--tab-targets", type=int, default=2, help="target classes per table")
    ap.add_argument("--layers", action="store_true", help="also scan the conv features (layer '5')")
    ap.add_argument("--no-art", action="store_true")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", help="write the results to this JSON file")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    threadpool_limits(args.threads)  # tiny matrices: BLAS threads only contend
    args.shares = (0.01, 0.05, 0.10)
    if args.quick:
        args.epochs, args.shares, args.clean_seeds = min(args.epochs, 10), (0.05, 0.10), 2
        args.sweep = min(args.sweep, 1)
    t_start = time.perf_counter()
    print("poisoned digits ...", flush=True)
    poisoned = poisoned_runs(args)
    print("other splits and targets ...", flush=True)
    sweep = sweep_runs(args)
    print("clean digits ...", flush=True)
    clean = clean_runs(args)
    print("tables (k-NN method) ...", flush=True)
    tables = tabular_runs(args)

    print(
        "\n| trigger | share of rows | poisons (share of class 0) | detector | recall | precision | flagged | FPR |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in poisoned:
        print(
            f"| {r['kind']} | {r['share']:.0%} | {r['n_poison']} ({r['in_class_share']:.2f}) | {r['detector']} | "
            f"{fmt(r['recall'])} | {fmt(r['precision'])} | {r['n_flagged']} | {r['fpr']:.3f} |"
        )
    print("\n| split seed | target | trigger | share | recall | precision | flagged classes |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in sweep:
        print(
            f"| {r['seed']} | {r['target']} | {r['kind']} | {r['share']:.0%} | {fmt(r['recall'])} | "
            f"{fmt(r['precision'])} | {r['flagged_classes']} |"
        )
    print("\n| clean seed | classes flagged | suspects | per-sample FPR | largest class z |")
    print("| --- | --- | --- | --- | --- |")
    for r in clean:
        print(
            f"| {r['seed']} | {r['classes_flagged']} | {r['n_suspects']} | {r['fpr']:.4f} | "
            f"{r['max_class_z']:.2f} |"
        )
    print("\n| table | attack | target | share | recall | precision | flagged classes |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in tables:
        print(
            f"| {r['data']} | {r['attack']} | {r['target']} | {r['share']:.0%} | {fmt(r['recall'])} | "
            f"{fmt(r['precision'])} | {r['flagged_classes']} |"
        )

    ours = [
        r for r in poisoned if r["detector"] == "Garrison scan_training_set" and r["share"] >= 0.05
    ] + sweep
    bars = {
        "recall>=0.9@precision>=0.8 at 5% and 10%": all(
            (r["recall"] or 0) >= 0.9 and (r["precision"] or 0) >= 0.8 for r in ours
        ),
        "zero classes flagged on clean seeds": all(r["classes_flagged"] == 0 for r in clean),
        "per-sample FPR on clean <= 1%": all(r["fpr"] <= 0.01 for r in clean),
    }
    print("\nbars:", json.dumps(bars))
    out = {
        "bench": "poison_detect_bench",
        "python": platform.python_version(),
        "torch": torch.__version__,
        "epochs": args.epochs,
        "seed": args.seed,
        "quick": args.quick,
        "poisoned": poisoned,
        "sweep": sweep,
        "clean": clean,
        "tabular": tables,
        "bars": bars,
        "wall_s": time.perf_counter() - t_start,
    }
    print(json.dumps(out, default=float))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2, default=float))


if __name__ == "__main__":
    main()
