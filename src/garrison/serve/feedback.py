"""Late labels: join ground truth sent after the fact to the predictions the service made, and track accuracy.

The service remembers the predicted classes of its last ``memory`` requests by request id (bounded, oldest
forgotten first). ``POST /v1/feedback`` sends ``{"labels": [{"request_id", "row", "label"}, ...]}``; each label
is joined to its prediction, and the live accuracy over the last ``window`` joined labels is a Prometheus gauge.
When it falls more than ``tolerance`` below the accuracy measured on the labelled reference data at start-up, a
``performance`` signal goes to the playbooks (at most once per ``window`` labels).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from garrison.core.errors import RequestError

__all__ = ["FeedbackJoin", "FeedbackTracker"]

_MAX_LABELS = 1000


@dataclass(frozen=True)
class FeedbackJoin:
    """What one feedback request did: labels ``joined`` to a remembered prediction (``correct`` of them right) and
    ``unknown`` ones (request forgotten or never made, row out of range)."""

    joined: int
    correct: int
    unknown: int


class FeedbackTracker:
    """Remembers predictions and joins late labels (see the module docstring)."""

    def __init__(self, labels: Sequence[Any], *, memory: int = 100_000, window: int = 500,
                 baseline: float | None = None, tolerance: float = 0.1) -> None:  # fmt: skip
        if memory < 1 or window < 1:
            raise ValueError("`memory` and `window` must be >= 1")
        self.labels = list(labels)
        self._index = {str(c): i for i, c in enumerate(self.labels)}
        self.memory = memory
        self.window = window
        self.baseline = baseline
        self.tolerance = tolerance
        self._predicted: OrderedDict[str, list[int]] = OrderedDict()
        self._recent: deque[bool] = deque(maxlen=window)
        self._since_signal = 0

    def remember(self, request_id: str, predicted: list[int]) -> None:
        self._predicted[request_id] = predicted
        if len(self._predicted) > self.memory:
            self._predicted.popitem(last=False)

    def join(self, doc: Any) -> FeedbackJoin:
        """Join a parsed feedback body; :class:`RequestError` (422) naming the field for a malformed one."""
        items = doc.get("labels") if isinstance(doc, dict) and set(doc) == {"labels"} else None
        if not isinstance(items, list) or not items:
            raise RequestError(
                'the body must be {"labels": [{"request_id", "row", "label"}, ...]}', code="body"
            )
        if len(items) > _MAX_LABELS:
            raise RequestError(f"holds more than {_MAX_LABELS} labels", field="labels", code="batch_size")
        joined = correct = unknown = 0
        for i, item in enumerate(items):
            if (
                not isinstance(item, dict)
                or not isinstance(item.get("request_id"), str)
                or "label" not in item
            ):
                raise RequestError(
                    "must be an object with request_id and label", field=f"labels[{i}]", code="type"
                )
            row = item.get("row", 0)
            if isinstance(row, bool) or not isinstance(row, int):
                raise RequestError("must be an integer", field=f"labels[{i}].row", code="type")
            label = self._index.get(str(item["label"]))
            if label is None:
                raise RequestError(f"must be one of the model's {len(self.labels)} classes", field=f"labels[{i}].label",
                                   code="category")  # fmt: skip
            predicted = self._predicted.get(item["request_id"])
            if predicted is None or not 0 <= row < len(predicted):
                unknown += 1
                continue
            joined += 1
            right = predicted[row] == label
            correct += right
            self._recent.append(right)
        self._since_signal += joined
        return FeedbackJoin(joined, correct, unknown)

    @property
    def accuracy(self) -> float | None:
        """Accuracy over the last ``window`` joined labels (None before any)."""
        return sum(self._recent) / len(self._recent) if self._recent else None

    def degraded(self) -> bool:
        """Whether live accuracy over a full window is more than ``tolerance`` below the baseline (once per window)."""
        acc = self.accuracy
        if (
            self.baseline is None
            or acc is None
            or len(self._recent) < self.window
            or self._since_signal < self.window
        ):
            return False
        if acc < self.baseline - self.tolerance:
            self._since_signal = 0
            return True
        return False
