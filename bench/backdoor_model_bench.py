#!/usr/bin/env python3
"""Model-side backdoor scan (issue #6, item 3): Neural Cleanse on trained models, STRIP on their inputs.

Setup: scikit-learn digits (8x8 in [0, 1]), 70/30 stratified split (seed 0), the 2-conv CNN of
/work/shared/anchors/poison_bench.py trained 20 epochs with Adam (lr 2e-3). Poisoned training sets come from
``garrison.poisoning.poison`` at rate 0.1 of the non-target rows, target class 0:

- ``badnets-2x2``: a 2x2 patch of 1.0 in the bottom-right corner (the anchor bench's trigger);
- ``badnets-3x3``: the generator's default 3x3 patch (14 % of an 8x8 image);
- ``blend``: the generator's default uniform-noise pattern blended in at alpha 0.2 (a full-image trigger);
- ``clean-s0`` .. ``clean-s4``: five clean models (training seeds 0-4).

Neural Cleanse (Garrison) runs on the first 300 test rows with their labels, default settings, seed 0. Bar:
flags the BadNets model and names class 0; flags nothing on the five clean ones.

STRIP (Garrison, defaults: 20 overlays, additive superimposition, mean entropy) is fitted on test rows 0-269 at a
1 % false-rejection rate and evaluated on rows 270-539: detection rate of triggered inputs (rows of classes other
than the target, trigger applied), false-rejection rate on the clean held-out rows; on the clean models, the false
alarm rate on clean rows and on triggered rows (a clean model has no backdoor to find).

Peers (ART 1.20.1, in .bench-env-art): ART's ``NeuralCleanse`` supports Keras classifiers only
(``NotImplementedError("Only Keras classifiers are supported for this defence.")``), so it is skipped.
ART's ``STRIP`` works with any ART classifier and runs beside ours on the BadNets and clean-s0 models with
``num_samples=20, false_acceptance_rate=0.01`` (it averages images 50/50, fits a normal distribution to the clean
entropies and uses global ``np.random``, seeded here). ART's STRIP needs probabilities from ``predict``, so
the CNN is given to it with a softmax layer appended. Its entropy is ``scipy.stats.entropy`` along the overlay
axis (per class, over overlays), not the paper's per-prediction entropy; it is run as shipped.

Usage:
    .bench-env-art/bin/python bench/backdoor_model_bench.py [--quick] [--json out.json]
    .venv/bin/python bench/backdoor_model_bench.py           # Garrison only, without the ART column
"""

from __future__ import annotations

import argparse
import importlib
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
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from garrison.adapters import InputSpec, TorchClassifier
from garrison.poisoning import Trigger, poison
from garrison.poisoning.neural_cleanse import neural_cleanse
from garrison.poisoning.strip import STRIP
from garrison.testing.digits import train_digits_cnn

TARGET = 0
RATE = 0.1
EPOCHS = 20


def train(x: np.ndarray, y: np.ndarray, seed: int) -> nn.Module:
    return train_digits_cnn(x, y, seed=seed, epochs=EPOCHS)


def predict(module: nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return module(torch.as_tensor(x, dtype=torch.float32)).argmax(1).numpy()


def art_strip(
    module: nn.Module, x_fit: np.ndarray, x_clean: np.ndarray, x_trig: np.ndarray
) -> dict[str, Any]:
    try:
        from art.defences.transformer.poisoning import STRIP as ArtSTRIP
        from art.estimators.classification import PyTorchClassifier
    except ImportError:
        return {"skipped": "ART not installed (run with .bench-env-art/bin/python)"}
    art_strip_module = importlib.import_module("art.estimators.poison_mitigation.strip.strip")
    art_strip_module.tqdm = lambda items, **_: items  # mitigate() draws a progress bar on stderr
    import logging

    logging.getLogger("art").setLevel(logging.ERROR)
    est = PyTorchClassifier(
        model=nn.Sequential(module, nn.Softmax(dim=1)),  # ART's STRIP takes entropies of predict()'s output
        loss=nn.CrossEntropyLoss(),
        input_shape=(1, 8, 8),
        nb_classes=10,
        clip_values=(0.0, 1.0),
        device_type="cpu",
    )
    np.random.seed(0)
    started = time.perf_counter()
    defended = ArtSTRIP(est)(num_samples=20, false_acceptance_rate=0.01)
    defended.mitigate(x_fit)
    fit_s = time.perf_counter() - started

    def abstained(x: np.ndarray) -> np.ndarray:
        return ~defended.predict(x).any(axis=1)  # ART's abstain() is an all-zero row

    started = time.perf_counter()
    detection = float(abstained(x_trig).mean())
    frr = float(abstained(x_clean).mean())
    per_input_ms = 1000 * (time.perf_counter() - started) / (len(x_trig) + len(x_clean))
    return {"detection": detection, "frr": frr, "fit_s": fit_s, "per_input_ms": per_input_ms}


def strip_figures(
    model: TorchClassifier, trigger: Trigger | None, x_fit: np.ndarray, x_eval: np.ndarray, y_eval: np.ndarray
) -> dict[str, Any]:
    started = time.perf_counter()
    strip = STRIP(model, frr=0.01, seed=0).fit(x_fit)
    fit_s = time.perf_counter() - started
    started = time.perf_counter()
    frr = float(strip.detect(x_eval).mean())
    out: dict[str, Any] = {"threshold": strip.threshold_, "frr": frr, "fit_s": fit_s}
    if trigger is not None:
        x_trig = trigger.apply(x_eval[y_eval != TARGET]).astype(np.float32)
        out["detection"] = float(strip.detect(x_trig).mean())
        n = len(x_eval) + len(x_trig)
    else:
        n = len(x_eval)
    out["per_input_ms"] = 1000 * (time.perf_counter() - started) / n
    one = x_eval[:1]
    started = time.perf_counter()
    for _ in range(50):
        strip.detect(one)
    out["single_request_ms"] = 1000 * (time.perf_counter() - started) / 50
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="BadNets 2x2, blend and two clean seeds only")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    wall = time.perf_counter()

    data = load_digits()
    x = (data.images / 16.0).astype(np.float32)[:, None]
    y = data.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.3, random_state=0, stratify=y)
    x_nc, y_nc = x_test[:300], y_test[:300]
    x_fit, x_eval, y_eval = x_test[:270], x_test[270:], y_test[270:]

    specs: list[tuple[str, str | None, dict[str, Any], int]] = [("badnets-2x2", "badnets", {"size": 2}, 0)]
    if not args.quick:
        specs.append(("badnets-3x3", "badnets", {"size": 3}, 0))
    specs.append(("blend", "blend", {}, 0))
    specs += [(f"clean-s{s}", None, {}, s) for s in range(2 if args.quick else 5)]

    rows: list[dict[str, Any]] = []
    badnets_trigger: Trigger | None = None
    for name, kind, options, seed in specs:
        started = time.perf_counter()
        if kind is None:
            module, trigger = train(x_train, y_train, seed), None
        else:
            poisoned = poison(x_train, y_train, kind=kind, rate=RATE, target=TARGET, seed=0, **options)
            module, trigger = train(poisoned.x, poisoned.y, seed), poisoned.trigger
            if name == "badnets-2x2":
                badnets_trigger = trigger
        train_s = time.perf_counter() - started
        model = TorchClassifier(module, input_spec=InputSpec((1, 8, 8)), name=name)
        row: dict[str, Any] = {
            "model": name,
            "backdoored": kind is not None,
            "clean_accuracy": float((predict(module, x_test) == y_test).mean()),
            "train_s": train_s,
        }
        probe = trigger if trigger is not None else badnets_trigger
        if probe is not None:
            row["attack_success"] = float(
                (predict(module, probe.apply(x_test[y_test != TARGET])) == TARGET).mean()
            )
        result = neural_cleanse(model, x_nc, y=y_nc, seed=0)
        smallest = int(np.argmin(result.mask_norms))
        row["nc"] = {
            "flagged": list(result.flagged_classes),
            "smallest_class": smallest,
            "smallest_norm": float(result.mask_norms[smallest]),
            "smallest_index": float(result.anomaly_index[smallest]),
            "target_index": float(result.anomaly_index[TARGET]),
            "target_norm": float(result.mask_norms[TARGET]),
            "median_norm": result.median_norm,
            "elapsed_s": result.elapsed_s,
            "per_class": result.to_dict()["classes"],
        }
        row["strip"] = strip_figures(model, probe, x_fit, x_eval, y_eval)
        if name in ("badnets-2x2", "clean-s0") and probe is not None:
            x_trig = probe.apply(x_eval[y_eval != TARGET]).astype(np.float32)
            row["art_strip"] = art_strip(module, x_fit, x_eval, x_trig)
        rows.append(row)
        print(f"  {name}: done in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)

    clean = [r for r in rows if not r["backdoored"]]
    badnets = rows[0]
    bars = {
        "nc_flags_badnets_target": badnets["nc"]["flagged"] == [TARGET],
        "nc_clean_models_flagged": sum(bool(r["nc"]["flagged"]) for r in clean),
        "nc_clean_max_smallest_index": max(r["nc"]["smallest_index"] for r in clean),
        "strip_badnets_detection_at_1pct_frr": badnets["strip"]["detection"],
        "strip_clean_model_false_alarm": float(np.mean([r["strip"]["frr"] for r in clean])),
        "strip_clean_model_false_alarm_on_triggered": float(
            np.mean([r["strip"]["detection"] for r in clean])
        ),
    }
    summary = {
        "bench": "backdoor_model_bench",
        "quick": args.quick,
        "platform": platform.platform(),
        "torch": torch.__version__,
        "threads": args.threads,
        "wall_s": time.perf_counter() - wall,
        "bars": bars,
        "rows": rows,
    }

    print()
    header = (
        f"{'model':12s} {'acc':>5s} {'ASR':>5s} | {'NC flagged':>10s} {'min class':>9s} {'min L1':>6s} "
        f"{'AI':>5s} {'AI[0]':>5s} {'med L1':>6s} {'NC s':>5s} | {'STRIP det':>9s} {'FRR':>5s} {'ms/req':>6s} "
        f"| {'ART det':>7s} {'ART FRR':>7s}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        nc, st = r["nc"], r["strip"]
        art = r.get("art_strip", {})
        asr = f"{r['attack_success']:.2f}" if "attack_success" in r else "-"
        det = f"{st['detection']:.3f}" if "detection" in st else "-"
        art_det = f"{art['detection']:.3f}" if "detection" in art else "-"
        art_frr = f"{art['frr']:.3f}" if "frr" in art else "-"
        print(
            f"{r['model']:12s} {r['clean_accuracy']:5.3f} {asr:>5s} | {nc['flagged']!s:>10s} "
            f"{nc['smallest_class']:9d} {nc['smallest_norm']:6.2f} {nc['smallest_index']:5.2f} "
            f"{nc['target_index']:5.2f} {nc['median_norm']:6.2f} {nc['elapsed_s']:5.1f} | {det:>9s} "
            f"{st['frr']:5.3f} {st['single_request_ms']:6.2f} | {art_det:>7s} {art_frr:>7s}"
        )
    print(
        "\nASR: the backdoored model's attack success (clean models: the BadNets 2x2 trigger's). AI: anomaly index "
        "of the smallest trigger (of log norms; flagged above the calibrated threshold, 3.89 for 10 classes); AI[0]: of the target class. STRIP det: triggered inputs "
        "flagged (clean models: triggered inputs flagged, which is a false alarm); FRR: clean held-out inputs "
        "flagged. ms/req: one input scored alone (20 overlays in one predict_proba call)."
    )
    print("\nbars:", json.dumps(bars))
    print(f"wall: {summary['wall_s']:.0f} s")
    text = json.dumps(summary, indent=2, sort_keys=True)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")


if __name__ == "__main__":
    main()
