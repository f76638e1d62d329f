"""What an attack returns: the adversarial batch, which samples it fooled, and what it cost."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["AttackResult"]


@dataclass(frozen=True)
class AttackResult:
    """``success[i]``: sample ``i`` is misclassified (untargeted) at ``x_adv[i]``, which lies within ``eps``.

    ``loss`` is the loss the attack maximised: ``"ce"``, ``"dlr"``, ``"ce-margin"`` (DLR needs >= 3 classes,
    targeted DLR >= 4) or ``"margin"`` (score-based attacks), ``"decision"`` (decision-based ones).
    ``queries`` counts model evaluations per sample (forward passes, gradient passes count once each).
    """

    name: str
    x_adv: np.ndarray
    success: np.ndarray
    queries: int
    elapsed_s: float
    loss: str = "ce"
    notes: tuple[str, ...] = ()

    @property
    def success_rate(self) -> float:
        """Fraction of samples fooled (among all given, including ones already misclassified)."""
        return float(np.mean(self.success)) if len(self.success) else 0.0
