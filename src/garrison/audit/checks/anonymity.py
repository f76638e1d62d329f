"""The ``data`` stage: how identifiable are the records of a table that is meant to be shared?

Measures k-anonymity over the configured quasi-identifiers, distinct l-diversity of a sensitive attribute, and how
many columns still hold one kind of personal data (detected from values and column names, as ``garrison protect
anonymize`` does). The table is the ``path`` option (relative to the config), else the train data file, else the
test data file. Like every check it only measures; a policy threshold such as ``anonymity.k_anonymity >= 5`` or
``anonymity.pii_columns <= 0`` turns a number into a verdict.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import ClassVar

from garrison.audit.context import AuditContext
from garrison.core.errors import InputError
from garrison.core.metrics import Metric
from garrison.core.results import CheckResult, CheckStatus
from garrison.core.schema_spec import Spec
from garrison.core.severity import Stage

__all__ = ["AnonymityCheck"]


class AnonymityCheck:
    """Measure k-anonymity, l-diversity and remaining PII columns of a table."""

    id: ClassVar[str] = "anonymity"
    stage: ClassVar[Stage] = Stage.DATA
    deterministic: ClassVar[bool] = True
    requires: ClassVar[frozenset[str]] = frozenset()
    description: ClassVar[str] = (
        "Anonymity of a table: k-anonymity over the quasi-identifiers, distinct l-diversity of a sensitive "
        "attribute, and the columns that still hold personal data (e-mail, phone, card, IBAN, IP, national ids, "
        "names, dates of birth, postcodes)."
    )
    options: ClassVar[Mapping[str, Spec]] = {
        "path": Spec(
            "str", default=None, doc="table to measure (CSV / Parquet; default: the train, else test data)"
        ),
        "quasi_identifiers": Spec(
            "list",
            default=None,
            items=Spec("str"),
            doc="columns an attacker may know (none: k is not measured)",
        ),
        "sensitive": Spec("str", default=None, doc="sensitive attribute whose l-diversity is measured"),
        "scan_pii": Spec("bool", default=True, doc="classify every column for personal data"),
        "encoding": Spec("str", default="utf-8", doc="CSV encoding"),
    }

    def __init__(
        self,
        *,
        path: str | None = None,
        quasi_identifiers: Sequence[str] | None = None,
        sensitive: str | None = None,
        scan_pii: bool = True,
        encoding: str = "utf-8",
    ) -> None:
        self.path = path
        self.quasi_identifiers = tuple(quasi_identifiers or ())
        self.sensitive = sensitive
        self.scan_pii = scan_pii
        self.encoding = encoding

    def run(self, ctx: AuditContext) -> CheckResult:
        from garrison.protect.kanon import measure
        from garrison.protect.pii import FREE_TEXT, classify_column
        from garrison.protect.table import read_table

        ctx.budget.check()
        path = self._table(ctx)
        if path is None:
            return CheckResult(
                self.id, self.stage, CheckStatus.SKIPPED, reason="no table: set `path` or data"
            )
        start = time.perf_counter()
        try:
            frame = read_table(path, encoding=self.encoding)
            for name in (*self.quasi_identifiers, *([self.sensitive] if self.sensitive else [])):
                if name not in frame.columns:
                    raise InputError(f"'{name}' is not a column of the table", path=path, field=name)
        except InputError as exc:
            return CheckResult(self.id, self.stage, CheckStatus.ERROR, error=str(exc).splitlines()[0])
        n = len(frame)
        metrics = [Metric("records", float(n), n=n, description="records in the table")]
        if self.quasi_identifiers:
            m = measure(frame, list(self.quasi_identifiers), sensitive=self.sensitive)
            metrics.append(
                Metric("k_anonymity", float(m.k), n=n, higher_is_better=True, unit="records",
                       description="smallest equivalence class over the quasi-identifiers")
            )  # fmt: skip
            metrics.append(
                Metric(
                    "classes",
                    float(m.classes),
                    n=n,
                    description="equivalence classes over the quasi-identifiers",
                )
            )
            if m.l is not None:
                metrics.append(
                    Metric("l_diversity", float(m.l), n=n, higher_is_better=True, unit="values",
                           description="fewest distinct sensitive values in an equivalence class")
                )  # fmt: skip
        if self.scan_pii:
            ctx.budget.check()
            skip = {*self.quasi_identifiers, self.sensitive}
            found = [
                c.entity
                for name in frame.columns
                if name not in skip
                for c in [classify_column(str(name), frame[name], seed=ctx.seed)]
                if c.entity not in (None, FREE_TEXT)
                and not all(str(v).startswith(f"{c.entity}_") for v in frame[name].dropna().head(100))
            ]
            metrics.append(
                Metric("pii_columns", float(len(found)), n=len(frame.columns), higher_is_better=False,
                       unit="columns", description="columns holding one kind of personal data (not pseudonymised)")
            )  # fmt: skip
        return CheckResult(
            self.id, self.stage, metrics=tuple(metrics), duration_s=time.perf_counter() - start
        )

    def _table(self, ctx: AuditContext) -> Path | None:
        if self.path is not None:
            return ctx.config.resolve(self.path) if ctx.config is not None else Path(self.path)
        for ds in (ctx.train, ctx.test):
            if ds is not None and ds.path is not None:
                return Path(ds.path)
        return None
