"""Poison generators: a poisoned copy of a training set and its ground truth.

- label flips: ``flip-random`` relabels a ``rate`` of the rows to a random other class; ``flip-targeted`` relabels
  rows of ``source`` (default: every class but ``target``) to ``target``;
- ``badnets`` (Gu et al. 2017): a solid square patch in a corner of ``rate`` of the rows of other classes, which are
  relabelled to ``target``;
- ``blend`` (Chen et al. 2017): a fixed random pattern blended in, ``x' = (1 - alpha) x + alpha p``, on the same rows.

Images are ``(h, w)`` or ``(c, h, w)`` per sample; flat rows are read as square images (64 features: 8 × 8) unless
``image_shape`` says otherwise. Exactly ``round(rate × eligible rows)`` rows are poisoned, chosen by ``seed``. The
:class:`Trigger` applies the same backdoor to test inputs, to measure its success.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

__all__ = ["KINDS", "PoisonedData", "Trigger", "blend_trigger", "flip_labels", "patch_trigger", "poison"]

KINDS = ("flip-random", "flip-targeted", "badnets", "blend")


@dataclass(frozen=True)
class Trigger:
    """A backdoor trigger: ``badnets`` (a ``size``-square patch of ``value`` at a corner) or ``blend`` (``pattern``
    mixed in with weight ``alpha``), on images of ``image_shape``."""

    kind: Literal["badnets", "blend"]
    image_shape: tuple[int, ...]
    size: int = 3
    value: float = 1.0
    corner: Literal["bottom-right", "top-left"] = "bottom-right"
    alpha: float = 0.1
    pattern: np.ndarray | None = None

    def apply(self, x: np.ndarray) -> np.ndarray:
        """``x`` (rows of any shape holding ``image_shape``) with the trigger stamped in; a new array."""
        x = np.asarray(x)
        images = x.reshape(len(x), *self.image_shape).astype(np.float64, copy=True)
        if self.kind == "badnets":
            h, w = self.image_shape[-2:]
            rows = slice(h - self.size, h) if self.corner == "bottom-right" else slice(0, self.size)
            cols = slice(w - self.size, w) if self.corner == "bottom-right" else slice(0, self.size)
            images[..., rows, cols] = self.value
        else:
            assert self.pattern is not None
            images = (1 - self.alpha) * images + self.alpha * self.pattern
        return images.reshape(x.shape).astype(x.dtype, copy=False)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "image_shape": list(self.image_shape)}
        if self.kind == "badnets":
            out.update(size=self.size, value=self.value, corner=self.corner)
        else:
            out.update(alpha=self.alpha, pattern=None if self.pattern is None else self.pattern.tolist())
        return out


@dataclass(frozen=True)
class PoisonedData:
    """The poisoned copy (``x``, ``y``), which rows were poisoned (``indices``, sorted), and how."""

    x: np.ndarray
    y: np.ndarray
    indices: np.ndarray
    kind: str
    rate: float
    seed: int
    target: int | None = None
    trigger: Trigger | None = None

    def truth(self) -> dict[str, Any]:
        """The ground truth as JSON-ready data."""
        return {
            "kind": self.kind,
            "rate": self.rate,
            "seed": self.seed,
            "target": self.target,
            "n_rows": len(self.y),
            "indices": self.indices.tolist(),
            "trigger": None if self.trigger is None else self.trigger.to_dict(),
        }


def _check_rate(rate: float) -> None:
    if not 0 < rate < 1:
        raise ValueError(f"`rate` must be in (0, 1), got {rate!r}")


def _classes(y: np.ndarray, n_classes: int | None) -> int:
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError("`y` must be a 1-d array of integer class labels")
    if len(y) and y.min() < 0:
        raise ValueError("class labels must be >= 0")
    k = n_classes if n_classes is not None else (int(y.max()) + 1 if len(y) else 0)
    if k < 2:
        raise ValueError(f"need at least 2 classes, got {k}")
    return k


def _choose(eligible: np.ndarray, rate: float, rng: np.random.Generator) -> np.ndarray:
    count = round(rate * len(eligible))
    if count == 0:
        raise ValueError(f"`rate` {rate} of {len(eligible)} eligible rows poisons none")
    return np.sort(rng.choice(eligible, count, replace=False))


def flip_labels(
    y: np.ndarray,
    *,
    rate: float,
    target: int | None = None,
    source: int | None = None,
    n_classes: int | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Relabel ``rate`` of the eligible rows: to a random other class (no ``target``), or to ``target`` (rows of
    ``source``, or of every other class). Returns the new labels and the flipped row indices."""
    y = np.asarray(y)
    _check_rate(rate)
    k = _classes(y, n_classes)
    rng = np.random.default_rng(seed)
    if target is None:
        if source is not None:
            raise ValueError("`source` needs a `target`")
        flipped = _choose(np.arange(len(y)), rate, rng)
        out = y.copy()
        out[flipped] = (y[flipped] + rng.integers(1, k, len(flipped))) % k  # never the row's own class
        return out, flipped
    if not 0 <= target < k:
        raise ValueError(f"`target` must be a class in [0, {k}), got {target!r}")
    if source is not None and (source == target or not 0 <= source < k):
        raise ValueError(f"`source` must be a class in [0, {k}) other than the target, got {source!r}")
    eligible = np.flatnonzero(y == source) if source is not None else np.flatnonzero(y != target)
    flipped = _choose(eligible, rate, rng)
    out = y.copy()
    out[flipped] = target
    return out, flipped


def _image_shape(x: np.ndarray, image_shape: tuple[int, ...] | None) -> tuple[int, ...]:
    per_row = int(np.prod(x.shape[1:]))
    if image_shape is not None:
        if int(np.prod(image_shape)) != per_row or len(image_shape) not in (2, 3):
            raise ValueError(f"`image_shape` {image_shape} does not hold rows of {per_row} values")
        return tuple(image_shape)
    if x.ndim in (3, 4):
        return tuple(x.shape[1:])
    side = math.isqrt(per_row)
    if side * side != per_row:
        raise ValueError(f"rows of {per_row} values are not square images: pass `image_shape`")
    return (side, side)


def _backdoor(
    x: np.ndarray,
    y: np.ndarray,
    trigger: Trigger,
    *,
    rate: float,
    target: int,
    n_classes: int | None,
    seed: int,
) -> PoisonedData:
    _check_rate(rate)
    k = _classes(y, n_classes)
    if not 0 <= target < k:
        raise ValueError(f"`target` must be a class in [0, {k}), got {target!r}")
    rng = np.random.default_rng(seed)
    rows = _choose(np.flatnonzero(y != target), rate, rng)
    x_out, y_out = x.copy(), y.copy()
    x_out[rows] = trigger.apply(x[rows])
    y_out[rows] = target
    return PoisonedData(x_out, y_out, rows, trigger.kind, rate, seed, target, trigger)


def patch_trigger(
    x: np.ndarray,
    y: np.ndarray,
    *,
    rate: float,
    target: int,
    size: int = 3,
    value: float | None = None,
    corner: Literal["bottom-right", "top-left"] = "bottom-right",
    image_shape: tuple[int, ...] | None = None,
    n_classes: int | None = None,
    seed: int = 0,
) -> PoisonedData:
    """BadNets: a ``size``-square patch of ``value`` (default: the data's maximum) at ``corner`` on ``rate`` of the
    rows of other classes, relabelled to ``target``."""
    x, y = np.asarray(x), np.asarray(y)
    shape = _image_shape(x, image_shape)
    if not 1 <= size <= min(shape[-2:]):
        raise ValueError(f"`size` must be in [1, {min(shape[-2:])}], got {size!r}")
    fill = float(np.max(x)) if value is None else float(value)
    trigger = Trigger("badnets", shape, size=size, value=fill, corner=corner)
    return _backdoor(x, y, trigger, rate=rate, target=target, n_classes=n_classes, seed=seed)


def blend_trigger(
    x: np.ndarray,
    y: np.ndarray,
    *,
    rate: float,
    target: int,
    alpha: float = 0.2,
    pattern: np.ndarray | None = None,
    image_shape: tuple[int, ...] | None = None,
    n_classes: int | None = None,
    seed: int = 0,
) -> PoisonedData:
    """Blended trigger: ``(1 - alpha) x + alpha pattern`` (default pattern: uniform noise over the data's range,
    fixed by ``seed``) on ``rate`` of the rows of other classes, relabelled to ``target``."""
    x, y = np.asarray(x), np.asarray(y)
    shape = _image_shape(x, image_shape)
    if not 0 < alpha < 1:
        raise ValueError(f"`alpha` must be in (0, 1), got {alpha!r}")
    if pattern is None:
        lo, hi = float(np.min(x)), float(np.max(x))
        pattern = np.random.default_rng([seed, 1]).uniform(lo, hi, shape)
    pattern = np.asarray(pattern, dtype=np.float64)
    if pattern.shape != shape:
        raise ValueError(f"`pattern` must have the image shape {shape}, got {pattern.shape}")
    trigger = Trigger("blend", shape, alpha=alpha, pattern=pattern)
    return _backdoor(x, y, trigger, rate=rate, target=target, n_classes=n_classes, seed=seed)


def poison(
    x: np.ndarray,
    y: np.ndarray,
    *,
    kind: str,
    rate: float,
    target: int | None = None,
    seed: int = 0,
    **options: Any,
) -> PoisonedData:
    """One entry point over :data:`KINDS` (what ``garrison poisoning simulate`` runs)."""
    x, y = np.asarray(x), np.asarray(y)
    if len(x) != len(y):
        raise ValueError(f"`x` has {len(x)} rows but `y` has {len(y)} labels")
    if kind == "flip-random":
        labels, rows = flip_labels(y, rate=rate, seed=seed, **options)
        return PoisonedData(x.copy(), labels, rows, kind, rate, seed)
    if kind not in KINDS:
        raise ValueError(f"`kind` must be one of {', '.join(KINDS)}, got {kind!r}")
    if target is None:
        raise ValueError(f"`{kind}` needs a `target` class")
    if kind == "flip-targeted":
        labels, rows = flip_labels(y, rate=rate, target=target, seed=seed, **options)
        return PoisonedData(x.copy(), labels, rows, kind, rate, seed, target)
    if kind == "badnets":
        return patch_trigger(x, y, rate=rate, target=int(target), seed=seed, **options)  # type: ignore[arg-type]
    return blend_trigger(x, y, rate=rate, target=int(target), seed=seed, **options)  # type: ignore[arg-type]
