"""Explainability: feature attributions for any Garrison classifier behind one interface.

``attributions(model, x)`` routes scikit-learn trees and linear models to SHAP's exact explainers, torch modules
to Captum (Integrated Gradients by default), and everything else to SHAP's budgeted permutation explainer on
``predict_proba``. SHAP and Captum come with the ``explain`` extra and are imported on first use.

Slices where the model does worse (:func:`find_slices`, with confidence intervals and Benjamini–Hochberg control)
and group fairness for a named sensitive attribute (:func:`group_fairness`). Security primitives built on
attributions: leaky identifiers (:func:`leaky_features`), explanation stability
under small noise (:func:`explanation_stability`) and explanation drift between two datasets
(:func:`attribution_drift`), and backdoor triggers localised from attributions (:func:`localise_triggers`).
"""

from __future__ import annotations

from garrison.explain.attributions import METHODS, Attributions, Explainer, attributions
from garrison.explain.drift import AttributionDrift, attribution_drift, benjamini_hochberg
from garrison.explain.fairness import FairnessReport, GroupRates, group_fairness
from garrison.explain.leakage import FeatureLeak, LeakScan, leaky_features
from garrison.explain.slices import Slice, SliceReport, find_slices
from garrison.explain.stability import Stability, explanation_stability
from garrison.explain.triggers import ClassTriggerScore, TriggerScan, localise_triggers

__all__ = [
    "METHODS",
    "AttributionDrift",
    "Attributions",
    "ClassTriggerScore",
    "Explainer",
    "FairnessReport",
    "FeatureLeak",
    "GroupRates",
    "LeakScan",
    "Slice",
    "SliceReport",
    "Stability",
    "TriggerScan",
    "attribution_drift",
    "attributions",
    "benjamini_hochberg",
    "explanation_stability",
    "find_slices",
    "group_fairness",
    "leaky_features",
    "localise_triggers",
]
