"""Severity of a finding and the lifecycle stage it belongs to."""

from __future__ import annotations

from enum import Enum

__all__ = ["STAGE_ORDER", "Severity", "Stage"]


class Severity(str, Enum):
    """How bad a finding is. Ordered: ``Severity.CRITICAL > Severity.HIGH``."""

    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank < other.rank

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank <= other.rank

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank > other.rank

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank >= other.rank


_SEVERITY_RANK = {s: i for i, s in enumerate(Severity)}


class Stage(str, Enum):
    """Where in the model's life a check looks. Checks run in :data:`STAGE_ORDER`."""

    ARTIFACT = "artifact"
    DATA = "data"
    TRAINING = "training"
    MODEL = "model"
    DEPLOYMENT = "deployment"

    @property
    def order(self) -> int:
        return STAGE_ORDER.index(self)


STAGE_ORDER: tuple[Stage, ...] = (Stage.ARTIFACT, Stage.DATA, Stage.TRAINING, Stage.MODEL, Stage.DEPLOYMENT)
