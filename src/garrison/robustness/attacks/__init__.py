"""Evasion attacks: white-box (FGSM, PGD, APGD, FAB), score-based (Square) and decision-based (HopSkipJump)."""

from __future__ import annotations

from garrison.robustness.attacks.apgd import APGD
from garrison.robustness.attacks.base import Attack, robust_accuracy
from garrison.robustness.attacks.fab import FAB
from garrison.robustness.attacks.hopskipjump import HopSkipJump
from garrison.robustness.attacks.pgd import FGSM, PGD
from garrison.robustness.attacks.square import Square

__all__ = ["APGD", "FAB", "FGSM", "PGD", "Attack", "HopSkipJump", "Square", "robust_accuracy"]
