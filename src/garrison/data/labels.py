"""Mapping labels as they are in a dataset to the output columns of a model."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from garrison.core.errors import ModelInputMismatchError

__all__ = ["encode_labels"]


def _key(value: Any) -> str:
    """Comparable string form: ``1``, ``1.0``, ``np.int64(1)`` and ``"1"`` all become ``"1"``."""
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _preview(values: Sequence[Any], limit: int = 10) -> str:
    shown = ", ".join(repr(v) for v in values[:limit])
    return shown + (f", … ({len(values) - limit} more)" if len(values) > limit else "")


def encode_labels(y: np.ndarray, classes: Sequence[Any] | None, n_classes: int) -> np.ndarray:
    """Output-column index (int64) of each label for a model with ``n_classes`` outputs.

    ``classes`` are the model's label values in column order; ``None`` means the labels must already be integers
    in ``[0, n_classes)``. Labels and classes of different kinds compare as strings (``"1"`` matches ``1``).
    :class:`ModelInputMismatchError` names the label values the model does not know.
    """
    labels = np.asarray(y)
    if labels.ndim != 1:
        labels = labels.reshape(-1)
    values = labels.tolist()
    if classes is None:
        lookup = {str(i): i for i in range(n_classes)}
    else:
        class_list = np.asarray(classes, dtype=object).reshape(-1).tolist()
        if len(class_list) != n_classes:
            raise ModelInputMismatchError(
                f"the model has {n_classes} outputs but {len(class_list)} classes", field="classes"
            )
        lookup = {}
        for i, c in enumerate(class_list):
            lookup.setdefault(_key(c), i)
    keys = [_key(v) for v in values]
    unknown = sorted({k for k in keys if k not in lookup})
    if unknown:
        expected = (
            f"integers in 0..{n_classes - 1}" if classes is None else f"classes {_preview(list(lookup))}"
        )
        raise ModelInputMismatchError(
            f"label value(s) {_preview(unknown)} are not among the model's {expected}", field="label"
        )
    return np.fromiter((lookup[k] for k in keys), dtype=np.int64, count=len(keys))
