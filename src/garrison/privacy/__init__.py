"""Privacy: differential-privacy training and privacy attacks (membership inference, attribute inference, model
extraction) run as audits.

Names are resolved lazily (PEP 562): ``import garrison.privacy`` imports neither torch, Opacus nor scikit-learn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from garrison.core.lazy import lazy_exports

if TYPE_CHECKING:
    from garrison.privacy.attribute import (
        AttributeInference,
        attribute_inference,
    )
    from garrison.privacy.dp import (
        DPTrainingResult,
        IncompatibleModuleError,
        ModuleProblem,
        PrivacyLedger,
        PrivateTraining,
        default_delta,
        make_private,
        train_private,
        validate_module,
    )
    from garrison.privacy.dp_bound import (
        ClaimVerdict,
        PrivacyBound,
        bound_from_accountant,
        bound_from_claim,
        judge_claim,
    )
    from garrison.privacy.dp_logreg import DPLogisticRegression
    from garrison.privacy.extraction import (
        ExtractionPoint,
        model_extraction,
    )
    from garrison.privacy.membership import (
        MembershipAudit,
        ShadowExperiment,
        TrainFn,
        audit_membership,
        lira_scores,
        rmia_scores,
        run_shadow_experiment,
        sklearn_trainer,
        threshold_scores,
        torch_trainer,
    )
    from garrison.privacy.roc import (
        MembershipEvaluation,
        OperatingPoint,
        clopper_pearson,
        evaluate_membership,
    )

# name -> module under garrison.privacy
_LAZY = {
    # differential-privacy training (dp.py, dp_logreg.py)
    "DPLogisticRegression": "dp_logreg",
    "DPTrainingResult": "dp",
    "IncompatibleModuleError": "dp",
    "ModuleProblem": "dp",
    "PrivacyLedger": "dp",
    "PrivateTraining": "dp",
    "default_delta": "dp",
    "make_private": "dp",
    "train_private": "dp",
    "validate_module": "dp",
    # privacy attacks run as audits (membership.py, roc.py, dp_bound.py, attribute.py, extraction.py)
    "audit_membership": "membership",
    "run_shadow_experiment": "membership",
    "sklearn_trainer": "membership",
    "torch_trainer": "membership",
    "lira_scores": "membership",
    "rmia_scores": "membership",
    "threshold_scores": "membership",
    "MembershipAudit": "membership",
    "ShadowExperiment": "membership",
    "TrainFn": "membership",
    "evaluate_membership": "roc",
    "clopper_pearson": "roc",
    "MembershipEvaluation": "roc",
    "OperatingPoint": "roc",
    "PrivacyBound": "dp_bound",
    "bound_from_claim": "dp_bound",
    "bound_from_accountant": "dp_bound",
    "judge_claim": "dp_bound",
    "ClaimVerdict": "dp_bound",
    "attribute_inference": "attribute",
    "AttributeInference": "attribute",
    "model_extraction": "extraction",
    "ExtractionPoint": "extraction",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


__all__ = [
    "AttributeInference",
    "ClaimVerdict",
    "DPLogisticRegression",
    "DPTrainingResult",
    "ExtractionPoint",
    "IncompatibleModuleError",
    "MembershipAudit",
    "MembershipEvaluation",
    "ModuleProblem",
    "OperatingPoint",
    "PrivacyBound",
    "PrivacyLedger",
    "PrivateTraining",
    "ShadowExperiment",
    "TrainFn",
    "attribute_inference",
    "audit_membership",
    "bound_from_accountant",
    "bound_from_claim",
    "clopper_pearson",
    "default_delta",
    "evaluate_membership",
    "judge_claim",
    "lira_scores",
    "make_private",
    "model_extraction",
    "rmia_scores",
    "run_shadow_experiment",
    "sklearn_trainer",
    "threshold_scores",
    "torch_trainer",
    "train_private",
    "validate_module",
]
