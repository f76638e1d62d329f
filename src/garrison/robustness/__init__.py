"""Adversarial robustness: threat models, attacks, their ensemble and self-tests, robustness evaluation with
gradient-masking diagnostics, and adversarial training. torch is imported only when a torch model is attacked."""

from __future__ import annotations

from garrison.robustness.attacks import APGD, FAB, FGSM, PGD, Attack, HopSkipJump, Square, robust_accuracy
from garrison.robustness.bpda import adaptive_attack
from garrison.robustness.curve import CurvePoint
from garrison.robustness.ensemble import Ensemble, default_ensemble
from garrison.robustness.evaluate import RobustnessEvaluation, evaluate_robustness
from garrison.robustness.masking import MaskingDiagnosis, MaskingSignal, diagnose_masking
from garrison.robustness.result import AttackResult
from garrison.robustness.selftest import PlantedProblem, SelfTestResult, planted_problem, run_selftest
from garrison.robustness.threat import ThreatModel
from garrison.robustness.training import TrainingResult, adversarial_training, pgd_accuracy

__all__ = [
    "APGD",
    "FAB",
    "FGSM",
    "PGD",
    "Attack",
    "AttackResult",
    "CurvePoint",
    "Ensemble",
    "HopSkipJump",
    "MaskingDiagnosis",
    "MaskingSignal",
    "PlantedProblem",
    "RobustnessEvaluation",
    "SelfTestResult",
    "Square",
    "ThreatModel",
    "TrainingResult",
    "adaptive_attack",
    "adversarial_training",
    "default_ensemble",
    "diagnose_masking",
    "evaluate_robustness",
    "pgd_accuracy",
    "planted_problem",
    "robust_accuracy",
    "run_selftest",
]
