"""The canonical JSON report: writing, reading and validating it against the shipped JSON Schema."""

from __future__ import annotations

import functools
import json
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from garrison.core.audit_report import REPORT_SCHEMA_VERSION, Report
from garrison.core.errors import ReportError
from garrison.report.jsonable import jsonable

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator

__all__ = ["REPORT_SCHEMA_FILE", "load_report_schema", "read_report", "to_json", "validate_report"]

REPORT_SCHEMA_FILE = "report-1.0.schema.json"


def to_json(report: Report) -> str:
    """The canonical JSON text of ``report``: sorted keys, two-space indent, a trailing newline, no NaN."""
    return (
        json.dumps(jsonable(report.to_dict()), sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False)
        + "\n"
    )


def load_report_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the canonical report, as shipped in the package."""
    return json.loads(json.dumps(_schema()))  # a copy: callers may mutate it


@functools.cache
def _schema() -> dict[str, Any]:
    text = (
        resources.files("garrison.report").joinpath("schemas", REPORT_SCHEMA_FILE).read_text(encoding="utf-8")
    )
    return json.loads(text)


@functools.cache
def _validator() -> Draft202012Validator:
    # imported on first validation: with jsonschema's optional format checkers installed (rfc3987-syntax compiles
    # a grammar at import), `import jsonschema` alone takes ~0.8 s, which writing a report must not pay
    from jsonschema import Draft202012Validator

    return Draft202012Validator(_schema())


def validate_report(data: dict[str, Any]) -> None:
    """Check plain report data against the schema; a :class:`ReportError` names the first problem's JSON path."""
    errors = list(_validator().iter_errors(data))
    if not errors:
        return
    from jsonschema.exceptions import best_match

    first = best_match(errors)
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    raise ReportError(f"{first.json_path}: {first.message}{more}")


def read_report(path: str | Path) -> Report:
    """Read and validate a JSON report file. Invalid JSON, a schema violation or an unknown major version is a
    :class:`ReportError` naming the file."""
    p = Path(path)
    try:
        data = json.loads(p.read_bytes().decode("utf-8"), parse_constant=_refuse_constant)
    except _NonFiniteNumber as exc:
        raise ReportError(f"{p}: not a report: {exc} is not a JSON number (write null)") from None
    except RecursionError:
        raise ReportError(f"{p}: not a report: the JSON is nested too deeply") from None
    except OSError as exc:
        raise ReportError(f"{p}: cannot read report: {exc.strerror or exc.__class__.__name__}") from None
    except UnicodeDecodeError:
        raise ReportError(f"{p}: not a report: the file is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise ReportError(
            f"{p}: not a report: invalid JSON at line {exc.lineno} column {exc.colno}"
        ) from None
    if not isinstance(data, dict):
        raise ReportError(f"{p}: not a report: the top level is not a JSON object")
    version = data.get("schema_version")
    major = REPORT_SCHEMA_VERSION.split(".")[0]
    if not isinstance(version, str) or version.split(".")[0] != major:
        raise ReportError(
            f"{p}: unsupported report schema_version {version!r} (this Garrison reads {major}.x)"
        )
    try:
        validate_report(data)
        return Report.from_dict(data)
    except ReportError as exc:
        raise ReportError(f"{p}: {exc}") from None
    except RecursionError:
        raise ReportError(f"{p}: not a report: the JSON is nested too deeply") from None


class _NonFiniteNumber(Exception):
    pass


def _refuse_constant(name: str) -> Any:
    raise _NonFiniteNumber(name)
