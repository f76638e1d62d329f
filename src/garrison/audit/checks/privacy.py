"""Privacy: how well a membership-inference attacker tells the model's training records from held-out ones.

The training set's rows are the members, the test set's rows the non-members (a seeded sample of at most
``max_records`` of each). Attacks: the loss/confidence-threshold baseline, and LiRA offline and RMIA offline with
reference models trained on random halves of the test set (scikit-learn models are cloned and refitted; torch
networks are copied, re-initialised and trained with Adam; other models get the baseline only). With
``online: true`` the references train on random halves of members and non-members together and LiRA / RMIA
online run too. A seeded half of the non-members fixes each attack's thresholds; the other half and the members
measure FPR and TPR (Clopper–Pearson 95 %). See ``docs/privacy-audit.md``.

Metrics, per attack ``<m>`` (``threshold``, ``lira_offline``, ``rmia_offline``; online also ``lira_online``,
``rmia_online``): ``<m>.auc``, ``<m>.tpr@0.1%fpr``, ``<m>.tpr@1%fpr``; ``tpr@0.1%fpr`` / ``tpr@1%fpr`` / ``auc``
of the strongest attack; ``dp_bound_margin`` with a claim; ``attribute.*`` with ``sensitive_feature``;
``extraction.fidelity@<N>`` with ``extraction_queries``.

Findings: GAR-PV-001 when an attack is better than chance at low FPR with confidence (the most exposed training
rows in the evidence, marked sensitive); GAR-PV-002 (critical) when a differential-privacy claim
(``claimed_epsilon`` / ``claimed_delta``, or the DP-SGD ``accountant_history``) is contradicted: an attack's TPR
lower confidence bound exceeds the highest TPR the claim allows at that FPR; GAR-PV-003 when the model's outputs
reveal ``sensitive_feature`` beyond what the other features do.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from garrison.audit.context import AuditContext
from garrison.core.findings import Finding
from garrison.core.metrics import Metric
from garrison.core.results import CheckResult, CheckStatus, Figure
from garrison.core.rules import get_rule
from garrison.core.schema_spec import Spec
from garrison.core.severity import Stage
from garrison.data import encode_labels

if TYPE_CHECKING:
    from garrison.adapters.base import Classifier
    from garrison.privacy.dp_bound import PrivacyBound
    from garrison.privacy.membership import MembershipAudit, TrainFn
    from garrison.privacy.roc import MembershipEvaluation

__all__ = ["PrivacyCheck"]

FPRS = (0.001, 0.01, 0.1)
_LABELS = {0.001: "0.1%", 0.01: "1%", 0.1: "10%"}


class PrivacyCheck:
    """Membership inference (threshold baseline, LiRA and RMIA offline) against the model's training records, and a
    differential-privacy claim tested against the attacks."""

    id: ClassVar[str] = "privacy"
    stage: ClassVar[Stage] = Stage.MODEL
    deterministic: ClassVar[bool] = True
    requires: ClassVar[frozenset[str]] = frozenset({"model", "test", "train"})
    description: ClassVar[str] = (
        "Membership inference: AUC and TPR at 0.1 % and 1 % FPR (Clopper–Pearson intervals, thresholds fixed on "
        "held-out non-members) of the loss-threshold baseline, LiRA offline and RMIA offline (reference models "
        "refitted on the test set for scikit-learn and torch models); the most exposed training rows; a claimed (ε, δ) or DP-SGD history "
        "tested against the attacks."
    )
    options: ClassVar[Mapping[str, Spec]] = {
        "claimed_epsilon": Spec("float", default=None, nullable=True, ge=0,
                                doc="ε the model is claimed to satisfy (trained elsewhere)"),
        "claimed_delta": Spec("float", default=1e-5, ge=0, le=1, doc="δ of the claim"),
        "accountant_history": Spec("list", default=None, nullable=True,
                                   doc="DP-SGD history, [[noise_multiplier, sample_rate, steps], ...] (Opacus' "
                                   "accountant.history): the bound then comes from the PRV accountant over a δ grid"),
        "reference_models": Spec("int", default=8, ge=0, doc="reference models for LiRA (0: threshold baseline only)"),
        "online": Spec("bool", default=False, doc="also train references on the training rows and run the online "
                       "attacks (LiRA and RMIA online): stronger, and the references see the training data"),
        "reference_epochs": Spec("int", default=30, ge=1, doc="epochs of Adam for torch reference models"),
        "reference_lr": Spec("float", default=1e-3, gt=0, doc="learning rate of torch reference models"),
        "max_records": Spec("int", default=2000, ge=4, doc="members and non-members used (each; a seeded sample)"),
        "sensitive_feature": Spec("str", default=None, nullable=True,
                                  doc="a feature of the test set to guess from the model's outputs (attribute inference)"),
        "extraction_queries": Spec("list", default=None, nullable=True,
                                   doc="query budgets of a model-extraction attack, e.g. [100, 1000] (fidelity per budget)"),
        "n_exposed": Spec("int", default=10, ge=0, doc="most exposed training rows listed in the finding"),
    }  # fmt: skip

    def __init__(
        self,
        *,
        claimed_epsilon: float | None = None,
        claimed_delta: float = 1e-5,
        accountant_history: list[Any] | None = None,
        reference_models: int = 8,
        online: bool = False,
        reference_epochs: int = 30,
        reference_lr: float = 1e-3,
        max_records: int = 2000,
        n_exposed: int = 10,
        sensitive_feature: str | None = None,
        extraction_queries: list[int] | None = None,
    ) -> None:
        self.claimed_epsilon = claimed_epsilon
        self.claimed_delta = claimed_delta
        self.accountant_history = accountant_history
        self.reference_models = reference_models
        self.online = online
        self.reference_epochs = reference_epochs
        self.reference_lr = reference_lr
        self.max_records = max_records
        self.n_exposed = n_exposed
        self.sensitive_feature = sensitive_feature
        self.extraction_queries = extraction_queries

    def run(self, ctx: AuditContext) -> CheckResult:
        from garrison.privacy.membership import METHODS, audit_membership

        model, test, train = ctx.model, ctx.test, ctx.train
        if model is None or test is None or train is None:
            return CheckResult(self.id, self.stage, CheckStatus.SKIPPED,
                               reason="needs a model, its training set (members) and a test set (non-members)")  # fmt: skip
        if train.y is None or test.y is None or len(train.x) < 2 or len(test.x) < 4:
            return CheckResult(self.id, self.stage, CheckStatus.SKIPPED,
                               reason="needs labelled training and test rows (at least 2 and 4)")  # fmt: skip
        try:
            bound = self._bound()
        except ValueError as exc:
            return CheckResult(self.id, self.stage, CheckStatus.ERROR, error=str(exc))
        ctx.budget.check()
        rng = ctx.rng(self.id)
        n_classes = int(model.n_classes)
        m_idx = _sample(len(train.x), self.max_records, rng)
        n_idx = _sample(len(test.x), self.max_records, rng)
        xm = np.asarray(train.x)[m_idx]
        ym = encode_labels(np.asarray(train.y)[m_idx], model.classes, n_classes)
        xn = np.asarray(test.x)[n_idx]
        yn = encode_labels(np.asarray(test.y)[n_idx], model.classes, n_classes)
        train_fn = self._train_fn(model) if self.reference_models >= 2 else None
        methods: tuple[str, ...] = ("threshold",)
        if train_fn is not None:
            methods = METHODS if self.online else ("threshold", "lira-offline", "rmia-offline")
        deadline = (
            time.monotonic() + 0.8 * ctx.budget.remaining if math.isfinite(ctx.budget.remaining) else None
        )
        task = ctx.progress.task("privacy: reference models", total=self.reference_models if train_fn else 0)
        audit = audit_membership(
            model, (xm, ym), (xn, yn), train_fn=train_fn, n_references=self.reference_models, methods=methods,
            fprs=FPRS, seed=ctx.seed, online=self.online and train_fn is not None, progress=lambda done, total: task.advance(1), deadline=deadline,
        )  # fmt: skip
        task.done()
        ctx.budget.check()
        notes = list(audit.notes)
        if train_fn is None and self.reference_models >= 2:
            notes.append(
                "reference models need a scikit-learn or torch model: LiRA skipped, threshold baseline only"
            )
        verdict = None
        findings: list[Finding] = []
        exposure = self._exposure_finding(ctx, audit, m_idx)
        if exposure is not None:
            findings.append(exposure)
        if bound is not None:
            from garrison.privacy.dp_bound import judge_claim

            points = [p for ev in audit.evaluations.values() for p in ev.points]
            verdict = judge_claim(points, bound)
            if verdict.contradicted:
                findings.append(self._claim_finding(ctx, bound, verdict))
        extra: list[Metric] = []
        if self.sensitive_feature is not None:
            names = list(test.schema.names())
            if self.sensitive_feature not in names:
                return CheckResult(self.id, self.stage, CheckStatus.ERROR,
                                   error=f"`sensitive_feature` {self.sensitive_feature!r} is not a feature of the test set")  # fmt: skip
            ctx.budget.check()
            metrics_a, finding = self._attribute(ctx, model, xm, ym, names.index(self.sensitive_feature))
            extra.extend(metrics_a)
            if finding is not None:
                findings.append(finding)
        if self.extraction_queries:
            ctx.budget.check()
            extra.extend(self._extraction(ctx, model, xn, yn))
        return CheckResult(
            self.id,
            self.stage,
            metrics=tuple(_metrics(audit, bound, verdict)) + tuple(extra),
            findings=tuple(findings),
            figures=tuple(_figures(audit, bound, notes)),
            partial=any("time budget" in n for n in notes),
        )

    def _train_fn(self, model: Classifier) -> TrainFn | None:
        from garrison.privacy.membership import torch_trainer

        fn = _sklearn_train_fn(model)
        module = getattr(model, "torch_module", None)
        if fn is None and module is not None:
            fn = torch_trainer(module, input_spec=model.input_spec, n_classes=int(model.n_classes),
                               epochs=self.reference_epochs, lr=self.reference_lr)  # fmt: skip
        return fn

    def _attribute(
        self, ctx: AuditContext, model: Classifier, x: np.ndarray, y: np.ndarray, column: int
    ) -> tuple[list[Metric], Finding | None]:
        from garrison.privacy.attribute import attribute_inference

        r = attribute_inference(model, x.reshape(len(x), -1), column=column, y=y, seed=ctx.seed)
        name = self.sensitive_feature
        metrics = [
            Metric("attribute.accuracy", r.learned, r.n, *r.learned_ci, higher_is_better=False,
                   description=f"share of held-out test rows whose {name!r} an attack classifier guesses from the "
                   "other features and the model's probabilities (Wilson 95 %)"),
            Metric("attribute.features_only", r.features_only, r.n, *r.features_only_ci,
                   description=f"the same attack without the model's outputs: what the data alone reveals of {name!r}"),
            Metric("attribute.majority", r.majority, r.n, *r.majority_ci,
                   description=f"guessing the most common value of {name!r}"),
        ]  # fmt: skip
        if r.inversion is not None and r.inversion_ci is not None:
            metrics.append(Metric("attribute.inversion", r.inversion, r.n, *r.inversion_ci, higher_is_better=False,
                                  description=f"model inversion: the value of {name!r} under which the row's label "
                                  "is most probable"))  # fmt: skip
        if not r.leaks:
            return metrics, None
        finding = get_rule("GAR-PV-003").finding(
            subject=ctx.model_subject,
            location=f"feature:{name}",
            check_id=self.id,
            message=f"The model's outputs reveal {name!r}: an attack guesses it for {100 * r.learned:.1f}% of rows "
            f"(95% CI {100 * r.learned_ci[0]:.1f}–{100 * r.learned_ci[1]:.1f}%) against "
            f"{100 * r.features_only:.1f}% from the other features alone and {100 * r.majority:.1f}% by the "
            "majority value.",
            evidence={"feature": name, **{k: v for k, v in r.to_dict().items() if k != "column"}},
        )
        return metrics, finding

    def _extraction(self, ctx: AuditContext, model: Classifier, x: np.ndarray, y: np.ndarray) -> list[Metric]:
        from garrison.privacy.extraction import model_extraction

        budgets = sorted({int(q) for q in self.extraction_queries or []})
        rng = ctx.rng(f"{self.id}:extraction")
        perm = rng.permutation(len(x))
        half = len(x) // 2
        evaluate, pool = perm[:half], perm[half:]
        # the attacker's queries: held-out test rows when there are enough, else uniform within the data's range
        x_pool = x[pool] if len(pool) >= budgets[-1] else None
        points = model_extraction(model, x[evaluate], queries=budgets, x_pool=x_pool, y_eval=y[evaluate],
                                  seed=ctx.seed)  # fmt: skip
        source = "test rows" if x_pool is not None else "synthetic inputs within the data's range"
        return [
            Metric(f"extraction.fidelity@{p.queries}", p.fidelity, p.n, *p.fidelity_ci, higher_is_better=False,
                   description=f"agreement with the model of a surrogate fitted on its labels for {p.queries} "
                   f"queries ({source}; Wilson 95 %)")
            for p in points
        ]  # fmt: skip

    def _bound(self) -> PrivacyBound | None:
        from garrison.privacy.dp_bound import bound_from_accountant, bound_from_claim

        if self.accountant_history:
            history = []
            for phase in self.accountant_history:
                if not isinstance(phase, list | tuple) or len(phase) != 3:
                    raise ValueError(
                        "`accountant_history` must list [noise_multiplier, sample_rate, steps] phases"
                    )
                history.append((float(phase[0]), float(phase[1]), int(phase[2])))
            return bound_from_accountant(history)
        if self.claimed_epsilon is not None:
            return bound_from_claim(float(self.claimed_epsilon), float(self.claimed_delta))
        return None

    def _exposure_finding(
        self, ctx: AuditContext, audit: MembershipAudit, m_idx: np.ndarray
    ) -> Finding | None:
        best = None
        for method, ev in audit.evaluations.items():
            for p in ev.points[:2]:  # 0.1 % and 1 % FPR
                margin = p.tpr_ci[0] - p.fpr_ci[1]
                if margin > 0 and (best is None or margin > best[0]):
                    best = (margin, method, p)
        if best is None:
            return None
        _, method, point = best
        exposed = audit.most_exposed(method, self.n_exposed)
        rows = [int(m_idx[i]) for i, _ in exposed]
        return get_rule("GAR-PV-001").finding(
            subject=ctx.model_subject,
            location=f"membership:{method}",
            check_id=self.id,
            message=f"{method} identifies {100 * point.tpr:.2f}% of training rows (95% CI "
            f"{100 * point.tpr_ci[0]:.2f}–{100 * point.tpr_ci[1]:.2f}%) at {100 * point.fpr:.2f}% FPR "
            f"(target {_LABELS.get(point.target_fpr, f'{point.target_fpr:g}')}).",
            evidence={
                "method": method,
                "target_fpr": point.target_fpr,
                "tpr": round(point.tpr, 6),
                "tpr_ci_low": round(point.tpr_ci[0], 6),
                "fpr": round(point.fpr, 6),
                "fpr_ci_high": round(point.fpr_ci[1], 6),
                "n_members": point.n_members,
                "n_nonmembers": point.n_nonmembers,
                "most_exposed_train_rows": rows,
                "most_exposed_scores": [round(s, 6) for _, s in exposed],
            },
            sensitive=("most_exposed_train_rows", "most_exposed_scores"),
        )

    def _claim_finding(self, ctx: AuditContext, bound: PrivacyBound, verdict: Any) -> Finding:
        claim = (
            f"ε={self.claimed_epsilon:g}, δ={self.claimed_delta:g}"
            if bound.source == "claim"
            else f"the DP-SGD history ({bound.source})"
        )
        return get_rule("GAR-PV-002").finding(
            subject=ctx.model_subject,
            location="privacy:dp-claim",
            check_id=self.id,
            message=f"The claim {claim} allows a TPR of at most {100 * verdict.max_tpr:.2f}% at "
            f"{100 * verdict.fpr_high:.2f}% FPR; an attack reaches at least {100 * verdict.tpr_low:.2f}% there "
            "(95% confidence).",
            evidence={
                "bound_source": bound.source,
                "bound_points": bound.to_dict()["points"],
                **verdict.to_dict(),
            },
        )


def _sample(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    return np.arange(n) if n <= k else np.sort(rng.choice(n, k, replace=False))


def _sklearn_train_fn(model: Classifier) -> TrainFn | None:
    """Refit a clone of a scikit-learn model's estimator (same codec and input handling), or ``None``."""
    from garrison.adapters.sklearn_model import SklearnClassifier

    if not isinstance(model, SklearnClassifier):
        return None
    from sklearn.base import clone

    classes = np.asarray(model.classes, dtype=object) if model.classes is not None else None

    def train(x: np.ndarray, y: np.ndarray, seed: int) -> Classifier:
        est = clone(model.estimator)
        if "random_state" in est.get_params():
            est.set_params(random_state=seed)
        labels = classes[y].tolist() if classes is not None else y
        est.fit(model.model_input(np.asarray(x)), np.asarray(labels))
        return SklearnClassifier(
            est, codec=model.codec, name=f"reference-{seed}", input_spec=model.input_spec
        )

    return train


def _key(method: str) -> str:
    return method.replace("-", "_")


def _metrics(audit: MembershipAudit, bound: PrivacyBound | None, verdict: Any) -> list[Metric]:
    evs = audit.evaluations
    first = next(iter(evs.values()))
    metrics = [
        Metric("n_members", float(first.n_members), n=first.n_members, description="training rows attacked"),
        Metric("n_nonmembers", float(first.n_nonmembers), n=first.n_nonmembers,
               description="test rows (half fix thresholds, half measure the FPR)"),
        Metric("reference_models", float(audit.n_references), description="reference models trained for LiRA"),
    ]  # fmt: skip
    for method, ev in evs.items():
        k = _key(method)
        metrics.append(Metric(f"{k}.auc", ev.auc, ev.n_members + ev.n_nonmembers, *ev.auc_ci, higher_is_better=False,
                              description=f"{method}: ROC AUC (Hanley–McNeil 95 % interval)"))  # fmt: skip
        for p in ev.points[:2]:
            label = _LABELS[p.target_fpr]
            metrics.append(
                Metric(f"{k}.tpr@{label}fpr", p.tpr, p.n_members, *p.tpr_ci, higher_is_better=False,
                       description=f"{method}: share of training rows flagged at a threshold fixed for {label} FPR "
                       f"on held-out non-members (reached {100 * p.fpr:.2f}%; Clopper–Pearson 95 %)")
            )  # fmt: skip
    for label, i in (("0.1%", 0), ("1%", 1)):
        strongest = max(evs.values(), key=lambda ev, i=i: ev.points[i].tpr)
        p = strongest.points[i]
        metrics.append(Metric(f"tpr@{label}fpr", p.tpr, p.n_members, *p.tpr_ci, higher_is_better=False,
                              description=f"strongest attack ({strongest.method}) at {label} FPR"))  # fmt: skip
    strongest = max(evs.values(), key=lambda ev: ev.auc)
    metrics.append(Metric("auc", strongest.auc, strongest.n_members + strongest.n_nonmembers, *strongest.auc_ci,
                          higher_is_better=False, description=f"strongest attack's AUC ({strongest.method})"))  # fmt: skip
    if bound is not None and verdict is not None:
        metrics.append(Metric("dp_bound_margin", verdict.margin, higher_is_better=False,
                              description="largest TPR lower bound minus the TPR the DP claim allows at that FPR "
                              "(> 0: claim contradicted)"))  # fmt: skip
    return metrics


def _figures(audit: MembershipAudit, bound: PrivacyBound | None, notes: list[str]) -> list[Figure]:
    from garrison.privacy.roc import roc_loglog_svg

    evs: dict[str, MembershipEvaluation] = audit.evaluations
    curves = [(m, ev.roc_fpr, ev.roc_tpr) for m, ev in evs.items()]
    drawn_bound = None
    if bound is not None:
        grid = np.geomspace(1e-4, 1.0, 50)
        drawn_bound = (grid, bound.max_tpr(grid))
    rows = tuple(
        {"method": m, "auc": ev.auc, **{f"tpr@{_LABELS[p.target_fpr]}": p.tpr for p in ev.points},
         **{f"ci_low@{_LABELS[p.target_fpr]}": p.tpr_ci[0] for p in ev.points},
         **{f"ci_high@{_LABELS[p.target_fpr]}": p.tpr_ci[1] for p in ev.points}}
        for m, ev in evs.items()
    )  # fmt: skip
    caption = (
        "Members: training rows; non-members: test rows, half of them fix each threshold, the other half "
        "measure the FPR; Clopper–Pearson 95 % intervals."
        + (" The dashed line is the TPR the DP claim allows." if bound is not None else "")
        + ("" if not notes else " " + " ".join(n[0].upper() + n[1:] + "." for n in notes))
    )
    columns = (
        "method",
        "auc",
        "tpr@0.1%",
        "ci_low@0.1%",
        "ci_high@0.1%",
        "tpr@1%",
        "ci_low@1%",
        "ci_high@1%",
    )
    return [
        Figure("privacy-roc", "Membership inference ROC (log-log)",
               svg=roc_loglog_svg(curves, bound=drawn_bound), table=rows, columns=columns, caption=caption)
    ]  # fmt: skip
