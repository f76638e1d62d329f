"""``garrison.yaml``: the one configuration file of an audit (model, data, checks, policy, report).

Parsed with line numbers kept, validated against a declared spec (:data:`CONFIG_SPEC`); unknown keys and bad
values raise :class:`ConfigError` naming the file, key and line. ``${VAR}`` in a secret field (e.g. a remote
model's headers) is expanded from the ``env`` mapping the caller passes; the library never reads the environment
itself. :meth:`GarrisonConfig.redacted` is what reports store.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from garrison.core.errors import ConfigError
from garrison.core.policy import POLICY_SPEC, Policy
from garrison.core.schema_spec import Spec, line_of, load_yaml, validate

__all__ = [
    "CONFIG_SPEC",
    "CheckConfig",
    "DataConfig",
    "DataSourceConfig",
    "FeatureOverride",
    "GarrisonConfig",
    "ModelConfig",
    "ReportConfig",
    "ScanConfig",
    "load_config",
    "parse_config",
]

MODEL_FORMATS = ("auto", "sklearn", "skops", "torch", "torchscript", "torch-export", "onnx", "remote")
REPORT_FORMATS = ("json", "html", "sarif", "junit", "markdown")
REDACTED = "***"

_DATA_SOURCE = Spec(
    "map",
    fields={
        "path": Spec("str", required=True, doc="CSV, Parquet or .npz file (arrays x and y)"),
        "label": Spec(
            "str",
            default=None,
            doc="label column for CSV/Parquet (default: the first of label, target, y, class)",
        ),
        "format": Spec("str", default="auto", choices=("auto", "csv", "parquet", "npz")),
    },
)

_FEATURE = Spec(
    "map",
    fields={
        "min": Spec("float", default=None),
        "max": Spec("float", default=None),
        "immutable": Spec("bool", default=False),
        "categorical": Spec("bool", default=None),
        "integer": Spec("bool", default=None),
        "categories": Spec("list", items=Spec("str"), default=None),
    },
)

CONFIG_SPEC = Spec(
    "map",
    fields={
        "version": Spec("int", default=1, choices=(1,), doc="config format version"),
        "project": Spec("str", default="garrison-project"),
        "seed": Spec("int", default=0, ge=0),
        "model": Spec(
            "map",
            nullable=True,
            doc="the model to audit (a scan-only config may leave it out)",
            fields={
                "name": Spec("str", default=None, doc="logical name, stable across retraining"),
                "path": Spec("str", default=None),
                "format": Spec("str", default="auto", choices=MODEL_FORMATS),
                "factory": Spec("str", default=None, doc="'package.module:function' building a torch module"),
                "weights": Spec("str", default=None, doc="safetensors or state_dict file for the factory"),
                "trusted": Spec("bool", default=False, doc="load code-bearing files without a scan"),
                "url": Spec("str", default=None),
                "headers": Spec("dict", values=Spec("str", secret=True), default=None, secret=True),
                "timeout_s": Spec("float", default=10.0, gt=0),
                "retries": Spec("int", default=3, ge=0, le=20),
                "batch_size": Spec("int", default=256, ge=1),
                "n_classes": Spec("int", default=None, ge=2),
                "class_names": Spec("list", items=Spec("str"), default=None),
                "device": Spec("str", default="cpu"),
            },
        ),
        "data": Spec(
            "map",
            fields={
                "train": _DATA_SOURCE,
                "test": _DATA_SOURCE,
                "features": Spec("dict", values=_FEATURE, default=None, doc="schema overrides per feature"),
            },
        ),
        "checks": Spec(
            "dict",
            values=Spec("dict", values=Spec("any")),
            default=None,
            doc="per check id: enabled, budget_s and the check's own options",
        ),
        "policy": POLICY_SPEC,
        "scan": Spec(
            "map",
            fields={
                "allowlist": Spec(
                    "list",
                    items=Spec("str"),
                    default=None,
                    doc="extra safe callables, exact 'module.qualname'",
                ),
                "require_signature": Spec(
                    "str", default=None, doc="public key (PEM) the model must be signed with"
                ),
                "limits": Spec(
                    "map",
                    fields={
                        "max_decompression_ratio": Spec("float", default=None, gt=1),
                        "max_nesting_depth": Spec("int", default=None, ge=1, le=64),
                        "max_memo_entries": Spec("int", default=None, ge=1),
                        "max_opcodes": Spec("int", default=None, ge=1),
                        "timeout_s": Spec("float", default=None, gt=0),
                        "max_member_bytes": Spec("int", default=None, ge=1),
                        "max_members": Spec("int", default=None, ge=1),
                    },
                ),
            },
        ),
        "serve": Spec(
            "map",
            doc="the guarded inference service (`garrison serve`)",
            fields={
                "host": Spec("str", default="127.0.0.1"),
                "port": Spec("int", default=8000, ge=0, le=65535),
                "store": Spec(
                    "str", default=None, doc="store URL for keys, incidents and the audit log", secret=True
                ),
                "max_body_bytes": Spec("int", default=1 << 20, ge=64),
                "max_batch": Spec("int", default=256, ge=1),
                "rate": Spec("float", default=50.0, gt=0, doc="rows per second per API key"),
                "burst": Spec("float", default=200.0, ge=1, doc="token-bucket size per API key"),
                "timeout_s": Spec(
                    "float", default=10.0, gt=0, doc="longest model call before a 503 (with offload)"
                ),
                "offload": Spec(
                    "bool",
                    default=False,
                    doc="call the model in a worker thread under timeout_s "
                    "(slow models; costs ~0.1 ms per request)",
                ),
                "explain": Spec("bool", default=True, doc="serve /v1/explain"),
                "explain_top_k": Spec("int", default=3, ge=1),
                "log_payloads": Spec("bool", default=False, doc="keep request bodies in the audit log"),
                "drift_window": Spec("int", default=1000, ge=10),
                "strip_sample": Spec(
                    "float",
                    default=0.0,
                    ge=0,
                    le=1,
                    doc="share of image rows STRIP checks for a "
                    "backdoor trigger (about 20 forward passes each, in the background)",
                ),
                "feedback_window": Spec(
                    "int", default=500, ge=1, doc="late labels the live accuracy is taken over"
                ),
                "squeezing": Spec(
                    "bool",
                    default=False,
                    doc="feature squeezing on live rows (one more model call "
                    "per row, in the background): 'adversarial' signals",
                ),
                "drift_every": Spec("int", default=500, ge=1, doc="rows between drift checks"),
                "detect_interval_s": Spec(
                    "float",
                    default=0.1,
                    gt=0,
                    le=10,
                    doc="seconds between the detector thread's passes (a playbook action lags by about this)",
                ),
                "drift_min_interval_s": Spec(
                    "float", default=30.0, ge=0, doc="seconds between drift checks, at least"
                ),
                "worker": Spec("str", default="w0", doc="this worker's audit-log chain"),
                "fsync": Spec(
                    "bool",
                    default=False,
                    doc="sync each audit-log journal write and commit to disk: survives a power cut, "
                    "not only a killed process (about 3 ms per request)",
                ),
                "require_attestation": Spec(
                    "map",
                    doc="serve a model only with a verifying attestation of a passing audit (`garrison attest`)",
                    fields={
                        "public_key": Spec("str", default=None, doc="the signer's public key (PEM)"),
                        "path": Spec(
                            "str",
                            default=None,
                            doc="attestation of an unregistered model (default <model file>.intoto.jsonl)",
                        ),
                    },
                ),
                "journal": Spec(
                    "str",
                    default=None,
                    doc="directory of the audit log's write-ahead journal (default .garrison/journal)",
                ),
                "keys_reload_s": Spec(
                    "float", default=30.0, gt=0, doc="seconds between key-ring reloads from the store"
                ),
                "head_key": Spec(
                    "str", default=None, doc="Ed25519 private key (PEM) signing the audit-log head"
                ),
                "heads_file": Spec(
                    "str", default=None, doc="where signed heads go (default .garrison/heads.jsonl)"
                ),
                "head_export_s": Spec("float", default=60.0, gt=0, doc="seconds between signed-head exports"),
                "fallback_model": Spec(
                    "str", default=None, doc="model file a 'fallback' playbook action serves"
                ),
                "quarantine_dir": Spec(
                    "str", default=None, doc="where quarantined rows are written, encrypted"
                ),
                "quarantine_key": Spec(
                    "str", default=None, doc="key file (garrison protect keygen) for quarantine"
                ),
                "require_audit": Spec(
                    "bool", default=True, doc="refuse a registered model whose audit failed"
                ),
                "alerts": Spec(
                    "map",
                    fields={
                        "log": Spec("str", default=None, doc="JSON-lines file of alerts"),
                        "webhook": Spec("str", default=None, secret=True, doc="Slack-compatible webhook URL"),
                        "min_interval_s": Spec(
                            "float", default=60.0, ge=0, doc="same alert at most once per interval"
                        ),
                    },
                ),
                "playbooks": Spec(
                    "list",
                    items=Spec("dict", values=Spec("any")),
                    default=None,
                    doc="when <signal> then <actions>: see docs/serve.md",
                ),
            },
        ),
        "report": Spec(
            "map",
            fields={
                "output": Spec("str", default="garrison-report"),
                "formats": Spec(
                    "list", items=Spec("str", choices=REPORT_FORMATS), default=list(REPORT_FORMATS)
                ),
            },
        ),
    },
)

# keep required-ness of the data source path only when the section is present
_DATA_SOURCE_OPTIONAL = Spec("map", fields=_DATA_SOURCE.fields, nullable=True)


@dataclass(frozen=True, slots=True)
class ModelConfig:
    name: str
    path: str | None = None
    format: str = "auto"
    factory: str | None = None
    weights: str | None = None
    trusted: bool = False
    url: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout_s: float = 10.0
    retries: int = 3
    batch_size: int = 256
    n_classes: int | None = None
    class_names: tuple[str, ...] | None = None
    device: str = "cpu"


@dataclass(frozen=True, slots=True)
class DataSourceConfig:
    path: str
    label: str | None = None
    format: str = "auto"


@dataclass(frozen=True, slots=True)
class FeatureOverride:
    min: float | None = None
    max: float | None = None
    immutable: bool = False
    categorical: bool | None = None
    integer: bool | None = None
    categories: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class DataConfig:
    train: DataSourceConfig | None = None
    test: DataSourceConfig | None = None
    features: Mapping[str, FeatureOverride] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CheckConfig:
    """One check's section: ``enabled``, ``budget_s`` and the check's own options (validated by the check)."""

    enabled: bool = True
    budget_s: float | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    line: int | None = None


@dataclass(frozen=True, slots=True)
class ScanConfig:
    """The ``scan:`` section: allowlist extensions, a required signature key, and limit overrides (unset: defaults)."""

    allowlist: tuple[str, ...] = ()
    require_signature: str | None = None
    limits: Mapping[str, float | int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ReportConfig:
    output: str = "garrison-report"
    formats: tuple[str, ...] = REPORT_FORMATS


@dataclass(frozen=True, slots=True)
class GarrisonConfig:
    """A validated ``garrison.yaml``. Relative paths are resolved against ``base_dir``. ``model`` is None in a
    scan-only config; auditing needs it."""

    model: ModelConfig | None = None
    data: DataConfig = field(default_factory=DataConfig)
    checks: Mapping[str, CheckConfig] = field(default_factory=dict)
    policy: Policy = field(default_factory=Policy)
    report: ReportConfig = field(default_factory=ReportConfig)
    scan: ScanConfig = field(default_factory=ScanConfig)
    project: str = "garrison-project"
    seed: int = 0
    version: int = 1
    base_dir: Path = field(default_factory=Path)
    source: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)

    def resolve(self, path: str) -> Path:
        """A path from the config, relative to the config file's directory."""
        p = Path(path)
        return p if p.is_absolute() else self.base_dir / p

    def redacted(self) -> dict[str, Any]:
        """The config as written, secrets replaced by ``***``: safe for reports and logs."""
        return _redact(self.raw, CONFIG_SPEC)


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _expand(value: str, env: Mapping[str, str], key: str, path: str | None) -> str:
    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in env:
            raise ConfigError(f"environment variable {name} is not set", path=path, key=key)
        return env[name]

    return _ENV_REF.sub(sub, value)


def _redact(data: Any, spec: Spec) -> Any:
    if spec.secret and data is not None:
        if isinstance(data, Mapping):
            return dict.fromkeys(data, REDACTED)
        return REDACTED
    if isinstance(data, Mapping):
        if spec.kind == "map":
            return {k: _redact(v, spec.fields[k]) if k in spec.fields else v for k, v in data.items()}
        if spec.kind == "dict" and spec.values is not None:
            return {k: _redact(v, spec.values) for k, v in data.items()}
    return data


def parse_config(
    text: str,
    *,
    path: str | Path | None = None,
    env: Mapping[str, str] | None = None,
) -> GarrisonConfig:
    """Validate YAML text as a ``garrison.yaml``. ``env`` supplies ``${VAR}`` values for secret fields."""
    doc = load_yaml(text, path=path)
    if doc is None:
        raise ConfigError("the file is empty; run `garrison init` to write a starting config", path=path)
    spec = Spec("map", fields={**CONFIG_SPEC.fields, "data": _data_spec_for(doc)})
    plain = validate(doc, spec, path=path)
    src = str(path) if path is not None else None
    m = plain["model"]
    model = None if m is None else _model_config(m, doc, path, env)
    d = plain["data"]
    data = DataConfig(
        train=DataSourceConfig(**d["train"]) if d.get("train") else None,
        test=DataSourceConfig(**d["test"]) if d.get("test") else None,
        features={
            name: FeatureOverride(
                **{**f, "categories": tuple(f["categories"]) if f["categories"] is not None else None}
            )
            for name, f in (d.get("features") or {}).items()
        },
    )
    checks_node = doc.get("checks") or {}
    checks: dict[str, CheckConfig] = {}
    for check_id, options in (plain["checks"] or {}).items():
        opts = dict(options or {})
        enabled = opts.pop("enabled", True)
        budget = opts.pop("budget_s", None)
        line = line_of(checks_node, check_id)
        if not isinstance(enabled, bool):
            raise ConfigError(
                f"`checks.{check_id}.enabled` must be true or false, got {enabled!r}",
                path=path,
                key=f"checks.{check_id}.enabled",
                line=line,
            )
        if budget is not None and (
            isinstance(budget, bool) or not isinstance(budget, int | float) or budget <= 0
        ):
            raise ConfigError(
                f"`checks.{check_id}.budget_s` must be > 0, got {budget!r}",
                path=path,
                key=f"checks.{check_id}.budget_s",
                line=line,
            )
        checks[check_id] = CheckConfig(enabled, None if budget is None else float(budget), opts, line)
    policy = Policy.from_plain(plain["policy"], path=path, node=doc.get("policy"))
    r = plain["report"]
    sc = plain["scan"]
    scan = ScanConfig(
        allowlist=tuple(sc["allowlist"] or ()),
        require_signature=sc["require_signature"],
        limits={k: v for k, v in sc["limits"].items() if v is not None},
    )
    return GarrisonConfig(
        model=model,
        data=data,
        checks=checks,
        policy=policy,
        report=ReportConfig(r["output"], tuple(r["formats"])),
        scan=scan,
        project=plain["project"],
        seed=plain["seed"],
        version=plain["version"],
        base_dir=Path(path).parent if path is not None else Path(),
        source=src,
        raw=plain,
    )


def _model_config(
    m: Mapping[str, Any], doc: Any, path: str | Path | None, env: Mapping[str, str] | None
) -> ModelConfig:
    src = str(path) if path is not None else None
    if not (m["path"] or m["factory"] or m["url"]):
        raise ConfigError(
            "one of `model.path`, `model.factory` or `model.url` is required",
            path=path,
            key="model",
            line=line_of(doc, "model"),
        )
    headers = {k: _expand(v, env or {}, f"model.headers.{k}", src) for k, v in (m["headers"] or {}).items()}
    return ModelConfig(
        name=m["name"] or _default_model_name(m),
        path=m["path"],
        format=m["format"],
        factory=m["factory"],
        weights=m["weights"],
        trusted=m["trusted"],
        url=m["url"],
        headers=headers,
        timeout_s=m["timeout_s"],
        retries=m["retries"],
        batch_size=m["batch_size"],
        n_classes=m["n_classes"],
        class_names=tuple(m["class_names"]) if m["class_names"] else None,
        device=m["device"],
    )


def load_config(path: str | Path, *, env: Mapping[str, str] | None = None) -> GarrisonConfig:
    """Read and validate a ``garrison.yaml``."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("config file not found; run `garrison init` to write one", path=p) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file: {exc.__class__.__name__}", path=p) from None
    return parse_config(text, path=p, env=env)


def _data_spec_for(doc: Any) -> Spec:
    base = CONFIG_SPEC.fields["data"]
    fields = dict(base.fields)
    data = doc.get("data") if isinstance(doc, Mapping) else None
    for part in ("train", "test"):
        if not (isinstance(data, Mapping) and part in data):
            fields[part] = _DATA_SOURCE_OPTIONAL
    return Spec("map", fields=fields)


def _default_model_name(m: Mapping[str, Any]) -> str:
    for key in ("path", "weights", "url"):
        if m.get(key):
            return Path(str(m[key]).rstrip("/")).stem or "model"
    if m.get("factory"):
        return str(m["factory"]).rsplit(":", 1)[-1]
    return "model"
