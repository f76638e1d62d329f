"""Figures of the ``explain`` check: global importance, per-class summaries, image heat maps, trigger regions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from garrison.audit.checks.svg import bar_chart, image_grid
from garrison.core.results import Figure

if TYPE_CHECKING:
    from garrison.explain import Attributions, TriggerScan

__all__ = ["class_summary_figure", "heat_map_figure", "importance_figure", "trigger_figure"]

_REPRESENTATIVE = 10  # classes shown with their most confident correct row
_MISCLASSIFIED = 8


def importance_figure(names: list[str], importance: np.ndarray, method: str, output: str) -> Figure:
    """The 15 most important features as a bar chart and a table."""
    order = np.argsort(-importance, kind="stable")[:15]
    labels = [names[j] for j in order]
    values = [float(importance[j]) for j in order]
    return Figure(
        "explain-importance",
        "Global feature importance",
        svg=bar_chart(labels, values, title=f"Mean |attribution| ({method}, {output})"),
        table=tuple({"feature": n, "importance": round(v, 6)} for n, v in zip(labels, values, strict=True)),
        caption="Mean absolute attribution per feature over the explained test rows.",
        columns=("feature", "importance"),
    )


def class_summary_figure(
    result: Attributions, labels: np.ndarray, names: list[str], class_names: Sequence[Any]
) -> Figure:
    """Per predicted class: rows, precision on the explained rows, and its three most important features."""
    predicted = result.target
    table = []
    for c in np.unique(predicted):
        rows = predicted == c
        imp = np.abs(result.values[rows]).mean(axis=0)
        top = np.argsort(-imp, kind="stable")[:3]
        table.append({
            "class": str(class_names[c]) if c < len(class_names) else str(c),
            "rows": int(rows.sum()),
            "precision": round(float(np.mean(labels[rows] == c)), 4),
            "top_features": ", ".join(names[j] if j < len(names) else f"f{j}" for j in top),
        })  # fmt: skip
    return Figure(
        "explain-classes",
        "Per-class summary",
        table=tuple(table),
        caption="Explained test rows by predicted class: how many, the share whose label agrees, and the "
        "features with the largest mean |attribution| for that class.",
        columns=("class", "rows", "precision", "top_features"),
    )


def heat_map_figure(
    x: np.ndarray,
    result: Attributions,
    labels: np.ndarray,
    probabilities: np.ndarray,
    class_names: Sequence[Any],
) -> Figure:
    """For image inputs: each representative (the most confident correct row of a class) and misclassified row,
    the image and its attribution map for the predicted class (red: towards it, blue: against it)."""
    predicted = result.target
    confidence = probabilities[np.arange(len(predicted)), predicted]
    panels: list[tuple[str, np.ndarray, bool]] = []
    shown = []
    for c in np.unique(predicted)[:_REPRESENTATIVE]:
        good = np.flatnonzero((predicted == c) & (labels == c))
        if len(good):
            shown.append((int(good[np.argmax(confidence[good])]), "class"))
    wrong = np.flatnonzero(predicted != labels)
    for i in wrong[np.argsort(-confidence[wrong], kind="stable")][:_MISCLASSIFIED]:
        shown.append((int(i), "wrong"))
    for i, kind in shown:
        image = _plane(x[i])
        attr = _plane(result.values[i].reshape(x[i].shape))
        name = _name(class_names, int(predicted[i]))
        caption = f"{name}" if kind == "class" else f"{_name(class_names, int(labels[i]))}→{name}"
        panels.append((f"{caption} input", image, False))
        panels.append((f"{caption} attr.", attr, True))
    return Figure(
        "explain-heatmaps",
        "Attribution heat maps",
        svg=image_grid(
            panels, title="Representative and misclassified rows (label→prediction): input, attribution"
        ),
        table=tuple(
            {
                "row": i,
                "kind": "representative" if k == "class" else "misclassified",
                "label": _name(class_names, int(labels[i])),
                "predicted": _name(class_names, int(predicted[i])),
                "confidence": round(float(confidence[i]), 4),
            }
            for i, k in shown
        ),
        caption="Red pixels push the model towards the predicted class, blue ones away from it; each map is "
        "scaled to its own largest value. Misclassified rows are the most confident mistakes.",
        columns=("row", "kind", "label", "predicted", "confidence"),
    )


def trigger_figure(scan: TriggerScan, x: np.ndarray) -> Figure:
    """Per class: the share of its rows that hijack other inputs; for flagged image classes, the region beside the
    mean input."""
    table = tuple(
        {"class": str(c.label), "rows": c.rows, "hijacking": c.hijacking, "share": round(c.share, 4),
         "flagged": c.flagged, "region": ", ".join(scan.region_names(c.index)[:12])}
        for c in scan.classes
    )  # fmt: skip
    svg = None
    if scan.image_shape is not None and scan.flagged:
        panels = [("mean input", _plane(np.asarray(x, dtype=np.float64).mean(axis=0)), False)]
        for c in scan.flagged:
            mask = scan.region_mask(c.index)
            panels.append(
                (f"class {c.label} region", _plane(mask.reshape(x.shape[1:]).astype(np.float64)), False)
            )
        svg = image_grid(panels, title="Localised trigger regions (white) beside the mean input")
    return Figure(
        "explain-triggers",
        "Trigger localisation",
        svg=svg,
        table=table,
        caption=f"A row hijacks when its {scan.top_k} most attributed features, pasted into {scan.hosts} inputs of "
        f"other classes, send at least {100 * scan.fool_rate:.0f} % of them to its class ({scan.method}).",
        columns=("class", "rows", "hijacking", "share", "flagged", "region"),
    )


def _plane(values: np.ndarray) -> np.ndarray:
    """A 2-D view of one image (channels averaged; (h, w, c) layouts with c <= 4 read as channels-last)."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim == 3:
        return v.mean(axis=-1) if v.shape[-1] <= 4 < v.shape[0] else v.mean(axis=0)
    if v.ndim == 2:
        return v
    side = round(float(np.sqrt(v.size)))
    return v.reshape(side, side) if side * side == v.size else v.reshape(1, -1)


def _name(class_names: Sequence[Any], c: int) -> str:
    return str(class_names[c]) if c < len(class_names) else str(c)
