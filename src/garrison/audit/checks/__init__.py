"""Garrison's own checks, registered through the ``garrison.checks`` entry-point group like any plugin's."""

from garrison.audit.checks.artifact import ArtifactScanCheck
from garrison.audit.checks.fuzzing import InputFuzzingCheck, ProbeOutcome
from garrison.audit.checks.performance import PerformanceCheck, expected_calibration_error, wilson_interval
from garrison.audit.checks.svg import reliability_diagram

__all__ = [
    "ArtifactScanCheck",
    "InputFuzzingCheck",
    "PerformanceCheck",
    "ProbeOutcome",
    "expected_calibration_error",
    "reliability_diagram",
    "wilson_interval",
]
