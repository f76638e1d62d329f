"""What a check gets to work with."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from garrison.audit.budget import Budget
from garrison.audit.progress import NullProgress, Progress
from garrison.core.findings import Subject, SubjectKind

if TYPE_CHECKING:
    from garrison.adapters.base import Classifier
    from garrison.core.config import GarrisonConfig
    from garrison.data import Dataset

__all__ = ["AuditContext"]


@dataclass
class AuditContext:
    """Inputs of an audit. ``test`` is what model checks evaluate on; ``train`` is optional.

    ``budget`` is the running check's own budget (the runner replaces it per check); ``rng(salt)`` gives each check
    an independent generator derived from the global ``seed``, so adding a check never changes another's numbers.
    """

    model: Classifier | None = None
    test: Dataset | None = None
    train: Dataset | None = None
    artifacts: tuple[Path, ...] = ()
    seed: int = 0
    budget: Budget = field(default_factory=Budget)
    progress: Progress = field(default_factory=NullProgress)
    config: GarrisonConfig | None = None
    model_subject: Subject = field(default_factory=lambda: Subject(SubjectKind.MODEL, "model"))

    def rng(self, salt: str) -> np.random.Generator:
        digest = hashlib.sha256(f"{self.seed}:{salt}".encode()).digest()
        return np.random.default_rng(int.from_bytes(digest[:8], "little"))

    def dataset_subject(self, role: str) -> Subject:
        ds = self.test if role == "test" else self.train
        name = ds.name if ds is not None else role
        uri = str(ds.path) if ds is not None and ds.path is not None else None
        sha = ds.sha256 if ds is not None else None
        return Subject(SubjectKind.DATASET, name, uri, sha)
