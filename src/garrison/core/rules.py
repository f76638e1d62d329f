"""The rule catalogue: every finding Garrison can raise, with its severity, references and remediation.

Rule ids are stable (``GAR-<AREA>-<NNN>``) and never reused. References are versioned ids: MITRE ATLAS technique
ids (``atlas:AML.T0029``; ATLAS ids are never renumbered, the catalogue names the ATLAS release it was checked
against) and OWASP Machine Learning Security Top 10 ids with their edition (``owasp-ml:2023:ML01``).
Third-party checks add rules with :func:`register_rule`; duplicates are refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from garrison.core.errors import RegistryError
from garrison.core.findings import Evidence, Finding, Subject
from garrison.core.severity import Severity, Stage

__all__ = ["ATLAS_RELEASE", "Rule", "all_rules", "get_rule", "reference_url", "register_rule"]

ATLAS_RELEASE = "ATLAS v2026.10"

_OWASP_ML_2023 = {
    "ML01": "input-manipulation-attack",
    "ML02": "data-poisoning-attack",
    "ML03": "model-inversion-attack",
    "ML04": "membership-inference-attack",
    "ML05": "model-theft",
    "ML06": "ai-supply-chain-attacks",
    "ML07": "transfer-learning-attack",
    "ML08": "model-skewing",
    "ML09": "output-integrity-attack",
    "ML10": "model-poisoning",
}


def reference_url(ref: str) -> str | None:
    """A browsable URL for a versioned reference id, or ``None`` when there is none."""
    scheme, _, rest = ref.partition(":")
    if scheme == "atlas":
        return f"https://atlas.mitre.org/techniques/{rest}"
    if scheme == "owasp-ml":
        edition, _, item = rest.partition(":")
        slug = _OWASP_ML_2023.get(item)
        if edition == "2023" and slug:
            return f"https://owasp.org/www-project-machine-learning-security-top-10/docs/{item}_2023-{slug}"
    if scheme == "cwe":
        return f"https://cwe.mitre.org/data/definitions/{rest}.html"
    return None


@dataclass(frozen=True, slots=True)
class Rule:
    """A kind of finding. ``severity`` is the default; a check may raise or lower it per finding."""

    id: str
    title: str
    severity: Severity
    stage: Stage
    description: str
    remediation: str
    references: tuple[str, ...] = ()
    threat_model: str = ""

    def finding(
        self,
        *,
        subject: Subject,
        message: str,
        location: str | None = None,
        evidence: Mapping[str, Any] | Iterable[Evidence] = (),
        severity: Severity | None = None,
        stage: Stage | None = None,
        check_id: str | None = None,
        line: int | None = None,
        sensitive: Iterable[str] = (),
    ) -> Finding:
        """Build a finding of this rule. ``evidence`` may be a mapping; keys named in ``sensitive`` are marked."""
        if isinstance(evidence, Mapping):
            hidden = set(sensitive)
            ev = tuple(Evidence(k, v, k in hidden) for k, v in evidence.items())
        else:
            ev = tuple(evidence)
        return Finding(
            rule_id=self.id,
            title=self.title,
            severity=severity or self.severity,
            stage=stage or self.stage,
            subject=subject,
            message=message,
            threat_model=self.threat_model,
            evidence=ev,
            location=location,
            line=line,
            references=self.references,
            remediation=self.remediation,
            check_id=check_id,
        )


_RULES: dict[str, Rule] = {}


def register_rule(rule: Rule) -> Rule:
    """Add a rule to the catalogue. A second rule with the same id is refused."""
    if rule.id in _RULES and _RULES[rule.id] != rule:
        raise RegistryError(f"rule {rule.id} is already registered", name=rule.id)
    _RULES[rule.id] = rule
    return rule


def get_rule(rule_id: str) -> Rule:
    try:
        return _RULES[rule_id]
    except KeyError:
        raise RegistryError(f"unknown rule id {rule_id!r}", name=rule_id) from None


def all_rules() -> list[Rule]:
    """Every registered rule, sorted by id."""
    return [_RULES[k] for k in sorted(_RULES)]


# --- rules of the policy gate -------------------------------------------------------------------------------

POLICY_THRESHOLD = register_rule(
    Rule(
        id="GAR-POL-001",
        title="Metric outside its policy threshold",
        severity=Severity.HIGH,
        stage=Stage.MODEL,
        description="A metric measured by a check is outside the bound the policy sets for it.",
        remediation="Improve the model or data until the metric meets the bound, or change the policy with a "
        "recorded reason.",
        threat_model="Any: the policy encodes the team's minimum bar for release.",
    )
)
POLICY_EXPIRED_ACCEPTANCE = register_rule(
    Rule(
        id="GAR-POL-002",
        title="Accepted risk has expired",
        severity=Severity.MEDIUM,
        stage=Stage.MODEL,
        description="A finding was accepted as a risk until a date that has passed; the acceptance no longer "
        "applies and the finding counts again.",
        remediation="Fix the finding, or renew the acceptance in .garrison/triage.yaml with a new reason, owner "
        "and expiry.",
    )
)
POLICY_CHECK_INCOMPLETE = register_rule(
    Rule(
        id="GAR-POL-003",
        title="A required check did not complete",
        severity=Severity.HIGH,
        stage=Stage.MODEL,
        description="A check the policy requires errored, ran out of its time budget, or was skipped, so the "
        "audit cannot vouch for what it measures.",
        remediation="Read the check's error in the report, fix the input or raise its budget, and rerun.",
    )
)
POLICY_UNKNOWN_METRIC = register_rule(
    Rule(
        id="GAR-POL-004",
        title="Policy threshold names a metric no check produced",
        severity=Severity.MEDIUM,
        stage=Stage.MODEL,
        description="The policy sets a threshold on a metric that no check in this audit measured, so the "
        "threshold was never tested.",
        remediation="Enable the check that produces the metric, or fix the metric's name in the policy.",
    )
)

# --- model input fuzzing ---------------------------------------------------------------------------------------

FUZZ_CRASH = register_rule(
    Rule(
        id="GAR-FZ-001",
        title="Model crashes on malformed input",
        severity=Severity.MEDIUM,
        stage=Stage.MODEL,
        description="The model raised an unexpected error (not a clean rejection) on a malformed input. A "
        "service that forwards such inputs can be taken down by them.",
        remediation="Validate inputs against the schema before prediction and reject invalid ones with a clear "
        "error (garrison serve does this).",
        references=("atlas:AML.T0029", "owasp-ml:2023:ML01", "cwe:20"),
        threat_model="An attacker who can send inputs to the model's service.",
    )
)
FUZZ_INVALID_OUTPUT = register_rule(
    Rule(
        id="GAR-FZ-002",
        title="Model returns non-finite or invalid probabilities",
        severity=Severity.HIGH,
        stage=Stage.MODEL,
        description="For some input the model returned NaN or infinite scores, negative probabilities, rows "
        "that do not sum to 1, or an output of the wrong shape. Downstream decisions on such output are "
        "undefined.",
        remediation="Reject non-finite and out-of-range inputs before the model, and check outputs before use.",
        references=("owasp-ml:2023:ML09", "cwe:682"),
        threat_model="An attacker who can send inputs and profits from undefined downstream decisions.",
    )
)
FUZZ_NONDETERMINISM = register_rule(
    Rule(
        id="GAR-FZ-003",
        title="Model output is not deterministic",
        severity=Severity.MEDIUM,
        stage=Stage.MODEL,
        description="The same input gave different outputs on repeated calls, or in a different batch. "
        "Randomised outputs break audits and can mask gradients from robustness evaluation.",
        remediation="Put the model in evaluation mode (no dropout), fix seeds, and make batching "
        "order-independent; if randomness is intended, declare it so robustness checks use EOT.",
        references=("owasp-ml:2023:ML09",),
    )
)
FUZZ_SILENT_ACCEPTANCE = register_rule(
    Rule(
        id="GAR-FZ-004",
        title="Model silently accepts input that violates the schema",
        severity=Severity.MEDIUM,
        stage=Stage.MODEL,
        description="The model returned a confident prediction for an input outside the data schema (NaN, far "
        "out of bounds, an unknown category) instead of rejecting it. Out-of-schema inputs are a cheap route "
        "to adversarial and evasion behaviour.",
        remediation="Validate inputs against the dataset schema and reject violations; garrison serve enforces "
        "the schema at the service boundary.",
        references=("atlas:AML.T0043", "owasp-ml:2023:ML01", "cwe:20"),
        threat_model="An attacker who controls input features and wants an arbitrary confident decision.",
    )
)
PERF_DEAD_CLASS = register_rule(
    Rule(
        id="GAR-PF-001",
        title="A class is never recognised",
        severity=Severity.MEDIUM,
        stage=Stage.MODEL,
        description="The recall of one class on the test set is zero: the model never predicts it correctly.",
        remediation="Check the class balance and labels of the training data; retrain with class weights or "
        "more data for that class.",
        references=("owasp-ml:2023:ML08",),
    )
)
