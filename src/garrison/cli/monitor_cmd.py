"""``garrison monitor drift``: has CURRENT data drifted from REFERENCE data, column by column?

The library calls are :meth:`garrison.monitor.DriftReference.fit` and :func:`garrison.monitor.detect_drift`.
REFERENCE is a data file (CSV, Parquet or ``.npz`` with ``x``) or a reference saved with ``--fit-only``; CURRENT is a
data file with the reference's columns. Exit codes: 0 no column drifted, 1 some did, 2 bad input.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import typer

from garrison.cli.console import info

__all__ = ["register"]

FORMATS = ("text", "json")

monitor_app = typer.Typer(
    name="monitor",
    help="Monitoring of a deployed model's traffic: data drift against a reference.\n\n"
    "Exit codes: 0 no drift, 1 drift, 2 bad input.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@monitor_app.command("drift")
def drift_command(
    reference: Path = typer.Argument(
        ..., help="Reference data (CSV, Parquet, .npz) or a saved reference .npz."
    ),
    current: Path | None = typer.Argument(None, help="Current data with the reference's columns."),
    label: str | None = typer.Option(None, "--label", help="Label column of tabular data (left out)."),
    fmt: str = typer.Option("text", "--format", "-f", help=f"Output format: {'|'.join(FORMATS)}."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Also write the JSON report here."),
    alpha: float = typer.Option(
        0.05, "--alpha", help="False discovery rate across columns (Benjamini-Hochberg)."
    ),
    min_wasserstein: float = typer.Option(
        0.1, "--min-wasserstein", help="Effect needed on numeric columns: Wasserstein-1 / reference std."
    ),
    min_psi: float = typer.Option(0.2, "--min-psi", help="Effect needed on categorical columns: PSI."),
    fit_only: Path | None = typer.Option(
        None, "--fit-only", help="Fit the reference on REFERENCE, save it to this .npz and stop."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the multivariate test's subsample."),
) -> None:
    """Test every column of CURRENT against REFERENCE; a column drifts when its adjusted p-value is at most
    --alpha and its effect size reaches the threshold."""
    from garrison.core.atomic_write import write_atomic
    from garrison.monitor import DriftReference, detect_drift

    if fmt not in FORMATS:
        raise typer.BadParameter(f"must be one of {', '.join(FORMATS)}, got {fmt!r}", param_hint="--format")
    if not 0 < alpha < 1:
        raise typer.BadParameter(f"must be in (0, 1), got {alpha}", param_hint="--alpha")
    if min_wasserstein < 0 or min_psi < 0:
        raise typer.BadParameter(
            "must be >= 0", param_hint="--min-wasserstein" if min_wasserstein < 0 else "--min-psi"
        )
    if fit_only is None and current is None:
        raise typer.BadParameter("give CURRENT data (or --fit-only OUT.npz)", param_hint="CURRENT")
    if fit_only is not None and current is not None:
        raise typer.BadParameter("--fit-only takes no CURRENT data", param_hint="--fit-only")

    if _is_saved_reference(reference):
        if fit_only is not None:
            raise typer.BadParameter("REFERENCE is already a fitted reference", param_hint="--fit-only")
        ref = DriftReference.load(reference)
    else:
        frame, categorical = _read(reference, label)
        ref = DriftReference.fit(frame, categorical=categorical, seed=seed)
    if fit_only is not None:
        ref.save(fit_only)
        info(f"reference of {ref.n_rows} rows, {len(ref.feature_names)} columns written to {fit_only}")
        return
    assert current is not None
    cur, _ = _read(current, label)
    report = detect_drift(ref, cur, alpha=alpha, min_wasserstein=min_wasserstein, min_psi=min_psi, seed=seed)
    payload: dict[str, Any] = report.to_dict() | {"reference": str(reference), "current": str(current)}
    text = json.dumps(payload, indent=2, sort_keys=True, allow_nan=False)
    if output is not None:
        write_atomic(output, text + "\n")
    typer.echo(text if fmt == "json" else _render(report))
    if report.drifted:
        raise typer.Exit(1)


def _is_saved_reference(path: Path) -> bool:
    """A zip whose members include the reference's metadata array (the content decides, not the name)."""
    try:
        with zipfile.ZipFile(path) as zf:
            return "metadata.npy" in zf.namelist()
    except (OSError, zipfile.BadZipFile, ValueError):
        return False


def _read(path: Path, label: str | None) -> tuple[Any, list[str]]:
    """The feature columns of a data file (the label left out) and the names of its categorical columns."""
    from garrison.core.errors import DataError
    from garrison.data import load_dataset

    try:
        dataset = load_dataset(path, label=label)
    except DataError as exc:
        if label is not None or exc.field not in ("label", "y"):
            raise
        return _read_unlabelled(path)
    if dataset.records is not None:
        kinds = {f.name: f.kind.value for f in dataset.schema.features}
        categorical = [n for n, k in kinds.items() if k in ("categorical", "boolean")]
        return dataset.records, categorical
    x = dataset.x.reshape(len(dataset.x), -1)
    return x, []


def _read_unlabelled(path: Path) -> tuple[Any, list[str]]:
    """A data file without a label column: every column is a feature (the loader wants a label)."""
    import warnings

    import numpy as np
    import pandas as pd

    from garrison.core.errors import DataError
    from garrison.data import detect_format

    fmt = detect_format(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if fmt == "npz":
                with path.open("rb") as fh, np.load(fh, allow_pickle=False) as npz:
                    if "x" not in npz.files:
                        raise DataError("array 'x' not found", path=path, field="x")
                    x = np.asarray(npz["x"])
                if x.ndim < 2 or x.dtype.kind not in "biuf" or len(x) == 0:
                    raise DataError(f"expected a numeric array (n, ...), got {x.dtype} {x.shape}", path=path)
                return x.reshape(len(x), -1), []
            frame = pd.read_csv(path, low_memory=False) if fmt == "csv" else pd.read_parquet(path)
    except DataError:
        raise
    except MemoryError:
        raise
    except Exception as exc:  # parsers of untrusted bytes raise anything; all of it means "unreadable"
        raise DataError(f"cannot parse {fmt}: {exc.__class__.__name__}", path=path) from None
    if len(frame) == 0 or frame.shape[1] == 0:
        raise DataError("the dataset has no rows or no columns", path=path)
    frame.columns = [str(c) for c in frame.columns]
    categorical = [
        str(c)
        for c in frame.columns
        if not (pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c]))
    ]
    return frame, categorical


def _render(report: Any) -> str:
    rows = report.columns
    width = max(len(c.name) for c in rows)
    lines = [
        f"{report.n_current} rows against a reference of {report.n_reference}; alpha {report.alpha:g} (BH), "
        f"effect thresholds: wasserstein/std {report.min_wasserstein:g}, psi {report.min_psi:g}",
        f"  {'column':{width}s}  test  statistic  p_adjusted  effect                    drifted",
    ]
    for c in rows:
        effect = f"{c.effect_name}={c.effect:.4g}" if c.effect == c.effect else "n/a"
        p = f"{c.p_adjusted:.3g}" if c.p_adjusted == c.p_adjusted else "n/a"
        stat = f"{c.statistic:.4g}" if c.statistic == c.statistic else "n/a"
        lines.append(
            f"  {c.name:{width}s}  {c.test:4s}  {stat:9s}  {p:10s}  {effect:24s}  {'DRIFT' if c.drifted else '-'}"
        )
    mmd = report.multivariate
    if mmd is not None:
        lines.append(
            f"multivariate (linear MMD, {mmd.n_pairs} pairs): statistic {mmd.statistic:.4g}, p {mmd.p_value:.3g}"
            + (" - the joint distribution differs" if mmd.drifted else "")
        )
    drifted = report.drifted_columns
    lines.append(f"drifted: {', '.join(drifted)}" if drifted else "no column drifted")
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    app.add_typer(monitor_app, name="monitor")
