#!/usr/bin/env python3
"""Trigger localisation from attributions (issue #7, item 4): BadNets-poisoned digits, 5 seeds x 2 trigger positions.

Setup: scikit-learn digits (8x8 in [0, 1]), 70/30 stratified split (seed s), ``garrison.testing.digits.train_digits_cnn`` (2 conv layers)
trained 20 epochs with Adam (lr 2e-3, seed s). The poisoned training set comes from
``garrison.poisoning.poison(kind="badnets", rate=RATE, target=s, seed=s, corner=...)``: the generator's default 3x3
patch of 1.0 (9 of 64 pixels) in the bottom-right or top-left corner of 10 % of the non-target rows, relabelled to
class s. For each seed a clean model is trained on the clean split too.

``localise_triggers`` runs with its defaults (Integrated Gradients through ``Explainer``, top-k = 5 of 64 pixels,
48 hosts, fool rate 0.8) on the model's own training rows. Reported per run: the flagged classes, the target's
hijacking share, the IoU of the localised region with the true trigger (the pixel set, and its bounding box), and
the seconds taken. Bar: the target class flagged with IoU >= 0.5 in every poisoned run; nothing flagged on clean
models.

No peer: ART has no attribution-based backdoor localisation (its SentiNet-like defences are absent; its
``NeuralCleanse`` is Keras-only), so no ratio is printed.

Usage:
    .venv/bin/python bench/trigger_localisation_bench.py [--seeds 5] [--rate 0.1] [--json out.json]
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
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from garrison.adapters import InputSpec, TorchClassifier
from garrison.explain import localise_triggers
from garrison.poisoning import poison
from garrison.testing.digits import train_digits_cnn

EPOCHS = 20


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def box_mask(box: tuple[int, int, int, int] | None) -> np.ndarray:
    mask = np.zeros((8, 8), dtype=bool)
    if box is not None:
        mask[box[0] : box[2] + 1, box[1] : box[3] + 1] = True
    return mask.ravel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--rate", type=float, default=0.1)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None]
    y = digits.target.astype(np.int64)
    spec = InputSpec(shape=(1, 8, 8))
    runs: list[dict[str, Any]] = []
    for seed in range(args.seeds):
        xtr, _, ytr, _ = train_test_split(x, y, test_size=0.3, random_state=seed, stratify=y)
        for corner in ("bottom-right", "top-left", None):
            if corner is None:
                data_x, data_y, target, truth = xtr, ytr, None, None
            else:
                p = poison(xtr, ytr, kind="badnets", rate=args.rate, target=seed, seed=seed, corner=corner)
                data_x, data_y, target = p.x, p.y, int(seed)
                assert p.trigger is not None
                truth = p.trigger.apply(np.zeros((1, 1, 8, 8))).ravel() > 0
            model = TorchClassifier(
                train_digits_cnn(data_x, data_y, seed=seed, epochs=EPOCHS), input_spec=spec, n_classes=10
            )
            started = time.perf_counter()
            scan = localise_triggers(model, data_x, seed=seed)
            seconds = time.perf_counter() - started
            row: dict[str, Any] = {
                "seed": seed,
                "trigger": corner or "clean",
                "flagged": [c.index for c in scan.flagged],
                "seconds": round(seconds, 2),
            }
            if target is not None and truth is not None:
                t = scan.classes[target]
                row.update(
                    target=target,
                    target_flagged=t.flagged,
                    target_share=round(t.share, 3),
                    max_other_share=round(max(c.share for c in scan.classes if c.index != target), 3),
                    iou_region=round(iou(scan.region_mask(target), truth), 3),
                    iou_box=round(iou(box_mask(t.box), truth), 3),
                    region_size=len(t.region),
                )
            runs.append(row)
            print(json.dumps(row), flush=True)
    poisoned = [r for r in runs if r["trigger"] != "clean"]
    clean = [r for r in runs if r["trigger"] == "clean"]
    summary = {
        "poisoned_runs": len(poisoned),
        "target_flagged": sum(r["target_flagged"] and r["flagged"] == [r["target"]] for r in poisoned),
        "min_iou_region": min(r["iou_region"] for r in poisoned),
        "min_iou_box": min(r["iou_box"] for r in poisoned),
        "clean_runs": len(clean),
        "clean_flagged": sum(bool(r["flagged"]) for r in clean),
        "median_seconds": float(np.median([r["seconds"] for r in runs])),
        "rate": args.rate,
        "python": platform.python_version(),
        "torch": torch.__version__,
    }
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps({"runs": runs, "summary": summary}, indent=2))


if __name__ == "__main__":
    main()
