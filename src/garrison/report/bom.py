"""The CycloneDX 1.6 ML-BOM of an audited model: the model with a model card built from the audit, its datasets
and the Python distributions it runs on.

The ``cyclonedx`` library (extra ``bom``) builds what it models (the BOM, its metadata, components with hashes,
purls and licences, the dependency graph) and serialises it to JSON 1.6. It has no ``modelCard`` nor component
``data`` yet, so both are added to the JSON document afterwards, and the final document is validated against the
1.6 JSON schema the library ships (its strict validator). Everything is sorted, so two builds from the same report
on the same environment differ only in ``serialNumber`` and ``metadata.timestamp``, and both can be passed in.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import json
import math
import re
import uuid
from collections.abc import Iterable, Mapping
from importlib import import_module, metadata
from pathlib import Path, PurePath
from typing import Any
from urllib.parse import quote

from garrison.core.atomic_write import write_atomic
from garrison.core.audit_report import Report
from garrison.core.config import GarrisonConfig
from garrison.core.errors import ReportError
from garrison.core.findings import Finding
from garrison.core.metrics import Metric
from garrison.core.optional import import_optional
from garrison.core.results import CheckResult, CheckStatus
from garrison.core.severity import Severity, Stage
from garrison.report.svg import sanitize_svg

__all__ = ["BOM_SPEC_VERSION", "build_ml_bom", "ml_bom_json", "validate_ml_bom", "write_ml_bom"]

BOM_SPEC_VERSION = "1.6"
MODEL_ROLES = ("model", "weights")
_EXTRA = "bom"
_MAX_LIMITATION_CHARS = 500
_MAX_LICENSE_CHARS = 100
_EPS_METRIC = re.compile(r"^(?P<base>[A-Za-z_][\w.]*)@(?P<eps>[0-9][0-9.eE+-]*)$")
_DATA_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".npz": "npz", ".npy": "npy"}


def build_ml_bom(
    report: Report,
    *,
    config: GarrisonConfig | None = None,
    dependencies: bool = True,
    serial_number: uuid.UUID | None = None,
    timestamp: dt.datetime | None = None,
    distributions: Iterable[metadata.Distribution] | None = None,
) -> dict[str, Any]:
    """The CycloneDX 1.6 ML-BOM of the audited model in ``report``, as a JSON-ready dict.

    The model (``metadata.component``, type ``machine-learning-model``) carries its SHA-256 and a model card built
    from the audit; each dataset the audit read is a ``data`` component with its SHA-256; with ``dependencies``
    every installed Python distribution (or those of ``distributions``) is a ``library`` component with its purl
    ``pkg:pypi/name@version``, licence where known, and the graph of its requirements. ``config`` (the audit's
    ``garrison.yaml``) adds what the report does not record, such as the data formats and labels. The document is
    not validated here: see :func:`validate_ml_bom`.
    """
    cdx = _cyclonedx()
    model_name = report.run.model_name
    serial = serial_number if serial_number is not None else uuid.uuid4()
    when = timestamp if timestamp is not None else dt.datetime.now(dt.UTC)

    model_ref = f"model:{model_name}"
    model = cdx.Component(
        type=cdx.ComponentType.MACHINE_LEARNING_MODEL,
        name=model_name,
        bom_ref=model_ref,
        description=f"Model audited by Garrison (project {report.run.project})",
        hashes=[_sha256(cdx, a.sha256) for a in _artifacts(report, MODEL_ROLES)],
        properties=_model_properties(cdx, report),
    )
    bom = cdx.Bom(serial_number=serial)
    bom.metadata.timestamp = when
    bom.metadata.component = model
    bom.metadata.tools.components.add(
        cdx.Component(
            type=cdx.ComponentType.APPLICATION,
            name="garrison",
            version=report.run.garrison_version,
            description="Garrison: audit, harden and guard machine-learning systems",
        )
    )

    data_components: list[Any] = []
    for artifact in _artifacts(report, exclude=(*MODEL_ROLES, "bundle")):
        data_components.append(
            cdx.Component(
                type=cdx.ComponentType.DATA,
                name=f"{artifact.role}:{PurePath(artifact.path).name}",
                bom_ref=f"data:{artifact.role}",
                hashes=[_sha256(cdx, artifact.sha256)],
                properties=[
                    cdx.Property(name="garrison:data:role", value=artifact.role),
                    cdx.Property(name="garrison:data:size_bytes", value=str(artifact.size)),
                ],
            )
        )
    for component in data_components:
        bom.components.add(component)

    libraries: dict[str, Any] = {}
    requires: dict[str, list[str]] = {}
    if dependencies:
        libraries, requires = _libraries(cdx, distributions)
        for component in libraries.values():
            bom.components.add(component)
        for name, needs in sorted(requires.items()):
            bom.register_dependency(libraries[name], [libraries[n] for n in needs if n in libraries])
    runtime = [libraries[n] for n in sorted({_normalise(p) for p in report.run.packages}) if n in libraries]
    bom.register_dependency(model, [*data_components, *runtime])

    outputter = cdx.JsonV1Dot6(bom)
    document: dict[str, Any] = json.loads(outputter.output_as_string())
    document["metadata"]["component"]["modelCard"] = _model_card(report, config)
    datasets = {a.role: a for a in _artifacts(report, exclude=(*MODEL_ROLES, "bundle"))}
    for component in document.get("components", []):
        ref = component.get("bom-ref", "")
        if ref.startswith("data:") and ref[5:] in datasets:
            component["data"] = [_component_data(datasets[ref[5:]], report, config)]
    return _sorted_document(document)


def ml_bom_json(document: Mapping[str, Any]) -> str:
    """The JSON text of a BOM document: sorted keys, two-space indent, a trailing newline, no NaN."""
    return json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def validate_ml_bom(document: Mapping[str, Any]) -> list[str]:
    """Problems of ``document`` against the CycloneDX 1.6 JSON schema the library ships (strict: no unknown
    properties), each as ``"<json path>: <message>"``, sorted; empty when the document is valid."""
    try:
        text = json.dumps(document, allow_nan=False)
    except (TypeError, ValueError) as exc:
        return [f"$: not JSON-serialisable: {exc}"]
    errors = _validator().validate_str(text, all_errors=True)
    if errors is None:
        return []
    problems = []
    for error in errors:
        raw = error.data
        path = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in raw.absolute_path)
        problems.append(f"{path}: {raw.message}")
    return sorted(set(problems))


def write_ml_bom(
    report: Report,
    path: str | Path,
    *,
    config: GarrisonConfig | None = None,
    dependencies: bool = True,
    serial_number: uuid.UUID | None = None,
    timestamp: dt.datetime | None = None,
    distributions: Iterable[metadata.Distribution] | None = None,
) -> Path:
    """Build the ML-BOM of ``report``, validate it, and write it atomically to ``path`` (returned). A document that
    does not validate is a :class:`ReportError` naming the first problem, and nothing is written."""
    document = build_ml_bom(
        report,
        config=config,
        dependencies=dependencies,
        serial_number=serial_number,
        timestamp=timestamp,
        distributions=distributions,
    )
    problems = validate_ml_bom(document)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ReportError(
            f"the ML-BOM does not validate against CycloneDX {BOM_SPEC_VERSION}: {problems[0]}{more}"
        )
    return write_atomic(path, ml_bom_json(document))


# ------------------------------------------------------------------------------------------------ the library


class _Cdx:
    """The parts of the ``cyclonedx`` library the BOM uses, imported once on first use."""

    def __init__(self) -> None:
        bom = import_optional("cyclonedx.model.bom", extra=_EXTRA)
        component = import_optional("cyclonedx.model.component", extra=_EXTRA)
        model = import_optional("cyclonedx.model", extra=_EXTRA)
        output = import_optional("cyclonedx.output.json", extra=_EXTRA)
        try:  # cyclonedx-python-lib >= 11.x; the older path is deprecated there
            licenses = import_module("cyclonedx.contrib.license.factories")
        except ImportError:
            licenses = import_optional("cyclonedx.factory.license", extra=_EXTRA)
        purl = import_optional("packageurl", extra=_EXTRA)
        self.Bom = bom.Bom
        self.Component = component.Component
        self.ComponentType = component.ComponentType
        self.HashType = model.HashType
        self.HashAlgorithm = model.HashAlgorithm
        self.Property = model.Property
        self.JsonV1Dot6 = output.JsonV1Dot6
        self.LicenseFactory = licenses.LicenseFactory
        self.PackageURL = purl.PackageURL


@functools.cache
def _cyclonedx() -> _Cdx:
    return _Cdx()


@functools.cache
def _validator() -> Any:
    schema = import_optional("cyclonedx.schema", extra=_EXTRA)
    validation = import_optional("cyclonedx.validation.json", extra=_EXTRA)
    return validation.JsonStrictValidator(schema.SchemaVersion.V1_6)


def _sha256(cdx: _Cdx, digest: str) -> Any:
    return cdx.HashType(alg=cdx.HashAlgorithm.SHA_256, content=digest)


def _artifacts(report: Report, roles: Iterable[str] = (), exclude: Iterable[str] = ()) -> list[Any]:
    wanted, skipped = set(roles), set(exclude)
    return sorted(
        (
            a
            for a in report.run.artifacts
            if (not wanted or a.role in wanted) and a.role not in skipped and _is_sha256(a.sha256)
        ),
        key=lambda a: (a.role, a.path),
    )


def _is_sha256(text: str) -> bool:
    return re.fullmatch(r"[0-9a-f]{64}", text) is not None


def _model_properties(cdx: _Cdx, report: Report) -> list[Any]:
    props = {
        "garrison:project": report.run.project,
        "garrison:audit:started_at": report.run.started_at,
        "garrison:audit:finished_at": report.run.finished_at,
        "garrison:audit:seed": str(report.run.seed),
        "garrison:report:schema_version": report.schema_version,
    }
    if report.decision is not None:
        props["garrison:audit:verdict"] = report.decision.verdict.value
        props["garrison:audit:fail_on"] = report.decision.fail_on.value
        for severity, count in report.decision.counts().items():
            props[f"garrison:audit:findings:{severity}"] = str(count)
    return [cdx.Property(name=k, value=v) for k, v in sorted(props.items())]


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _libraries(
    cdx: _Cdx, distributions: Iterable[metadata.Distribution] | None
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """One ``library`` component per distribution (first one of a name wins) and each one's installed needs."""
    from packaging.requirements import InvalidRequirement, Requirement

    dists: dict[str, metadata.Distribution] = {}
    for dist in metadata.distributions() if distributions is None else distributions:
        name = dist.metadata["Name"] if dist.metadata is not None else None
        if not name or not dist.version:
            continue
        dists.setdefault(_normalise(name), dist)
    components: dict[str, Any] = {}
    requires: dict[str, list[str]] = {}
    factory = cdx.LicenseFactory()
    for key in sorted(dists):
        dist = dists[key]
        purl = cdx.PackageURL(type="pypi", name=key, version=dist.version)
        licenses = [factory.make_from_string(text) for text in _license_texts(dist)]
        components[key] = cdx.Component(
            type=cdx.ComponentType.LIBRARY,
            name=dist.metadata["Name"],
            version=dist.version,
            purl=purl,
            bom_ref=purl.to_string(),
            licenses=licenses,
        )
        needs: set[str] = set()
        for line in dist.requires or ():
            try:
                requirement = Requirement(line)
            except InvalidRequirement:
                continue
            if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
                continue  # an optional extra or another platform's need
            needs.add(_normalise(requirement.name))
        requires[key] = sorted(n for n in needs if n in dists and n != key)
    return components, requires


def _license_texts(dist: metadata.Distribution) -> list[str]:
    """The distribution's licence: its SPDX ``License-Expression``, a short ``License`` field, or the names of
    its ``License ::`` classifiers (at most one of these, in that order)."""
    meta = dist.metadata
    expression = (meta.get("License-Expression") or "").strip()
    if expression:
        return [expression]
    field = (meta.get("License") or "").strip()
    if field and "\n" not in field and len(field) <= _MAX_LICENSE_CHARS and field.upper() != "UNKNOWN":
        return [field]
    names = {
        c.split("::")[-1].strip()
        for c in meta.get_all("Classifier") or []
        if c.startswith("License ::") and c.count("::") >= 2
    }
    return sorted(n for n in names if n)


# ------------------------------------------------------------------------------------------------ model card


def _model_card(report: Report, config: GarrisonConfig | None) -> dict[str, Any]:
    card: dict[str, Any] = {"bom-ref": f"model-card:{report.run.model_name}"}
    card["modelParameters"] = _model_parameters(report, config)
    metrics = [pm for r in _ok_results(report) for pm in _performance_metrics(r)]
    graphics = _graphics(report)
    analysis: dict[str, Any] = {}
    if metrics:
        analysis["performanceMetrics"] = sorted(metrics, key=lambda m: (m["type"], m.get("slice", "")))
    if graphics:
        analysis["graphics"] = {"collection": graphics}
    if analysis:
        card["quantitativeAnalysis"] = analysis
    considerations = _considerations(report)
    if considerations:
        card["considerations"] = considerations
    return card


def _model_parameters(report: Report, config: GarrisonConfig | None) -> dict[str, Any]:
    data = _data_sources(report, config)
    supervised = any(src.get("label") for src in data.values())
    params: dict[str, Any] = {"task": "classification"}
    if supervised:
        params["approach"] = {"type": "supervised"}
    model_cfg = _model_config(report, config)
    model_format = model_cfg.get("format")
    path = model_cfg.get("path")
    if (not model_format or model_format == "auto") and path:
        model_format = PurePath(str(path)).suffix.lstrip(".") or None
    if model_format and model_format != "auto":
        params["modelArchitecture"] = f"{model_format} model"
    if model_cfg.get("url"):
        params["modelArchitecture"] = "remote HTTP endpoint (black box)"
    datasets = [{"ref": f"data:{a.role}"} for a in _artifacts(report, exclude=(*MODEL_ROLES, "bundle"))]
    if datasets:
        params["datasets"] = datasets
    formats = sorted({_data_format(str(src.get("path", ""))) for src in data.values() if src.get("path")})
    if formats:
        params["inputs"] = [{"format": f} for f in formats]
    params["outputs"] = [{"format": "class probabilities (predict_proba)"}]
    return params


def _model_config(report: Report, config: GarrisonConfig | None) -> dict[str, Any]:
    if config is not None and config.model is not None:
        m = config.model
        return {"path": m.path, "format": m.format, "url": m.url}
    raw = report.run.config.get("model")
    return dict(raw) if isinstance(raw, Mapping) else {}


def _data_sources(report: Report, config: GarrisonConfig | None) -> dict[str, dict[str, Any]]:
    if config is not None:
        return {
            role: {"path": src.path, "label": src.label, "format": src.format}
            for role, src in (("train", config.data.train), ("test", config.data.test))
            if src is not None
        }
    raw = report.run.config.get("data")
    if not isinstance(raw, Mapping):
        return {}
    return {
        role: dict(src) for role, src in raw.items() if role in ("train", "test") and isinstance(src, Mapping)
    }


def _data_format(path: str) -> str:
    return _DATA_FORMATS.get(PurePath(path).suffix.lower(), "tabular")


def _ok_results(report: Report) -> list[CheckResult]:
    return sorted(
        (r for r in report.results if r.status is CheckStatus.OK and r.stage is not Stage.ARTIFACT),
        key=lambda r: r.check_id,
    )


def _performance_metrics(result: CheckResult) -> list[dict[str, Any]]:
    """Each finite metric of a check as ``{type, value, slice, confidenceInterval}``: ``type`` is the policy name
    ``<check>.<metric>``; a robustness ``name@eps`` and a per-class ``recall.<class>`` become a slice."""
    out = []
    for m in result.metrics:
        if not _finite(m.value) or m.name == "n" or m.name.startswith("n_"):
            continue
        kind, slices = f"{result.check_id}.{m.name}", []
        eps = _EPS_METRIC.match(m.name)
        if eps and result.check_id == "robustness":
            kind = f"{result.check_id}.{eps['base']}"
            slices.append(f"epsilon={eps['eps']}")
        elif m.name.startswith("recall.") and result.check_id == "performance":
            kind = f"{result.check_id}.recall"
            slices.append(f"class={m.name.removeprefix('recall.')}")
        if m.n is not None:
            slices.append(f"n={m.n}")
        entry: dict[str, Any] = {"type": kind, "value": _number(m.value)}
        if slices:
            entry["slice"] = ", ".join(slices)
        if _finite(m.ci_low) and _finite(m.ci_high):
            entry["confidenceInterval"] = {"lowerBound": _number(m.ci_low), "upperBound": _number(m.ci_high)}
        out.append(entry)
    return out


def _graphics(report: Report) -> list[dict[str, Any]]:
    graphics = []
    for result in sorted(report.results, key=lambda r: r.check_id):
        for figure in sorted(result.figures, key=lambda f: f.id):
            svg = sanitize_svg(figure.svg) if figure.svg else None
            if not svg:
                continue
            graphics.append(
                {
                    "name": f"{result.check_id}: {figure.title}",
                    "image": {
                        "contentType": "image/svg+xml",
                        "encoding": "base64",
                        "content": base64.b64encode(svg.encode("utf-8")).decode("ascii"),
                    },
                }
            )
    return graphics


def _considerations(report: Report) -> dict[str, Any]:
    out: dict[str, Any] = {}
    limitations = _limitations(report)
    if limitations:
        out["technicalLimitations"] = limitations
    tradeoffs = _tradeoffs(report)
    if tradeoffs:
        out["performanceTradeoffs"] = tradeoffs
    ethical = _privacy_risks(report)
    if ethical:
        out["ethicalConsiderations"] = ethical
    return out


def _limitations(report: Report) -> list[str]:
    """The verdict first, then blocking or high/critical active findings, then checks that errored or were
    skipped (what the audit could not tell)."""
    lines: list[str] = []
    decision = report.decision
    if decision is not None:
        lines.append(
            f"Garrison audit verdict: {decision.verdict.value} (fails on {decision.fail_on.value} and above); "
            f"active findings: {', '.join(f'{k} {v}' for k, v in decision.counts().items())}"
        )
    blocking = set(decision.blocking) if decision is not None else set()
    serious = [
        f
        for f in report.findings
        if f.is_active and (f.fingerprint in blocking or f.severity >= Severity.HIGH)
    ]
    lines.extend(_clip(f"[{f.severity.value}] {f.rule_id} {f.title}: {f.message}") for f in _by_key(serious))
    for r in sorted(report.results, key=lambda r: r.check_id):
        if r.status is CheckStatus.ERROR:
            first = ((r.error or "").splitlines() or ["unknown error"])[0]
            lines.append(_clip(f"check {r.check_id} errored, so its risk was not measured: {first}"))
        elif r.status is CheckStatus.SKIPPED:
            lines.append(
                _clip(f"check {r.check_id} was skipped, so its risk was not measured: {r.reason or ''}")
            )
    return lines


def _tradeoffs(report: Report) -> list[str]:
    rob = next((r for r in _ok_results(report) if r.check_id == "robustness"), None)
    if rob is None:
        return []
    clean = rob.metric("clean_accuracy")
    out = []
    for m in sorted(rob.metrics, key=lambda m: m.name):
        eps = _EPS_METRIC.match(m.name)
        if eps is None or eps["base"] != "robust_accuracy" or not _finite(m.value):
            continue
        base = f"clean accuracy {_short(clean.value)} " if clean is not None and _finite(clean.value) else ""
        out.append(f"{base}falls to {_short(m.value)} under evasion attacks of budget epsilon={eps['eps']}")
    return out


def _privacy_risks(report: Report) -> list[dict[str, str]]:
    risks: list[dict[str, str]] = []
    privacy = next((r for r in _ok_results(report) if r.check_id == "privacy"), None)
    if privacy is not None:
        auc = privacy.metric("auc")
        if auc is not None and _finite(auc.value):
            risks.append(
                {
                    "name": f"Membership inference: best attack AUC {_short(auc.value)}{_ci(auc)} "
                    "(0.5 is chance); training records may be identifiable from the model's outputs",
                    "mitigationStrategy": "Train with differential privacy (garrison.privacy.make_private) "
                    "or regularise; re-audit until the AUC's interval covers 0.5",
                }
            )
    for f in _by_key(f for f in report.findings if f.is_active and f.check_id in ("privacy", "anonymity")):
        risks.append(
            {
                "name": _clip(f"[{f.severity.value}] {f.rule_id} {f.title}: {f.message}"),
                "mitigationStrategy": _clip(f.remediation or "see the Garrison rule catalogue"),
            }
        )
    return risks


def _component_data(artifact: Any, report: Report, config: GarrisonConfig | None) -> dict[str, Any]:
    source = _data_sources(report, config).get(artifact.role, {})
    description = f"{artifact.role} data read by the audit ({artifact.size} bytes"
    if source.get("label"):
        description += f", label column {source['label']!r}"
    return {
        "bom-ref": f"dataset:{artifact.role}",
        "type": "dataset",
        "name": PurePath(artifact.path).name,
        "contents": {"url": _file_url(artifact.path)},
        "description": description + ")",
    }


def _file_url(path: str) -> str:
    p = PurePath(path)
    if Path(path).is_absolute():
        return Path(path).as_uri()
    return quote(p.as_posix())


# ------------------------------------------------------------------------------------------------ helpers


def _finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


def _number(x: float | None) -> str:
    """The shortest text that reads back as exactly ``x``."""
    return repr(float(x)) if x is not None else ""


def _short(x: float) -> str:
    return f"{x:.3g}"


def _ci(m: Metric) -> str:
    if _finite(m.ci_low) and _finite(m.ci_high):
        return f" (95% CI {_short(m.ci_low or 0.0)}-{_short(m.ci_high or 0.0)}, n={m.n})"
    return ""


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_LIMITATION_CHARS else text[: _MAX_LIMITATION_CHARS - 1] + "…"


def _by_key(findings: Iterable[Finding]) -> list[Finding]:
    return sorted(findings, key=Finding.sort_key)


def _sorted_document(document: dict[str, Any]) -> dict[str, Any]:
    """Components by bom-ref, dependencies by ref with sorted needs: the same report gives the same order."""
    if "components" in document:
        document["components"] = sorted(document["components"], key=lambda c: c.get("bom-ref", ""))
    if "dependencies" in document:
        for dep in document["dependencies"]:
            if "dependsOn" in dep:
                dep["dependsOn"] = sorted(dep["dependsOn"])
        document["dependencies"] = sorted(document["dependencies"], key=lambda d: d["ref"])
    return document
