"""Neural Cleanse (Wang et al. 2019): does a trained model carry a backdoor? Asked of the model and a small clean
sample, without its training data.

For every class ``t`` it reverse-engineers the smallest trigger that sends the sample there: a mask ``m`` in
``[0, 1]^(h×w)`` (shared by the channels) and a pattern ``p`` in the input range, applied as
``x' = (1 - m) · x + m · p``. Both are free parameters squashed by ``tanh``, optimised with Adam on
``CE(f(x'), t) + λ_t · |m|_1`` over mini-batches of the sample, all classes in one batched forward pass.

``λ_t`` follows Neural Cleanse's schedule, per class and per round (one pass over the sample): it starts at 0 until
the trigger reaches ``attack_success_target`` for ``patience`` rounds, is then set to ``init_cost``, and afterwards
is multiplied by 1.5 after ``patience`` successful rounds in a row, divided by 1.5^1.5 after ``patience`` failed
ones. The smallest mask seen at the end of a successful round is kept; a class stops once λ has moved both ways
and that best norm has not improved by 1 % for ``2 × patience`` rounds.

A backdoor is a shortcut: its class needs a much smaller trigger than the others. The anomaly index of class ``t``
is ``|L1_t - median| / (1.4826 · MAD)`` over the scanned classes' best mask norms; a class is flagged when its
index exceeds the threshold on the small side only. Larger-than-usual masks mean nothing.

The paper's threshold of 2 is a per-class test: over k classes it fires on a clean model far more often than its
"95 %" suggests (k normal norms, median and MAD from the same k: 33 % of clean 10-class models have some class
past 2, 45 % at k = 20; measured: one of five clean digits CNNs). By default the threshold is instead calibrated
for the family of k classes: the ``1 - alpha`` quantile (``alpha`` 0.05) of the largest small-side index among k
independent normal norms (:func:`null_threshold`, Monte Carlo, 3.9 at k = 10, 3.6 at k = 20, 3.5 at k = 100).
``threshold=2.0`` gives the paper's rule.

The index is taken of the logarithms of the norms (``log_norms=True``): mask norms are positive sizes, skewed to the
right, and what makes a backdoor's trigger stand out is its ratio to the others, not its difference. On the digits
CNNs of ``bench/backdoor_model_bench.py`` the log index of the target class rose from 6.4 / 3.4 / 7.6 (BadNets
2×2, BadNets 3×3, blend) to 9.2 / 4.4 / 11.2, that of the clean models' smallest class from at most 2.8 to at most
3.6 (the choice was made after seeing those eight models; ``log_norms=False, threshold=2.0`` is the paper's rule).

Limits: it finds small, localised triggers (patches); blended, full-image triggers have large masks and are
usually missed. Scanning a subset of classes computes the median and MAD over that subset, so scan at least five.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from garrison.core.errors import InputError, ModelInputMismatchError
from garrison.core.optional import import_torch

__all__ = [
    "MAD_CONSISTENCY",
    "AnomalyIndex",
    "NeuralCleanseResult",
    "anomaly_index",
    "neural_cleanse",
    "null_threshold",
]

MAD_CONSISTENCY = 1.4826  # MAD × this estimates the standard deviation of a normal distribution

ProgressCallback = Callable[[str, int, int], None]

_MIN_SAMPLES = 20
_COST_UP = 1.5
_COST_DOWN = 1.5**1.5
_EARLY_STOP_IMPROVEMENT = 0.99
_NULL_DRAWS = 200_000


@dataclass(frozen=True)
class AnomalyIndex:
    """MAD-based outlier test of per-class trigger sizes: ``index[i] = |norms[i] - median| / mad`` with
    ``mad = 1.4826 · median(|norms - median|)``; ``flagged[i]`` when ``index[i] > threshold`` and ``norms[i]`` is
    below the median. A zero MAD (half the norms equal) makes every other norm's index infinite."""

    norms: np.ndarray
    index: np.ndarray
    flagged: np.ndarray
    median: float
    mad: float
    threshold: float


@functools.lru_cache(maxsize=64)
def null_threshold(n_classes: int, *, alpha: float = 0.05) -> float:
    """The anomaly-index threshold that a clean model with ``n_classes`` normally distributed trigger norms passes
    with probability ``1 - alpha``: the quantile of the largest small-side index (median and MAD taken from the same
    ``n_classes`` values), by Monte Carlo with a fixed seed."""
    if n_classes < 3:
        raise ValueError(f"`n_classes` must be at least 3 for a calibrated threshold, got {n_classes}")
    if not 0 < alpha < 1:
        raise ValueError(f"`alpha` must be in (0, 1), got {alpha!r}")
    rng = np.random.default_rng(20190519)  # fixed: the threshold is a constant of (n_classes, alpha)
    draws = rng.standard_normal((max(_NULL_DRAWS // n_classes, 20_000), n_classes))
    median = np.median(draws, axis=1, keepdims=True)
    mad = MAD_CONSISTENCY * np.median(np.abs(draws - median), axis=1, keepdims=True)
    largest = ((median - draws) / mad).max(axis=1)
    return float(np.quantile(largest, 1 - alpha))


def anomaly_index(norms: Sequence[float] | np.ndarray, *, threshold: float = 2.0) -> AnomalyIndex:
    """The anomaly index of each norm (see :class:`AnomalyIndex`); flags only the small side."""
    values = np.asarray(norms, dtype=np.float64)
    if values.ndim != 1 or len(values) < 2:
        raise ValueError(f"`norms` must be a 1-d array of at least 2 values, got shape {values.shape}")
    if not np.isfinite(values).all():
        raise ValueError("`norms` must be finite")
    if not threshold > 0:
        raise ValueError(f"`threshold` must be > 0, got {threshold!r}")
    median = float(np.median(values))
    mad = MAD_CONSISTENCY * float(np.median(np.abs(values - median)))
    deviation = np.abs(values - median)
    index = deviation / mad if mad > 0 else np.where(deviation > 0, np.inf, 0.0)
    flagged = (values < median) & (index > threshold)
    return AnomalyIndex(values, index, flagged, median, mad, float(threshold))


@dataclass(frozen=True)
class NeuralCleanseResult:
    """What :func:`neural_cleanse` found, one entry per scanned class (in ``classes`` order).

    ``mask_norms``: L1 norm of the smallest trigger mask found (the last one when the class never reached
    ``attack_success_target``, see ``reached``); ``attack_success``: the share of sample rows not of that class
    that its reversed trigger sends to it; ``anomaly_index`` and ``flagged_classes`` from :func:`anomaly_index`.
    ``masks`` ``(k, h, w)`` and ``patterns`` ``(k, c, h, w)`` are the triggers themselves. ``partial``: the
    deadline stopped the optimisation before every class had finished. With ``log_norms`` the index and ``mad``
    are of the norms' logarithms (``median_norm`` is a norm either way).
    """

    classes: tuple[int, ...]
    mask_norms: np.ndarray
    attack_success: np.ndarray
    anomaly_index: np.ndarray
    flagged_classes: tuple[int, ...]
    reached: np.ndarray
    rounds: np.ndarray
    masks: np.ndarray = field(repr=False)
    patterns: np.ndarray = field(repr=False)
    median_norm: float = math.nan
    mad: float = math.nan
    threshold: float = 2.0
    log_norms: bool = True
    attack_success_target: float = 0.99
    image_shape: tuple[int, ...] = ()
    n_samples: int = 0
    seed: int = 0
    partial: bool = False
    elapsed_s: float = 0.0

    @property
    def backdoored(self) -> bool:
        """Whether any class was flagged."""
        return bool(self.flagged_classes)

    def to_dict(self, *, include_triggers: bool = False) -> dict[str, Any]:
        """JSON-ready summary; each class's mask is summarised by its norm, its support (mask > 0.5) and bounding
        box. ``include_triggers=True`` adds the masks and patterns as nested lists."""
        per_class = []
        for i, cls in enumerate(self.classes):
            mask = self.masks[i]
            support = np.argwhere(mask > 0.5)
            row: dict[str, Any] = {
                "class": cls,
                "mask_norm": float(self.mask_norms[i]),
                "mask_support": len(support),
                "mask_bbox": None
                if not len(support)
                else [int(v) for v in (*support.min(axis=0), *(support.max(axis=0) + 1))],
                "attack_success": float(self.attack_success[i]),
                "anomaly_index": _json_float(float(self.anomaly_index[i])),
                "reached_target": bool(self.reached[i]),
                "rounds": int(self.rounds[i]),
                "flagged": cls in self.flagged_classes,
            }
            if include_triggers:
                row["mask"] = mask.tolist()
                row["pattern"] = self.patterns[i].tolist()
            per_class.append(row)
        return {
            "method": "neural-cleanse",
            "flagged_classes": list(self.flagged_classes),
            "backdoored": self.backdoored,
            "median_norm": self.median_norm,
            "mad": self.mad,
            "threshold": self.threshold,
            "log_norms": self.log_norms,
            "attack_success_target": self.attack_success_target,
            "image_shape": list(self.image_shape),
            "n_samples": self.n_samples,
            "seed": self.seed,
            "partial": self.partial,
            "elapsed_s": self.elapsed_s,
            "classes": per_class,
        }


def _json_float(value: float) -> float | str:
    return value if math.isfinite(value) else "inf"


def neural_cleanse(
    model: Any,
    x: np.ndarray,
    *,
    y: np.ndarray | None = None,
    classes: Sequence[int] | None = None,
    image_shape: tuple[int, ...] | None = None,
    lower: float | None = None,
    upper: float | None = None,
    max_rounds: int = 60,
    batch_size: int = 32,
    lr: float = 0.1,
    init_cost: float = 1e-3,
    attack_success_target: float = 0.99,
    patience: int = 5,
    threshold: float | None = None,
    alpha: float = 0.05,
    log_norms: bool = True,
    seed: int = 0,
    deadline: float | None = None,
    progress: ProgressCallback | None = None,
) -> NeuralCleanseResult:
    """Reverse-engineer a minimal trigger per class of a torch ``model`` on the clean sample ``x`` and flag the
    classes whose trigger is anomalously small (see the module docstring).

    ``model``: a :class:`~garrison.adapters.TorchClassifier` (or anything with a ``torch_module``) or a bare
    ``torch.nn.Module`` returning logits. ``x``: at least 20 clean rows; images ``(c, h, w)`` / ``(h, w)``, or flat
    rows read through ``image_shape``. ``y`` (optional) excludes each class's own rows when its trigger's attack
    success is measured (otherwise the model's predictions do). ``classes``: scan only these (default: all).
    ``lower``/``upper``: the valid input range the pattern stays in (default: the sample's min and max).
    ``max_rounds`` passes over the sample of ``batch_size`` rows per step bound the work; ``deadline`` (a
    ``time.monotonic()`` value) stops between steps and marks the result ``partial``. ``progress(stage, done,
    total)`` is called after each round. ``threshold``: the anomaly index that flags a class (default
    :func:`null_threshold` of the number of scanned classes at ``alpha``; 2.0 is the paper's per-class rule);
    ``log_norms``: take the index of the norms' logarithms (see the module docstring).
    """
    torch = import_torch()
    started = time.monotonic()
    module, model_shape, probabilities, n_classes = _torch_model(model, torch, x)
    x = np.asarray(x, dtype=np.float32)
    img_shape = _image_layout(x, model_shape, image_shape)
    c, h, w = img_shape
    if len(x) < _MIN_SAMPLES:
        raise InputError(f"need at least {_MIN_SAMPLES} clean samples, got {len(x)}", field="x")
    if not np.isfinite(x).all():
        raise InputError("the sample holds NaN or infinite values", field="x")
    for name, value, low in (
        ("max_rounds", max_rounds, 1),
        ("batch_size", batch_size, 1),
        ("patience", patience, 1),
    ):
        if value < low:
            raise ValueError(f"`{name}` must be >= {low}, got {value!r}")
    if not lr > 0 or not init_cost > 0:
        raise ValueError(f"`lr` and `init_cost` must be > 0, got {lr!r} and {init_cost!r}")
    if not 0 < attack_success_target <= 1:
        raise ValueError(f"`attack_success_target` must be in (0, 1], got {attack_success_target!r}")
    lo = float(np.min(x)) if lower is None else float(lower)
    hi = float(np.max(x)) if upper is None else float(upper)
    if not hi > lo:
        raise ValueError(f"`upper` must be > `lower`, got {lo!r} and {hi!r}")
    if n_classes is None:
        with torch.inference_mode():
            n_classes = int(module(torch.zeros((1, *model_shape), device=_device(module, torch))).shape[1])
    scanned = _scanned_classes(classes, n_classes)
    labels = None if y is None else np.asarray(y)
    if labels is not None and labels.shape != (len(x),):
        raise ModelInputMismatchError(
            f"`y` must hold one label per sample ({len(x)}), got shape {labels.shape}"
        )

    device = _device(module, torch)
    images = torch.as_tensor(x.reshape(len(x), c, h, w), device=device)
    gen = torch.Generator().manual_seed(seed)
    # tanh parametrisation: m = (tanh(a) + 1) / 2 in (0, 1), p = lo + (hi - lo)(tanh(b) + 1) / 2 in (lo, hi)
    mask_raw = [
        torch.atanh(torch.rand((h, w), generator=gen) * 1.6 - 0.8).to(device).requires_grad_(True)
        for _ in scanned
    ]
    pattern_raw = [torch.randn((c, h, w), generator=gen).to(device).requires_grad_(True) for _ in scanned]
    optimizer = torch.optim.Adam([*mask_raw, *pattern_raw], lr=lr, betas=(0.5, 0.9))
    schedules = [_Schedule(init_cost, attack_success_target, patience) for _ in scanned]

    def trigger(i: int) -> tuple[Any, Any]:
        mask = (torch.tanh(mask_raw[i]) + 1) / 2
        pattern = lo + (hi - lo) * (torch.tanh(pattern_raw[i]) + 1) / 2
        return mask, pattern

    partial = False
    steps_per_round = math.ceil(len(x) / batch_size)
    for round_ in range(max_rounds):
        active = [i for i, s in enumerate(schedules) if not s.stopped]
        if not active:
            break
        order = torch.randperm(len(x), generator=gen).to(device)
        hits = torch.zeros(len(active), device=device)
        for step in range(steps_per_round):
            if deadline is not None and time.monotonic() > deadline:
                partial = True
                break
            batch = images[order[step * batch_size : (step + 1) * batch_size]]
            parts = [trigger(i) for i in active]
            masks = torch.stack([m for m, _ in parts])[:, None, None]  # (a, 1, 1, h, w)
            patterns = torch.stack([p for _, p in parts])[:, None]  # (a, 1, c, h, w)
            stamped = (1 - masks) * batch[None] + masks * patterns  # (a, b, c, h, w)
            out = module(stamped.reshape(len(active) * len(batch), *model_shape))
            logits = torch.log(out.clamp_min(1e-12)) if probabilities else out
            targets = torch.as_tensor([scanned[i] for i in active], device=device).repeat_interleave(
                len(batch)
            )
            ce = torch.nn.functional.cross_entropy(logits, targets, reduction="none").view(len(active), -1)
            costs = torch.as_tensor([schedules[i].cost for i in active], device=device)
            loss = (ce.mean(dim=1) + costs * masks.flatten(1).abs().sum(dim=1)).sum()
            optimizer.zero_grad(set_to_none=True)
            params = [mask_raw[i] for i in active] + [pattern_raw[i] for i in active]
            grads = torch.autograd.grad(loss, params)
            for param, grad in zip(params, grads, strict=True):
                param.grad = grad
            optimizer.step()
            hits += (logits.detach().argmax(dim=1) == targets).view(len(active), -1).float().sum(dim=1)
        if partial:
            break
        success = (hits / len(x)).cpu().numpy()
        with torch.no_grad():
            for j, i in enumerate(active):
                mask, pattern = trigger(i)
                schedules[i].update(float(success[j]), mask, pattern)
        if progress is not None:
            progress("neural-cleanse", round_ + 1, max_rounds)

    with torch.no_grad():
        final = [s.best if s.best is not None else trigger(i) for i, s in enumerate(schedules)]
        masks_np = np.stack([m.detach().cpu().double().numpy() for m, _ in final])
        patterns_np = np.stack([p.detach().cpu().double().numpy() for _, p in final])
        norms = np.abs(masks_np).reshape(len(scanned), -1).sum(axis=1)
        own = labels if labels is not None else _predict(module, images, model_shape, torch)
        success_rates = []
        for k, cls in enumerate(scanned):
            others = images[torch.as_tensor(own != cls, device=device)]
            if not len(others):
                success_rates.append(math.nan)
                continue
            mask, pattern = (
                torch.as_tensor(a, dtype=torch.float32, device=device) for a in (masks_np[k], patterns_np[k])
            )
            stamped = (1 - mask) * others + mask * pattern
            pred = _predict(module, stamped, model_shape, torch)
            success_rates.append(float(np.mean(pred == cls)))
    if threshold is None:
        threshold = null_threshold(len(scanned), alpha=alpha) if len(scanned) >= 3 else 2.0
    if len(scanned) >= 2:
        test = anomaly_index(np.log(np.maximum(norms, 1e-6)) if log_norms else norms, threshold=threshold)
        index, flagged, median, mad = test.index, test.flagged, test.median, test.mad
        median = math.exp(median) if log_norms else median
    else:
        index, flagged, median, mad = np.zeros(1), np.zeros(1, dtype=bool), float(norms[0]), math.nan
    return NeuralCleanseResult(
        classes=tuple(scanned),
        mask_norms=norms,
        attack_success=np.asarray(success_rates),
        anomaly_index=index,
        flagged_classes=tuple(cls for cls, f in zip(scanned, flagged, strict=True) if f),
        reached=np.array([s.best is not None for s in schedules]),
        rounds=np.array([s.rounds for s in schedules]),
        masks=masks_np,
        patterns=patterns_np,
        median_norm=median,
        mad=mad,
        log_norms=log_norms,
        threshold=float(threshold),
        attack_success_target=float(attack_success_target),
        image_shape=img_shape,
        n_samples=len(x),
        seed=seed,
        partial=partial,
        elapsed_s=time.monotonic() - started,
    )


class _Schedule:
    """Neural Cleanse's adaptive λ and early stop for one class, updated once per round."""

    def __init__(self, init_cost: float, target: float, patience: int) -> None:
        self.init_cost = init_cost
        self.target = target
        self.patience = patience
        self.cost = 0.0
        self.set_counter = self.up_counter = self.down_counter = 0
        self.up_flag = self.down_flag = False
        self.best_norm = math.inf
        self.best: tuple[Any, Any] | None = None
        self.stop_counter = 0
        self.stop_best = math.inf
        self.stopped = False
        self.rounds = 0

    def update(self, success: float, mask: Any, pattern: Any) -> None:
        self.rounds += 1
        norm = float(mask.abs().sum())
        if success >= self.target and norm < self.best_norm:
            self.best_norm = norm
            self.best = (mask.detach().clone(), pattern.detach().clone())
        if math.isfinite(self.best_norm):
            if self.best_norm >= _EARLY_STOP_IMPROVEMENT * self.stop_best:
                self.stop_counter += 1
            else:
                self.stop_counter = 0
            self.stop_best = min(self.stop_best, self.best_norm)
        if self.up_flag and self.down_flag and self.stop_counter >= 2 * self.patience:
            self.stopped = True
            return
        if self.cost == 0 and success >= self.target:
            self.set_counter += 1
            if self.set_counter >= self.patience:
                self.cost = self.init_cost
                self.up_counter = self.down_counter = 0
                self.up_flag = self.down_flag = False
        else:
            self.set_counter = 0
        if success >= self.target:
            self.up_counter += 1
            self.down_counter = 0
        else:
            self.up_counter = 0
            self.down_counter += 1
        if self.up_counter >= self.patience:
            self.up_counter = 0
            self.cost *= _COST_UP
            self.up_flag = True
        elif self.down_counter >= self.patience:
            self.down_counter = 0
            self.cost /= _COST_DOWN
            self.down_flag = True


def _torch_model(model: Any, torch: Any, x: Any) -> tuple[Any, tuple[int, ...], bool, int | None]:
    """The module, the per-sample shape it takes, whether it returns probabilities, and ``n_classes`` if known."""
    if isinstance(model, torch.nn.Module):
        shape = tuple(np.shape(x)[1:])
        return model, shape, False, None
    module = getattr(model, "torch_module", None)
    if module is None:
        raise ModelInputMismatchError(
            f"Neural Cleanse needs a torch model (a TorchClassifier or an nn.Module), got {type(model).__name__}"
        )
    probabilities = getattr(model, "output", "logits") == "probabilities"
    return module, tuple(model.input_spec.shape), probabilities, int(model.n_classes)


def _image_layout(
    x: np.ndarray, model_shape: tuple[int, ...], image_shape: tuple[int, ...] | None
) -> tuple[int, int, int]:
    """``(c, h, w)`` of one sample."""
    if x.ndim < 2:
        raise InputError(f"`x` must be a batch of samples, got shape {x.shape}", field="x")
    per_row = int(np.prod(x.shape[1:]))
    if int(np.prod(model_shape)) != per_row:
        raise ModelInputMismatchError(
            f"the model takes samples of shape {model_shape}, got a batch of shape {x.shape}"
        )
    if image_shape is not None:
        shape = tuple(int(v) for v in image_shape)
        if len(shape) not in (2, 3) or int(np.prod(shape)) != per_row:
            raise InputError(f"`image_shape` {tuple(image_shape)} does not hold samples of {per_row} values")
    elif len(model_shape) in (2, 3):
        shape = model_shape
    elif x.ndim in (3, 4):
        shape = tuple(x.shape[1:])
    else:
        raise InputError(
            f"samples of shape {x.shape[1:]} are not images: pass `image_shape` ((h, w) or (c, h, w))",
            field="x",
        )
    return (1, *shape) if len(shape) == 2 else shape  # type: ignore[return-value]


def _scanned_classes(classes: Sequence[int] | None, n_classes: int) -> list[int]:
    if classes is None:
        return list(range(n_classes))
    scanned = sorted({int(c) for c in classes})
    if not scanned or scanned[0] < 0 or scanned[-1] >= n_classes:
        raise ValueError(
            f"`classes` must be a non-empty set of classes in [0, {n_classes}), got {list(classes)!r}"
        )
    return scanned


def _device(module: Any, torch: Any) -> Any:
    param = next(iter(module.parameters()), None) if hasattr(module, "parameters") else None
    return param.device if param is not None else torch.device("cpu")


def _predict(module: Any, images: Any, model_shape: tuple[int, ...], torch: Any) -> np.ndarray:
    preds = []
    with torch.no_grad():
        for start in range(0, len(images), 512):
            chunk = images[start : start + 512]
            preds.append(module(chunk.reshape(len(chunk), *model_shape)).argmax(dim=1).cpu().numpy())
    return np.concatenate(preds) if preds else np.zeros(0, dtype=np.int64)
