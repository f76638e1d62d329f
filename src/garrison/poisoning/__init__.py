"""Poisoning: data integrity (duplicates, leakage, conflicting labels, label issues), poison and backdoor detection,
and generators of poisoned training data (label flips, BadNets patches, blended triggers) for red-teaming a pipeline
and testing the detectors."""

from garrison.poisoning.detect import METHODS as DETECT_METHODS
from garrison.poisoning.detect import ClassSummary, PoisonScan, scan_training_set
from garrison.poisoning.generators import (
    KINDS,
    PoisonedData,
    Trigger,
    blend_trigger,
    flip_labels,
    patch_trigger,
    poison,
)
from garrison.poisoning.integrity import IntegrityReport, LabelIssues, check_integrity, find_label_issues
from garrison.poisoning.neural_cleanse import (
    MAD_CONSISTENCY,
    AnomalyIndex,
    NeuralCleanseResult,
    anomaly_index,
    neural_cleanse,
    null_threshold,
)
from garrison.poisoning.representations import Representation, extract_representation
from garrison.poisoning.strip import STRIP

__all__ = [
    "DETECT_METHODS",
    "KINDS",
    "MAD_CONSISTENCY",
    "STRIP",
    "AnomalyIndex",
    "ClassSummary",
    "IntegrityReport",
    "LabelIssues",
    "NeuralCleanseResult",
    "PoisonScan",
    "PoisonedData",
    "Representation",
    "Trigger",
    "anomaly_index",
    "blend_trigger",
    "check_integrity",
    "extract_representation",
    "find_label_issues",
    "flip_labels",
    "neural_cleanse",
    "null_threshold",
    "patch_trigger",
    "poison",
    "scan_training_set",
]
