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
        symbol: str | None = None,
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
            symbol=symbol,
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

# --- model artifacts (supply chain) -----------------------------------------------------------------------------

_ARTIFACT_REFS = ("atlas:AML.T0011.000", "atlas:AML.T0010.003", "owasp-ml:2023:ML06", "cwe:502")
_ARTIFACT_THREAT = "Anyone who can publish or tamper with a model file that a user then loads."

SC_CODE_EXECUTION = register_rule(
    Rule(
        id="GAR-SC-001",
        title="Model file runs code when loaded",
        severity=Severity.CRITICAL,
        stage=Stage.ARTIFACT,
        description="Loading this file calls a callable that can execute arbitrary code or reach one indirectly "
        "(os, subprocess, builtins exec/eval/getattr/__import__, runpy, importlib, operator gadgets, marshal, ...).",
        remediation="Do not load this file. Obtain the model from a trusted source in a format that holds no code "
        "(safetensors, ONNX, skops), and verify its signature.",
        references=_ARTIFACT_REFS,
        threat_model=_ARTIFACT_THREAT,
    )
)
SC_UNKNOWN_GLOBAL = register_rule(
    Rule(
        id="GAR-SC-002",
        title="Model file imports a callable outside the allowlist",
        severity=Severity.HIGH,
        stage=Stage.ARTIFACT,
        description="Loading this file imports or calls a global that is not on the allowlist of constructors "
        "known to be safe. Unknown callables can execute code.",
        remediation="Review the callable. If it is your own trusted class, add its exact `module.qualname` to "
        "`scan.allowlist` in garrison.yaml; otherwise do not load the file.",
        references=_ARTIFACT_REFS,
        threat_model=_ARTIFACT_THREAT,
    )
)
SC_MALFORMED_PICKLE = register_rule(
    Rule(
        id="GAR-SC-003",
        title="Pickle stream is malformed or evasive",
        severity=Severity.MEDIUM,
        stage=Stage.ARTIFACT,
        description="The pickle stream does not parse cleanly (truncated, garbage after a payload, a frame length "
        "that lies, a memo reference to nothing). Parsers disagree on such streams, which is how payloads evade "
        "scanners.",
        remediation="Re-export the model with the library that made it; do not load a stream that does not parse.",
        references=("atlas:AML.T0011.000", "owasp-ml:2023:ML06", "cwe:502"),
        threat_model=_ARTIFACT_THREAT,
    )
)
SC_ARCHIVE = register_rule(
    Rule(
        id="GAR-SC-004",
        title="Archive is inconsistent or evasive",
        severity=Severity.HIGH,
        stage=Stage.ARTIFACT,
        description="The archive's structure disagrees with itself (local and central header names differ, bad "
        "CRC, unusual flag bits, duplicate names) or a member path escapes the extraction directory. Loaders and "
        "scanners may then read different content.",
        remediation="Do not load the file; rebuild the archive with a standard tool from trusted content.",
        references=("atlas:AML.T0010.003", "owasp-ml:2023:ML06", "cwe:22"),
        threat_model=_ARTIFACT_THREAT,
    )
)
SC_KERAS = register_rule(
    Rule(
        id="GAR-SC-005",
        title="Keras model holds executable layers",
        severity=Severity.CRITICAL,
        stage=Stage.ARTIFACT,
        description="The Keras config contains a Lambda layer (serialised Python bytecode), a custom object or a "
        "function reference that `safe_mode` would not stop, so loading it can run code.",
        remediation="Replace Lambda layers with registered custom layers from your own code, and load with "
        "`safe_mode=True`; do not load files from untrusted sources.",
        references=_ARTIFACT_REFS,
        threat_model=_ARTIFACT_THREAT,
    )
)
SC_TF_OPS = register_rule(
    Rule(
        id="GAR-SC-006",
        title="TensorFlow graph touches the file system",
        severity=Severity.HIGH,
        stage=Stage.ARTIFACT,
        description="The SavedModel graph contains operations that read, write, list or print to files "
        "(ReadFile, WriteFile, MatchingFiles, Save/Restore with chosen paths, PrintV2 to a file). Running the "
        "graph can exfiltrate or overwrite files.",
        remediation="Inspect the graph's purpose; serve untrusted SavedModels only in a sandbox without file access.",
        references=("atlas:AML.T0011.000", "atlas:AML.T0010.003", "owasp-ml:2023:ML06"),
        threat_model=_ARTIFACT_THREAT,
    )
)
SC_ONNX = register_rule(
    Rule(
        id="GAR-SC-007",
        title="ONNX model uses custom operators or external data outside its directory",
        severity=Severity.HIGH,
        stage=Stage.ARTIFACT,
        description="The ONNX graph uses operators from custom domains (which load native code from a custom-op "
        "library), or points its external tensor data at a path outside the model's directory.",
        remediation="Use only standard operator domains, keep external data beside the model, and load custom-op "
        "libraries only from trusted builds.",
        references=("atlas:AML.T0010.003", "owasp-ml:2023:ML06", "cwe:22"),
        threat_model=_ARTIFACT_THREAT,
    )
)
SC_SAFETENSORS = register_rule(
    Rule(
        id="GAR-SC-008",
        title="safetensors header is invalid",
        severity=Severity.HIGH,
        stage=Stage.ARTIFACT,
        description="The safetensors header is not valid JSON, is oversized, or describes tensors whose offsets "
        "overlap, leave the file, or disagree with their dtype and shape. Readers may crash or read other data.",
        remediation="Re-export the tensors with the safetensors library from a trusted source.",
        references=("atlas:AML.T0010.003", "owasp-ml:2023:ML06", "cwe:20"),
        threat_model=_ARTIFACT_THREAT,
    )
)
SC_TEMPLATE = register_rule(
    Rule(
        id="GAR-SC-009",
        title="Chat template reaches Python internals",
        severity=Severity.CRITICAL,
        stage=Stage.ARTIFACT,
        description="A Jinja chat template (GGUF metadata or tokenizer_config.json) uses constructs that reach "
        "Python internals (__class__, __globals__, __subclasses__, ...), the path of server-side template "
        "injection to code execution when the template is rendered.",
        remediation="Use a template without attribute access to dunder names, and render templates in a "
        "sandboxed Jinja environment.",
        references=("atlas:AML.T0011.000", "atlas:AML.T0010.003", "owasp-ml:2023:ML06", "cwe:1336"),
        threat_model=_ARTIFACT_THREAT,
    )
)
SC_REMOTE_CODE = register_rule(
    Rule(
        id="GAR-SC-010",
        title="Model repository runs its own code on load",
        severity=Severity.HIGH,
        stage=Stage.ARTIFACT,
        description="The repository's config maps model classes to its own Python files (`auto_map`), which "
        "`trust_remote_code=True` executes.",
        remediation="Review every Python file in the repository before loading it with trust_remote_code, or use "
        "a model whose architecture the library ships.",
        references=("atlas:AML.T0011.000", "atlas:AML.T0010.003", "owasp-ml:2023:ML06", "cwe:94"),
        threat_model=_ARTIFACT_THREAT,
    )
)
SC_SIGNATURE = register_rule(
    Rule(
        id="GAR-SC-011",
        title="Model signature is missing or invalid",
        severity=Severity.CRITICAL,
        stage=Stage.ARTIFACT,
        description="A signature was required, but the model has none, or it does not verify against the given "
        "public key, or the files changed after signing.",
        remediation="Obtain the model and its signature from the publisher and verify them; re-sign only after "
        "reviewing the change.",
        references=("atlas:AML.T0010.003", "owasp-ml:2023:ML06", "cwe:347"),
        threat_model="Anyone who can replace the model between its publisher and the loader.",
    )
)
SC_CODE_ARCHIVE = register_rule(
    Rule(
        id="GAR-SC-012",
        title="Model file is a code archive",
        severity=Severity.MEDIUM,
        stage=Stage.ARTIFACT,
        description="The file is a TorchScript or torch.export archive: a program, not just weights. Loading it "
        "runs its serialised code with the runtime's operators.",
        remediation="Load code archives only from trusted, signed sources; prefer weights (safetensors) plus "
        "your own model code.",
        references=("atlas:AML.T0011.000", "owasp-ml:2023:ML06"),
        threat_model=_ARTIFACT_THREAT,
    )
)

# --- ML code scan ---------------------------------------------------------------------------------------------

_CODE_REFS = ("owasp-ml:2023:ML06", "cwe:502")

CODE_UNSAFE_LOAD = register_rule(
    Rule(
        id="GAR-CS-001",
        title="Code deserialises a model with pickle",
        severity=Severity.HIGH,
        stage=Stage.ARTIFACT,
        description="The code loads data with pickle, joblib, dill, cloudpickle, `torch.load(weights_only=False)` "
        "or `numpy.load(allow_pickle=True)`; a malicious file then runs code.",
        remediation="Use `torch.load(..., weights_only=True)`, safetensors, skops or ONNX, or load through "
        "`garrison.adapters.load`, which scans first.",
        references=_CODE_REFS,
        threat_model=_ARTIFACT_THREAT,
    )
)
CODE_REMOTE_CODE = register_rule(
    Rule(
        id="GAR-CS-002",
        title="Code trusts remote model code",
        severity=Severity.HIGH,
        stage=Stage.ARTIFACT,
        description="`trust_remote_code=True` runs Python files from a downloaded model repository.",
        remediation="Pin the repository revision and review its code, or use a model whose architecture the "
        "library ships.",
        references=("owasp-ml:2023:ML06", "cwe:94"),
        threat_model=_ARTIFACT_THREAT,
    )
)
CODE_UNSAFE_YAML = register_rule(
    Rule(
        id="GAR-CS-003",
        title="Code parses YAML with an unsafe loader",
        severity=Severity.HIGH,
        stage=Stage.ARTIFACT,
        description="`yaml.load` without `SafeLoader` (or `yaml.unsafe_load`) builds arbitrary Python objects "
        "from a config file.",
        remediation="Use `yaml.safe_load`.",
        references=("cwe:502",),
    )
)
CODE_EVAL = register_rule(
    Rule(
        id="GAR-CS-004",
        title="Code evaluates data as code",
        severity=Severity.HIGH,
        stage=Stage.ARTIFACT,
        description="`eval` or `exec` is called on a value that is not a literal.",
        remediation="Parse data with a parser (json, ast.literal_eval) instead of evaluating it.",
        references=("cwe:95",),
    )
)
CODE_SECRET = register_rule(
    Rule(
        id="GAR-CS-005",
        title="Hard-coded secret in code",
        severity=Severity.HIGH,
        stage=Stage.ARTIFACT,
        description="A token or key (an API key, an access token, a private key) is written in the code.",
        remediation="Revoke the secret, and read secrets from the environment or a secret store.",
        references=("cwe:798",),
    )
)
CODE_BANDIT = register_rule(
    Rule(
        id="GAR-CS-100",
        title="Insecure Python pattern (bandit)",
        severity=Severity.MEDIUM,
        stage=Stage.ARTIFACT,
        description="bandit, the Python security linter, reports an insecure pattern; the bandit test id and its "
        "confidence are in the evidence.",
        remediation="Follow the bandit test's documentation for the reported test id.",
        references=("cwe:710",),
    )
)

# --- dataset provenance ---------------------------------------------------------------------------------------

_PROVENANCE_REFS = ("atlas:AML.T0020", "atlas:AML.T0010.002", "owasp-ml:2023:ML02")
_PROVENANCE_THREAT = "Anyone who can write to the dataset between its review and training or evaluation."

DATA_FILE_CHANGED = register_rule(
    Rule(
        id="GAR-DS-001",
        title="Dataset file changed since its manifest",
        severity=Severity.HIGH,
        stage=Stage.DATA,
        description="A file of the dataset differs from the digest its manifest records, was added after the "
        "manifest was written, or is gone. Training or evaluating on data that changed after it was reviewed is how "
        "poisoned records and swapped test sets get in.",
        remediation="Find out who changed the file and why, comparing it with a trusted copy; restore it, or review "
        "the change and write and sign a new manifest (`garrison protect manifest DIR --private-key KEY`).",
        references=(*_PROVENANCE_REFS, "cwe:345"),
        threat_model=_PROVENANCE_THREAT,
    )
)
DATA_MANIFEST_SIGNATURE = register_rule(
    Rule(
        id="GAR-DS-002",
        title="Dataset manifest signature is missing or invalid",
        severity=Severity.CRITICAL,
        stage=Stage.DATA,
        description="A signature was required, but the dataset manifest has none, or it does not verify with the "
        "given public key: the manifest was edited after signing, another key signed it, or the signature is "
        "damaged. A manifest that is not signed can be rewritten to match tampered data.",
        remediation="Obtain the manifest and its signature from the data owner and verify them "
        "(`garrison protect verify-manifest DIR --public-key KEY`); re-sign only after reviewing the data.",
        references=(*_PROVENANCE_REFS, "cwe:347"),
        threat_model=_PROVENANCE_THREAT,
    )
)
DATA_UNSAFE_PATH = register_rule(
    Rule(
        id="GAR-DS-003",
        title="Dataset path cannot be verified",
        severity=Severity.HIGH,
        stage=Stage.DATA,
        description="A path under the dataset directory cannot be hashed safely: a symbolic link pointing outside "
        "the dataset, a dangling link, a FIFO, socket or device, or a directory that cannot be read. A link out of "
        "the dataset makes content the manifest does not cover readable as part of the dataset.",
        remediation="Replace links with the files themselves or remove them, remove special files, fix "
        "permissions, then write and sign a new manifest.",
        references=(*_PROVENANCE_REFS, "cwe:59"),
        threat_model=_PROVENANCE_THREAT,
    )
)

# --- privacy -------------------------------------------------------------------------------------------------

PRIVACY_MEMBERSHIP_LEAK = register_rule(
    Rule(
        id="GAR-PV-001",
        title="Training records exposed to membership inference",
        severity=Severity.MEDIUM,
        stage=Stage.MODEL,
        description="A membership-inference attack (loss threshold, LiRA or RMIA) tells the "
        "model's training records from held-out ones better than chance at a low false-positive rate, with 95 % "
        "confidence: an attacker who queries the model can confirm that particular records were in its training "
        "data. The most exposed records are listed in the evidence (marked sensitive).",
        remediation="Train with differential privacy (garrison.privacy.make_private, DP-SGD), regularise "
        "(weight decay, early stopping, data augmentation), or return labels or rounded scores instead of full "
        "probabilities; re-audit the most exposed records.",
        references=("atlas:AML.T0024.000", "owasp-ml:2023:ML04"),
        threat_model="A black-box attacker who queries the model's probabilities and can train reference models "
        "on data from the same distribution.",
    )
)
PRIVACY_DP_CLAIM_CONTRADICTED = register_rule(
    Rule(
        id="GAR-PV-002",
        title="Differential-privacy claim contradicted by an attack",
        severity=Severity.CRITICAL,
        stage=Stage.MODEL,
        description="The model is claimed (or accounted) to be (ε, δ)-differentially private, which caps every "
        "membership attack's TPR at min(e^ε·FPR + δ, 1 − e^−ε(1 − δ − FPR)) (minimum over the accountant's δ "
        "grid). A measured attack's TPR lower confidence bound exceeds that cap at its FPR's upper confidence "
        "bound (Clopper–Pearson, Bonferroni-corrected): the claim cannot be true for this model.",
        remediation="Do not ship the privacy claim. Check that DP-SGD ran with the stated noise multiplier, "
        "sampling rate and steps (Poisson sampling, per-sample clipping, no non-private pre-training on the same "
        "data), recompute ε with the PRV or RDP accountant, and retrain.",
        references=("atlas:AML.T0024.000", "owasp-ml:2023:ML04"),
        threat_model="A black-box attacker who queries the model's probabilities and can train reference models "
        "on data from the same distribution.",
    )
)
PRIVACY_ATTRIBUTE_INFERENCE = register_rule(
    Rule(
        id="GAR-PV-003",
        title="Sensitive attribute inferable from the model's outputs",
        severity=Severity.MEDIUM,
        stage=Stage.MODEL,
        description="An attacker who knows a record's other features and the model's output on it guesses the "
        "record's sensitive feature better than from the other features alone and better than the majority value, "
        "with 95 % confidence (attribute inference; Fredrikson et al. 2014, ART's AttributeInferenceBlackBox).",
        remediation="Remove the sensitive feature (and its proxies) from the model's inputs if it is not needed, "
        "return labels or coarser scores instead of full probabilities, or train with differential privacy.",
        references=("atlas:AML.T0024.001", "owasp-ml:2023:ML03"),
        threat_model="A black-box attacker who queries the model and knows the other features of the victim's record.",
    )
)

# --- adversarial robustness ------------------------------------------------------------------------------------

ROBUST_GRADIENT_MASKING = register_rule(
    Rule(
        id="GAR-RB-001",
        title="Gradient masking suspected",
        severity=Severity.HIGH,
        stage=Stage.MODEL,
        description="The white-box evaluation shows a sign of gradient masking (Carlini et al., 'On Evaluating "
        "Adversarial Robustness'): black-box or transfer attacks beat white-box ones, accuracy does not fall towards "
        "zero as ε grows, more iterations or restarts still help, input gradients are zero, NaN or uninformative, "
        "or outputs are randomised. White-box robust accuracy would then flatter the model; the check reports the "
        "strongest result it can get instead (black-box attacks, BPDA, EOT).",
        remediation="Treat the reported robustness as an upper bound. Remove non-differentiable or random input "
        "transforms from the defence, or evaluate it with adaptive attacks (BPDA, EOT) before relying on it.",
        references=("atlas:AML.T0043", "atlas:AML.T0015", "owasp-ml:2023:ML01"),
        threat_model="An attacker who crafts inputs with knowledge of the model (white-box) or queries (black-box).",
    )
)
ROBUST_SELFTEST_FAILED = register_rule(
    Rule(
        id="GAR-RB-002",
        title="Attack self-test failed",
        severity=Severity.HIGH,
        stage=Stage.MODEL,
        description="An attack did not find an adversarial example on a model modified so that one provably exists "
        "(Zimmermann et al. 2022, 'Increasing Confidence in Adversarial Robustness Evaluations'). Its robust "
        "accuracy cannot be trusted on this model.",
        remediation="Increase the attack's steps or restarts, check the model's input scaling against the threat "
        "model, and rerun; report the issue if it persists.",
        references=("atlas:AML.T0043", "owasp-ml:2023:ML01"),
    )
)


_POISON_REFS = ("atlas:AML.T0020", "owasp-ml:2023:ML02")
_POISON_THREAT = (
    "Someone who can add or alter training records (a data supplier, a scraped source, an insider, a compromised "
    "pipeline step) before the model is trained."
)

DATA_DUPLICATE_ROWS = register_rule(
    Rule(
        id="GAR-DI-001",
        title="Duplicate rows in the training data",
        severity=Severity.LOW,
        stage=Stage.DATA,
        description="Rows of the training set repeat other rows exactly or nearly (within the near-duplicate "
        "tolerance). Duplicates weight some records more than others, inflate cross-validation scores, and are "
        "how an injected record gets extra pull; the row indices are in the evidence.",
        remediation="Find out why the rows repeat (a join, a retried ingest, an injected batch); deduplicate before "
        "training, or keep the repeats deliberately and accept the finding.",
        references=_POISON_REFS,
        threat_model=_POISON_THREAT,
    )
)
DATA_TEST_LEAKAGE = register_rule(
    Rule(
        id="GAR-DI-002",
        title="Test rows leaked from the training data",
        severity=Severity.MEDIUM,
        stage=Stage.DATA,
        description="Rows of the test set equal or nearly equal rows of the training set. Every metric measured on "
        "them (accuracy, robustness, privacy) is measured on what the model memorised and flatters it.",
        remediation="Split before deduplicating is undone: remove the leaked rows from the test set (or the "
        "training set), and split by entity or time where records of one entity repeat.",
        references=(),
    )
)
DATA_CONFLICTING_LABELS = register_rule(
    Rule(
        id="GAR-DI-003",
        title="Identical inputs with conflicting labels",
        severity=Severity.MEDIUM,
        stage=Stage.DATA,
        description="Byte-identical training rows carry different labels: at least one label is wrong (a labelling "
        "error or a label-flipping attack), or the features cannot determine the label.",
        remediation="Review the groups in the evidence and correct or remove the wrong labels.",
        references=_POISON_REFS,
        threat_model=_POISON_THREAT,
    )
)
DATA_CLASS_IMBALANCE = register_rule(
    Rule(
        id="GAR-DI-004",
        title="Severe class imbalance",
        severity=Severity.LOW,
        stage=Stage.DATA,
        description="The largest class has many times the rows of the smallest (the ratio and the counts are in "
        "the evidence). Minority classes are learnt poorly and a few injected records move them most.",
        remediation="Collect more minority rows, reweight or resample, and report per-class metrics.",
        references=(),
    )
)
DATA_LABEL_ISSUES = register_rule(
    Rule(
        id="GAR-DI-005",
        title="Likely mislabelled training rows",
        severity=Severity.MEDIUM,
        stage=Stage.DATA,
        description="Confident learning (cleanlab, on out-of-fold probabilities) finds rows whose given label "
        "disagrees with what the rest of the data says, beyond the estimated noise of their class: label errors or "
        "flipped labels. The indices, most suspicious first, and the suggested labels are in the evidence.",
        remediation="Review the listed rows (most suspicious first) and fix or drop wrong labels; a cluster of "
        "flips into one class is worth treating as an attack.",
        references=_POISON_REFS,
        threat_model=_POISON_THREAT,
    )
)
DATA_POISONED_CLASS = register_rule(
    Rule(
        id="GAR-BD-001",
        title="Training class looks poisoned",
        severity=Severity.HIGH,
        stage=Stage.DATA,
        description="The rows of one class split into a separate population in the model's representation or in "
        "feature space (spectral signatures, activation clustering, or nearest-neighbour label disagreement) far "
        "beyond what the other classes show (a robust null across classes): the signature of a backdoor or "
        "targeted poisoning. The suspect row indices and their scores are in the evidence.",
        remediation="Inspect the suspect rows (a shared patch or pattern, labels that do not match the content); "
        "remove them (`garrison data scan --write-clean`), retrain, and scan the retrained model for a backdoor.",
        references=(*_POISON_REFS, "atlas:AML.T0018.000"),
        threat_model=_POISON_THREAT,
    )
)
MODEL_BACKDOOR = register_rule(
    Rule(
        id="GAR-BD-002",
        title="Model carries a backdoor trigger",
        severity=Severity.HIGH,
        stage=Stage.MODEL,
        description="Trigger reverse-engineering (Neural Cleanse) finds that a far smaller input change sends "
        "inputs of every class to one class than to any other (anomaly index above 2): a shortcut planted by "
        "poisoned training data or a tampered model. The class and the size of the reversed trigger are in the "
        "evidence.",
        remediation="Do not deploy the model. Scan its training data for poisons, retrain on cleaned data, or "
        "fine-tune and prune on clean data; filter inputs with STRIP meanwhile.",
        references=("atlas:AML.T0018.000", "owasp-ml:2023:ML10", "owasp-ml:2023:ML02"),
        threat_model="A supplier of the training data or of the model itself who planted a trigger that the "
        "attacker can add to inputs at inference time.",
    )
)


MODEL_LEAKY_FEATURE = register_rule(
    Rule(
        id="GAR-XP-001",
        title="Model leans on an identifier",
        severity=Severity.HIGH,
        stage=Stage.MODEL,
        description="One feature carries most of the model's decision (its share of the mean |attribution|) and "
        "looks like an identifier: whole numbers that are nearly all distinct (an id), or values that follow the "
        "row order (a row number, a timestamp). The model has learnt how the data was collected or sorted; its "
        "accuracy on held-out rows of the same file is real and worthless on new data.",
        remediation="Drop the column from the model's inputs (or split by it), retrain, and re-evaluate on data "
        "collected separately.",
        references=(),
    )
)
MODEL_UNSTABLE_EXPLANATIONS = register_rule(
    Rule(
        id="GAR-XP-002",
        title="Explanations unstable under small noise",
        severity=Severity.MEDIUM,
        stage=Stage.MODEL,
        description="Attributions of many rows reorder their features under noise of 1 % of each feature's spread "
        "(Spearman correlation below the threshold): the explanations say more about the explainer or a jagged "
        "model surface than about the decision, and can be manipulated (Slack et al. 2020). Do not rely on them "
        "as evidence.",
        remediation="Use a smoother explainer (Integrated Gradients with more steps, SHAP with a larger background) "
        "or smooth the model (regularisation); check for gradient masking with the robustness check.",
        references=(),
    )
)
MODEL_WEAK_SLICE = register_rule(
    Rule(
        id="GAR-XP-003",
        title="Model underperforms on a slice of the data",
        severity=Severity.MEDIUM,
        stage=Stage.MODEL,
        description="The model's accuracy, calibration (top-label Brier score) or robust accuracy on one slice of "
        "the test set (a category, a range of a feature, a value of a sensitive attribute) is significantly worse "
        "than on the rest, after Benjamini–Hochberg control across every slice tested. The metric, the slice, its "
        "size and both values with 95 % intervals are in the evidence.",
        remediation="Collect more training data for the slice, check its labels and features for errors, and "
        "report per-slice metrics; decide whether the model may be used for that slice at all.",
        references=(),
    )
)
MODEL_FAIRNESS_GAP = register_rule(
    Rule(
        id="GAR-XP-004",
        title="Selection rates differ across groups of a sensitive attribute",
        severity=Severity.MEDIUM,
        stage=Stage.MODEL,
        description="The lowest group's rate of positive predictions is below four fifths of the highest group's "
        "(demographic parity ratio < 0.8, the 'four-fifths rule' of US employment guidance). The rates per group, "
        "the equal-opportunity and equalized-odds gaps are in the evidence.",
        remediation="Check whether the gap is justified by the task; if not, rebalance or reweight the training "
        "data, add fairness constraints, or post-process thresholds per group, and re-measure.",
        references=(),
    )
)
MODEL_TRIGGER_REGION = register_rule(
    Rule(
        id="GAR-XP-005",
        title="A small input region hijacks the model to one class",
        severity=Severity.HIGH,
        stage=Stage.MODEL,
        description="Many training rows of one class are decided by a few features that, pasted into inputs the "
        "model puts in other classes, send most of them to that class, unlike every other class (attribution-"
        "guided trigger localisation, after SentiNet): the signature of a backdoor trigger. The class, the share "
        "of its rows that hijack and the localised region (a bounding box for images) are in the evidence.",
        remediation="Treat the model as backdoored until shown otherwise: inspect the training rows of that class "
        "for the region (`garrison data scan`), run the training check's Neural Cleanse and STRIP, and retrain on "
        "cleaned data.",
        references=("atlas:AML.T0018.000", "owasp-ml:2023:ML10", "owasp-ml:2023:ML02"),
        threat_model="A supplier of training data who planted a trigger that the attacker can add to inputs at "
        "inference time.",
    )
)
