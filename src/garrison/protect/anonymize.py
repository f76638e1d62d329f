"""The anonymisation pipeline: a config says what to do with each column; PII is detected per column (from names
and values) and span by span in free text; identifiers are pseudonymised, redacted, suppressed or generalised;
quasi-identifiers are generalised to a target k; a report gives k and l before and after.

The config is a YAML file (validated with line numbers, like ``garrison.yaml``)::

    columns:                 # per-column action; columns not listed get `default_action`
      email: pseudonymize    # pseudonymize | redact | suppress | generalize | keep | auto
      notes: auto
    default_action: auto
    free_text: pseudonymize  # what `auto` does to spans in free text: pseudonymize | redact
    quasi_identifiers:       # column -> ladder: numeric | postcode | date | category
      age: numeric
      zip: postcode
    sensitive: diagnosis
    k: 5
    l: 1
    method: mondrian         # mondrian | generalize
    max_suppression: 0.05
    policy: {min_k: 5, min_l: 2}
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from garrison.core.errors import ConfigError
from garrison.core.metrics import Metric
from garrison.core.schema_spec import Spec, line_of, load_yaml, validate
from garrison.protect.kanon import (
    GENERALIZATIONS,
    coarsen_date,
    generalize_to_k,
    measure,
    mondrian,
    numeric_bands,
    truncate_postcode,
)
from garrison.protect.pii import FREE_TEXT, ColumnClass, classify_column, detect_spans
from garrison.protect.pseudonym import Pseudonymizer

__all__ = [
    "ACTIONS",
    "CONFIG_SPEC",
    "REPORT_SCHEMA_VERSION",
    "AnonymizeConfig",
    "AnonymizeResult",
    "anonymize_frame",
    "load_anonymize_config",
    "parse_anonymize_config",
]

ACTIONS = ("auto", "pseudonymize", "redact", "suppress", "generalize", "keep")
REPORT_SCHEMA_VERSION = 1
REDACTED = "[REDACTED]"

CONFIG_SPEC = Spec(
    "map",
    fields={
        "columns": Spec("dict", default={}, values=Spec("str", choices=ACTIONS)),
        "default_action": Spec("str", default="auto", choices=ACTIONS),
        "free_text": Spec("str", default="pseudonymize", choices=("pseudonymize", "redact")),
        "quasi_identifiers": Spec("dict", default={}, values=Spec("str", choices=GENERALIZATIONS)),
        "sensitive": Spec("str", nullable=True),
        "k": Spec("int", default=1, ge=1),
        "l": Spec("int", default=1, ge=1),
        "method": Spec("str", default="mondrian", choices=("mondrian", "generalize")),
        "max_suppression": Spec("float", default=0.05, ge=0, le=1),
        "keep_email_domain": Spec("bool", default=False),
        "pseudonym_hex": Spec("int", default=16, ge=8, le=64),
        "sample": Spec("int", default=1000, ge=10),
        "input": Spec(
            "map",
            fields={
                "format": Spec("str", nullable=True, choices=("csv", "parquet")),
                "encoding": Spec("str", default="utf-8"),
            },
        ),
        "key": Spec(
            "map",
            nullable=True,
            fields={"file": Spec("str", nullable=True), "env": Spec("str", nullable=True)},
        ),
        "policy": Spec(
            "map",
            nullable=True,
            fields={"min_k": Spec("int", nullable=True, ge=1), "min_l": Spec("int", nullable=True, ge=1)},
        ),
    },
)


@dataclass(frozen=True)
class AnonymizeConfig:
    """A validated anonymisation config; ``lines`` remembers where each column name was written, so an unknown
    column is reported at its line."""

    columns: Mapping[str, str]
    default_action: str = "auto"
    free_text: str = "pseudonymize"
    quasi_identifiers: Mapping[str, str] | None = None
    sensitive: str | None = None
    k: int = 1
    l: int = 1  # noqa: E741
    method: str = "mondrian"
    max_suppression: float = 0.05
    keep_email_domain: bool = False
    pseudonym_hex: int = 16
    sample: int = 1000
    input_format: str | None = None
    encoding: str = "utf-8"
    key_file: str | None = None
    key_env: str | None = None
    min_k: int | None = None
    min_l: int | None = None
    path: str | None = None
    lines: Mapping[str, int | None] | None = None

    def config_relative(self, name: str) -> Path:
        """``name`` resolved against the config file's directory (as given when it is absolute)."""
        p = Path(name)
        return p if p.is_absolute() or self.path is None else Path(self.path).parent / p


def parse_anonymize_config(text: str, *, path: str | Path | None = None) -> AnonymizeConfig:
    """Parse and validate config text; problems are :class:`ConfigError` naming the key and line."""
    doc = load_yaml(text, path=path)
    data = validate(doc if doc is not None else {}, CONFIG_SPEC, path=path)
    lines: dict[str, int | None] = {}
    if hasattr(doc, "get"):
        for section in ("columns", "quasi_identifiers"):
            node = doc.get(section)
            if hasattr(node, "keys"):
                for name in node:
                    lines[f"{section}.{name}"] = line_of(node, name)
        if "sensitive" in doc:
            lines["sensitive"] = line_of(doc, "sensitive")
    if data["l"] > 1 and not data["sensitive"]:
        raise ConfigError(
            "`l` > 1 needs `sensitive`", path=path, key="l", line=lines.get("l") or line_of(doc, "l")
        )
    key = data["key"] or {}
    policy = data["policy"] or {}
    return AnonymizeConfig(
        columns=dict(data["columns"]),
        default_action=data["default_action"],
        free_text=data["free_text"],
        quasi_identifiers=dict(data["quasi_identifiers"]),
        sensitive=data["sensitive"],
        k=data["k"],
        l=data["l"],
        method=data["method"],
        max_suppression=data["max_suppression"],
        keep_email_domain=data["keep_email_domain"],
        pseudonym_hex=data["pseudonym_hex"],
        sample=data["sample"],
        input_format=data["input"]["format"],
        encoding=data["input"]["encoding"],
        key_file=key.get("file"),
        key_env=key.get("env"),
        min_k=policy.get("min_k"),
        min_l=policy.get("min_l"),
        path=str(path) if path is not None else None,
        lines=lines,
    )


def load_anonymize_config(path: str | Path) -> AnonymizeConfig:
    """Read and validate an anonymisation config file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"cannot read the config: {getattr(exc, 'strerror', None) or exc}", path=p
        ) from None
    return parse_anonymize_config(text, path=p)


@dataclass(frozen=True)
class AnonymizeResult:
    """The anonymised table and the report (a JSON-ready dict with ``schema_version``); ``passed`` is False when
    the config's policy thresholds (``min_k``, ``min_l``) are not met after anonymisation."""

    frame: pd.DataFrame
    report: dict[str, Any]
    metrics: tuple[Metric, ...]
    passed: bool


def _check_columns(frame: pd.DataFrame, config: AnonymizeConfig) -> None:
    lines = config.lines or {}
    for section, names in (
        ("columns", config.columns),
        ("quasi_identifiers", config.quasi_identifiers or {}),
    ):
        for name in names:
            if name not in frame.columns:
                label = "quasi-identifier" if section == "quasi_identifiers" else "column"
                raise ConfigError(
                    f"{label} '{name}' is not a column of the input (columns: {', '.join(map(str, frame.columns))})",
                    path=config.path,
                    key=f"{section}.{name}",
                    line=lines.get(f"{section}.{name}"),
                )
    if config.sensitive is not None and config.sensitive not in frame.columns:
        raise ConfigError(
            f"sensitive attribute '{config.sensitive}' is not a column of the input",
            path=config.path,
            key="sensitive",
            line=lines.get("sensitive"),
        )


def _replace_spans(texts: list[str], spans: list[list[Any]], repl: Any) -> tuple[list[str], dict[str, int]]:
    counts: dict[str, int] = {}
    out = list(texts)
    for i, ss in enumerate(spans):
        if not ss:
            continue
        t = texts[i]
        parts: list[str] = []
        pos = 0
        for sp in ss:
            parts.append(t[pos : sp.start])
            parts.append(repl(sp.entity, t[sp.start : sp.end]))
            pos = sp.end
            counts[sp.entity] = counts.get(sp.entity, 0) + 1
        parts.append(t[pos:])
        out[i] = "".join(parts)
    return out, counts


def _pseudonymize_column(col: pd.Series, entity: str, pseudo: Pseudonymizer) -> pd.Series:
    mask = col.notna()
    codes, uniques = pd.factorize(col[mask].astype(str))
    mapped = np.asarray(pseudo.many(entity, [str(u) for u in uniques]), dtype=object)
    out = col.astype(object).copy()
    out[mask] = mapped[codes]
    return out


def _generalize_alone(col: pd.Series, cls: ColumnClass, name: str, config: AnonymizeConfig) -> pd.Series:
    if cls.entity == "DATE_OF_BIRTH":
        return coarsen_date(col, "year")
    if cls.entity == "POSTCODE":
        return truncate_postcode(col, 2)
    if pd.api.types.is_numeric_dtype(col.dtype):
        return numeric_bands(col, 10)
    raise ConfigError(
        f"column '{name}' cannot be generalised on its own (not a date of birth, postcode or number); "
        "list it under quasi_identifiers",
        path=config.path,
        key=f"columns.{name}",
        line=(config.lines or {}).get(f"columns.{name}"),
    )


def anonymize_frame(
    frame: pd.DataFrame, config: AnonymizeConfig, pseudonymizer: Pseudonymizer | None, *, seed: int = 0
) -> AnonymizeResult:
    """Apply ``config`` to ``frame`` (not modified) and return the new table and its report. ``pseudonymizer`` is
    needed when any column is pseudonymised (explicitly or by ``auto``)."""
    t0 = time.perf_counter()
    _check_columns(frame, config)
    qis = dict(config.quasi_identifiers or {})
    sensitive = config.sensitive
    before = measure(frame, list(qis), sensitive=sensitive, target_k=config.k) if qis else None
    out = frame.copy()
    columns_report: list[dict[str, Any]] = []
    dropped: list[str] = []

    def need_pseudo() -> Pseudonymizer:
        if pseudonymizer is None:
            raise ConfigError(
                "pseudonymisation needs a key (--key-file or --key-env, or `key:` in the config)"
            )
        return pseudonymizer

    for name in frame.columns:
        col = frame[name]
        action = config.columns.get(name, config.default_action)
        cls = classify_column(str(name), col, sample=config.sample, seed=seed)
        entry: dict[str, Any] = {**cls.to_dict(), "action": action, "spans": {}}
        # quasi-identifiers are generalised below and the sensitive attribute is kept: the k / l report is about
        # them; an explicit action other than auto/keep/generalize still applies
        if (name in qis or name == sensitive) and action in ("auto", "keep", "generalize"):
            entry["action"] = "quasi_identifier" if name in qis else "sensitive"
            columns_report.append(entry)
            continue
        if action == "auto":
            if cls.entity is None:
                action = "keep"
            elif cls.entity == FREE_TEXT:
                action = config.free_text
            elif cls.entity in ("DATE_OF_BIRTH", "POSTCODE"):
                action = "generalize"
            else:
                action = "pseudonymize"
            entry["action"] = f"auto:{action}"
        if action == "keep":
            pass
        elif action == "suppress":
            dropped.append(name)
        elif action == "generalize":
            out[name] = _generalize_alone(col, cls, str(name), config)
        elif cls.entity == FREE_TEXT:
            texts = ["" if v is None or v != v else str(v) for v in col.to_numpy(dtype=object)]
            spans = detect_spans(texts)
            if action == "pseudonymize":
                pseudo = need_pseudo()
                new, counts = _replace_spans(texts, spans, pseudo)
            else:
                new, counts = _replace_spans(texts, spans, lambda e, _v: f"<{e}>")
            out[name] = pd.Series(new, index=frame.index, dtype=object).where(col.notna(), None)
            entry["spans"] = dict(sorted(counts.items()))
        elif action == "pseudonymize":
            out[name] = _pseudonymize_column(col, cls.entity or "VALUE", need_pseudo())
        else:  # redact a structured column
            out[name] = pd.Series(REDACTED, index=frame.index, dtype=object).where(col.notna(), None)
        columns_report.append(entry)
    out = out.drop(columns=dropped)
    suppressed = 0
    method = None
    if qis and config.k > 1:
        if config.method == "mondrian":
            work = out.copy()
            for q, kind in qis.items():
                if kind == "date":  # Mondrian cuts dates as years (numeric ranges)
                    work[q] = pd.to_numeric(coarsen_date(work[q], "year"), errors="coerce")
                    if work[q].isna().any():
                        work[q] = work[q].astype(str)
            res = mondrian(work, list(qis), k=config.k, l=config.l, sensitive=sensitive)
        else:
            res = generalize_to_k(out, qis, k=config.k, max_suppression=config.max_suppression)
        out, suppressed, method = res.frame, res.suppressed, res.method
    after = measure(out, list(qis), sensitive=sensitive, target_k=config.k) if qis else None
    metrics = _metrics(before, after, suppressed, len(frame), columns_report)
    failures: list[str] = []
    if after is not None and config.min_k is not None and after.k < config.min_k:
        failures.append(f"k-anonymity {after.k} < min_k {config.min_k}")
    if after is not None and after.l is not None and config.min_l is not None and after.l < config.min_l:
        failures.append(f"l-diversity {after.l} < min_l {config.min_l}")
    report: dict[str, Any] = {
        "schema_version": REPORT_SCHEMA_VERSION,
        "rows_in": len(frame),
        "rows_out": len(out),
        "columns": columns_report,
        "dropped_columns": dropped,
        "quasi_identifiers": qis,
        "sensitive": sensitive,
        "k_target": config.k,
        "l_target": config.l,
        "method": method,
        "suppressed": suppressed,
        "before": before.to_dict() if before else None,
        "after": after.to_dict() if after else None,
        "metrics": [m.to_dict() for m in metrics],
        "policy": {
            "min_k": config.min_k,
            "min_l": config.min_l,
            "passed": not failures,
            "failures": failures,
        },
        "duration_s": round(time.perf_counter() - t0, 3),
    }
    return AnonymizeResult(out, report, metrics, not failures)


def _metrics(
    before: Any, after: Any, suppressed: int, n: int, columns: list[dict[str, Any]]
) -> tuple[Metric, ...]:
    out = [
        Metric(
            "pii_columns",
            float(sum(1 for c in columns if c["entity"] not in (None, FREE_TEXT))),
            n=len(columns),
            unit="columns",
            description="columns classified as holding one PII entity",
        ),
        Metric(
            "suppressed_fraction", suppressed / n if n else 0.0, n=n, higher_is_better=False, unit="fraction"
        ),
    ]
    for label, m in (("before", before), ("after", after)):
        if m is None:
            continue
        suffix = "" if label == "after" else "_before"
        out.append(
            Metric(
                f"k_anonymity{suffix}",
                float(m.k),
                n=m.records,
                higher_is_better=True,
                unit="records",
                description=f"smallest equivalence class over the quasi-identifiers ({label})",
            )
        )
        if m.l is not None:
            out.append(
                Metric(
                    f"l_diversity{suffix}",
                    float(m.l),
                    n=m.records,
                    higher_is_better=True,
                    unit="values",
                    description=f"fewest distinct sensitive values in a class ({label})",
                )
            )
    return tuple(out)
