"""Poisoning: generators of poisoned training data (label flips, BadNets patches, blended triggers) for red-teaming a
pipeline and testing detectors."""

from garrison.poisoning.generators import (
    KINDS,
    PoisonedData,
    Trigger,
    blend_trigger,
    flip_labels,
    patch_trigger,
    poison,
)

__all__ = ["KINDS", "PoisonedData", "Trigger", "blend_trigger", "flip_labels", "patch_trigger", "poison"]
