"""Trigger localisation: the small region whose values, pasted into other inputs, hijack the model to one class.

A backdoored model decides its target class from the trigger, wherever the rest of the input points. Attributions
find, for each row, the features the decision rests on; a backdoor shows as many rows of one class whose
``top_k`` most attributed features are enough on their own. The test is SentiNet's (Chou et al. 2020), with
attributions in place of Grad-CAM:

1. explain each row for the class the model predicts (``Explainer``: Integrated Gradients for torch models);
2. paste the row's values at its ``top_k`` features into ``hosts`` rows the model puts in *other* classes;
3. the row **hijacks** when at least ``fool_rate`` of the hosts then take its class. A clean row's few most
   attributed features are part of a shape that needs the rest of the input; a trigger needs nothing else;
4. a class is **flagged** when at least ``min_rows`` of its rows, and ``min_share`` of them, hijack, and its share
   is at least ``contrast`` times the median share of the other classes ("unlike other classes");
5. its **region** is the features at least half of the hijacking rows have among their ``top_k`` (for image inputs
   also the bounding box of that region — the trigger's placement; a model may lean on part of a patch only).

On BadNets-poisoned digits every clean class hijacks nothing (not a single row, over 5 seeds) while the target
class hijacks with its poisoned rows; see docs/explain.md and ``bench/trigger_localisation_bench.py``. The test
needs the triggered rows: run it on the training data (the poisoned rows are there), not on a clean test split.
Like every explanation it adds evidence beside #6's detectors (Neural Cleanse, STRIP, activation clustering)
and never stands alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from garrison.core.errors import InputError

if TYPE_CHECKING:
    from garrison.adapters.base import Classifier
    from garrison.explain.attributions import Attributions

__all__ = ["ClassTriggerScore", "TriggerScan", "localise_triggers"]

ProgressCallback = Callable[[str, int, int], None]


@dataclass(frozen=True)
class ClassTriggerScore:
    """One class: how many of the scanned ``rows`` (predicted as the class) ``hijack`` other inputs, their
    ``share``, whether the class is ``flagged``, and the localised ``region`` (flattened feature indices) with its
    bounding ``box`` ``(row0, col0, row1, col1)``, inclusive, for image inputs."""

    label: Any
    index: int
    rows: int
    hijacking: int
    share: float
    flagged: bool
    region: tuple[int, ...]
    box: tuple[int, int, int, int] | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label if isinstance(self.label, (int, str)) else str(self.label),
            "index": self.index,
            "rows": self.rows,
            "hijacking": self.hijacking,
            "share": round(self.share, 6),
            "flagged": self.flagged,
            "region": list(self.region),
            "box": list(self.box) if self.box is not None else None,
        }


@dataclass(frozen=True)
class TriggerScan:
    """Every class's :class:`ClassTriggerScore` (class order) and the parameters of the scan."""

    classes: tuple[ClassTriggerScore, ...]
    top_k: int
    hosts: int
    fool_rate: float
    image_shape: tuple[int, int] | None
    method: str
    n_features: int
    feature_names: tuple[str, ...] | None = None

    @property
    def flagged(self) -> tuple[ClassTriggerScore, ...]:
        return tuple(c for c in self.classes if c.flagged)

    def region_mask(self, index: int) -> np.ndarray:
        """The region of class ``index`` as a boolean mask over the flattened features."""
        mask = np.zeros(self.n_features, dtype=bool)
        mask[list(self.classes[index].region)] = True
        return mask

    def region_names(self, index: int) -> list[str]:
        """The region of class ``index`` as feature names (``f<j>`` without names; ``(row, col)`` for images)."""
        region = self.classes[index].region
        if self.image_shape is not None:
            h, w = self.image_shape
            return [f"({j % (h * w) // w}, {j % w})" for j in region]
        names = self.feature_names or ()
        return [names[j] if j < len(names) else f"f{j}" for j in region]

    def to_dict(self) -> dict[str, Any]:
        return {
            "top_k": self.top_k,
            "hosts": self.hosts,
            "fool_rate": self.fool_rate,
            "image_shape": list(self.image_shape) if self.image_shape else None,
            "method": self.method,
            "flagged": [c.index for c in self.flagged],
            "classes": [c.to_dict() for c in self.classes],
        }


def localise_triggers(
    model: Classifier,
    x: np.ndarray,
    *,
    attributions: Attributions | None = None,
    method: str = "auto",
    top_k: int | None = None,
    hosts: int = 48,
    fool_rate: float = 0.8,
    min_rows: int = 5,
    min_share: float = 0.02,
    contrast: float = 4.0,
    max_rows_per_class: int = 300,
    seed: int = 0,
    progress: ProgressCallback | None = None,
) -> TriggerScan:
    """Scan rows ``x`` (the model's input space; the training data) for a trigger (see the module docstring).

    ``attributions`` of ``x`` for the predicted classes may be passed to skip explaining (their rows must be
    ``x``'s); otherwise ``method`` picks the explainer. ``top_k`` defaults to 8 % of the features (5 of an 8 × 8
    image). At most ``max_rows_per_class`` rows of each predicted class are scanned, drawn by ``seed`` (as are
    the hosts).
    """
    from garrison.adapters.base import predict
    from garrison.explain.attributions import Explainer

    if hosts < 1:
        raise ValueError(f"`hosts` must be >= 1, got {hosts!r}")
    if not 0 < fool_rate <= 1:
        raise ValueError(f"`fool_rate` must be in (0, 1], got {fool_rate!r}")
    if min_rows < 1:
        raise ValueError(f"`min_rows` must be >= 1, got {min_rows!r}")
    if not 0 <= min_share <= 1:
        raise ValueError(f"`min_share` must be in [0, 1], got {min_share!r}")
    if not contrast >= 1:
        raise ValueError(f"`contrast` must be >= 1, got {contrast!r}")
    if max_rows_per_class < 1:
        raise ValueError(f"`max_rows_per_class` must be >= 1, got {max_rows_per_class!r}")
    spec = model.input_spec
    rows = spec.conform(np.asarray(x))
    if len(rows) < 2:
        raise InputError("trigger localisation needs at least 2 rows", field="x")
    d = spec.n_features
    k = top_k if top_k is not None else max(1, round(0.08 * d))
    if not 1 <= k < d:
        raise ValueError(f"`top_k` must be in [1, {d}), got {k!r}")
    rng = np.random.default_rng(seed)

    predicted = predict(model, rows)
    chosen = _sample_per_class(predicted, max_rows_per_class, rng)
    if attributions is not None:
        if attributions.n_rows != len(rows) or attributions.n_features != d:
            raise ValueError(
                f"`attributions` hold {attributions.n_rows} × {attributions.n_features} values for "
                f"{len(rows)} rows of {d} features"
            )
        values, used = attributions.values[chosen], attributions.method
    else:
        explained = Explainer(model, method=method, seed=seed).explain(rows[chosen], target=predicted[chosen])
        values, used = explained.values, explained.method
    top = np.argsort(-values, axis=1, kind="stable")[:, :k]
    flat = rows.reshape(len(rows), -1)
    image_shape = tuple(spec.shape[-2:]) if len(spec.shape) >= 2 else None

    scores = []
    n_classes = model.n_classes
    for c in range(n_classes):
        if progress is not None:
            progress("trigger-localisation", c, n_classes)
        members = np.flatnonzero(predicted[chosen] == c)
        others = np.flatnonzero(predicted != c)
        if len(members) == 0 or len(others) == 0:
            scores.append((c, members, np.zeros(0, dtype=bool)))
            continue
        host_rows = flat[rng.choice(others, size=min(hosts, len(others)), replace=False)]
        fooled = _hijack_rates(model, flat, chosen[members], top[members], host_rows, c)
        scores.append((c, members, fooled >= fool_rate))
    if progress is not None:
        progress("trigger-localisation", n_classes, n_classes)

    shares = np.array([h.mean() if len(m) else 0.0 for _, m, h in scores])
    labels = model.classes or tuple(range(n_classes))
    out = []
    for c, members, hijack in scores:
        others_median = float(np.median(np.delete(shares, c))) if n_classes > 1 else 0.0
        count = int(hijack.sum())
        flagged = count >= min_rows and shares[c] >= min_share and shares[c] >= contrast * others_median
        region: tuple[int, ...] = ()
        if count:
            in_top = np.zeros((count, d), dtype=bool)
            in_top[np.arange(count)[:, None], top[members][hijack]] = True
            region = tuple(int(j) for j in np.flatnonzero(in_top.mean(axis=0) >= 0.5))
        out.append(
            ClassTriggerScore(
                label=labels[c],
                index=c,
                rows=len(members),
                hijacking=count,
                share=float(shares[c]),
                flagged=bool(flagged),
                region=region,
                box=_bounding_box(region, image_shape) if image_shape else None,
            )
        )
    names = spec.feature_names
    return TriggerScan(
        classes=tuple(out),
        top_k=k,
        hosts=hosts,
        fool_rate=fool_rate,
        image_shape=image_shape,  # type: ignore[arg-type]
        method=used,
        n_features=d,
        feature_names=tuple(str(n) for n in names) if names is not None and len(names) == d else None,
    )


def _sample_per_class(predicted: np.ndarray, cap: int, rng: np.random.Generator) -> np.ndarray:
    picked = []
    for c in np.unique(predicted):
        idx = np.flatnonzero(predicted == c)
        picked.append(np.sort(rng.choice(idx, size=cap, replace=False)) if len(idx) > cap else idx)
    return np.sort(np.concatenate(picked))


def _hijack_rates(
    model: Classifier,
    flat: np.ndarray,
    sources: np.ndarray,
    top: np.ndarray,
    host_rows: np.ndarray,
    label: int,
    *,
    chunk_rows: int = 16_384,
) -> np.ndarray:
    """For each source row, the share of ``host_rows`` the model puts in ``label`` once the source's ``top``
    features are pasted in."""
    from garrison.adapters.base import predict

    n_hosts = len(host_rows)
    per_chunk = max(1, chunk_rows // n_hosts)
    rates = np.zeros(len(sources))
    shape = model.input_spec.shape
    for start in range(0, len(sources), per_chunk):
        src = sources[start : start + per_chunk]
        feats = top[start : start + per_chunk]
        batch = np.repeat(host_rows[None], len(src), axis=0)  # (m, hosts, d)
        cols = np.repeat(feats[:, None, :], n_hosts, axis=1)
        values = np.take_along_axis(flat[src], feats, axis=1)  # (m, k)
        np.put_along_axis(batch, cols, np.repeat(values[:, None, :], n_hosts, axis=1), axis=2)
        pred = predict(model, batch.reshape(len(src) * n_hosts, *shape)).reshape(len(src), n_hosts)
        rates[start : start + len(src)] = (pred == label).mean(axis=1)
    return rates


def _bounding_box(region: tuple[int, ...], shape: tuple[int, ...]) -> tuple[int, int, int, int] | None:
    if not region:
        return None
    h, w = shape[-2:]
    pixels = [j % (h * w) for j in region]  # channels of one pixel share its place
    r = [j // w for j in pixels]
    c = [j % w for j in pixels]
    return (min(r), min(c), max(r), max(c))
