"""Monitoring primitives for the guarded inference service: data, prediction and multivariate drift against a
stored reference (:class:`DriftReference`, :func:`detect_drift`, :class:`DriftMonitor`); input detectors
(:class:`OODDetector`, :class:`MarginDetector`, :class:`FeatureSqueezing`); query patterns per API key
(:class:`QueryMonitor`); alerts (``garrison.monitor.alerts``).

Explanation drift (attributions of recent traffic against a reference window) is
:func:`garrison.explain.attribution_drift`.
"""

from garrison.monitor.detectors import MarginDetector, OODDetector, Signal, calibrated_threshold, margin
from garrison.monitor.drift import (
    DRIFT_SCHEMA_VERSION,
    MIN_PSI,
    MIN_WASSERSTEIN,
    ColumnDrift,
    DriftMonitor,
    DriftReport,
    MMDResult,
    detect_drift,
    ks_2samp_sorted,
    ks_columns,
    linear_mmd,
    prediction_drift,
    psi,
    wasserstein_sorted,
)
from garrison.monitor.probing import SIGNAL_KINDS, ProbingThresholds, QueryMonitor
from garrison.monitor.reference import REFERENCE_SCHEMA_VERSION, DriftReference
from garrison.monitor.squeezing import BitDepth, FeatureSqueezing, MedianFilter, Rounding, Squeezer

__all__ = [
    "DRIFT_SCHEMA_VERSION",
    "MIN_PSI",
    "MIN_WASSERSTEIN",
    "REFERENCE_SCHEMA_VERSION",
    "SIGNAL_KINDS",
    "BitDepth",
    "ColumnDrift",
    "DriftMonitor",
    "DriftReference",
    "DriftReport",
    "FeatureSqueezing",
    "MMDResult",
    "MarginDetector",
    "MedianFilter",
    "OODDetector",
    "ProbingThresholds",
    "QueryMonitor",
    "Rounding",
    "Signal",
    "Squeezer",
    "calibrated_threshold",
    "detect_drift",
    "ks_2samp_sorted",
    "ks_columns",
    "linear_mmd",
    "margin",
    "prediction_drift",
    "psi",
    "wasserstein_sorted",
]
