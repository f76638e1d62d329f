"""Poisoning: data integrity (duplicates, leakage, conflicting labels, label issues), poison and backdoor detection,
and generators of poisoned training data (label flips, BadNets patches, blended triggers) for red-teaming a pipeline
and testing the detectors."""

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

__all__ = [
    "KINDS",
    "IntegrityReport",
    "LabelIssues",
    "PoisonedData",
    "Trigger",
    "blend_trigger",
    "check_integrity",
    "find_label_issues",
    "flip_labels",
    "patch_trigger",
    "poison",
]
