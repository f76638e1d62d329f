"""``garrison data scan``: is a training set sound? Duplicates, leakage, conflicting and wrong labels, poisoned classes.

It runs the audit's ``training`` check on one dataset (``--data``, optionally ``--test`` for leakage and ``--model``
for the representation-based poison detectors), or on the model and data of a ``garrison.yaml`` (``--config``), and
prints its findings. ``--write-clean OUT`` writes the dataset without the suspect rows into the directory OUT, with
the removed rows in ``removed.json`` and a manifest over both (``garrison protect manifest``'s format).

Exit codes: 0 no finding at or above ``--fail-on``, 1 a finding at or above it, 2 usage or input error, 3 the check
errored.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from garrison.cli.console import info

if TYPE_CHECKING:
    from garrison.core.results import CheckResult
    from garrison.data import Dataset

__all__ = ["data_app", "register"]

FORMATS = ("text", "json")
DROP_KINDS = ("poison", "label-issues", "duplicates", "conflicts")
SCHEMA_VERSION = 1

# which finding's `indices` evidence each --drop kind removes
_DROP_RULES = {
    "poison": "GAR-BD-001",
    "label-issues": "GAR-DI-005",
    "duplicates": "GAR-DI-001",
    "conflicts": "GAR-DI-003",
}

data_app = typer.Typer(
    name="data",
    help="Training-data checks: integrity, label issues, poisoned classes.\n\n"
    "Exit codes: 0 clean, 1 a finding at or above --fail-on, 2 bad input, 3 the check errored.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@data_app.command("scan")
def scan_command(
    data: Path | None = typer.Option(
        None, "--data", "-d", help="Labelled training data (CSV, Parquet or .npz with x and y)."
    ),
    test: Path | None = typer.Option(None, "--test", help="Test data, to look for train/test leakage."),
    label: str | None = typer.Option(None, "--label", help="Label column of tabular data."),
    model: Path | None = typer.Option(
        None,
        "--model",
        "-m",
        help="Model file for representation-based detection (torch: use --config with a factory).",
    ),
    config: Path | None = typer.Option(
        None, "--config", "-c", help="A garrison.yaml: its model, data and `checks.training` options."
    ),
    method: str = typer.Option(
        "auto", "--method", help="Poison detector: auto|spectral-clustering|knn (auto: by model kind)."
    ),
    layer: str | None = typer.Option(
        None, "--layer", help="Torch submodule whose output is the representation (default: penultimate)."
    ),
    label_issues: bool = typer.Option(True, "--label-issues/--no-label-issues", help="Run cleanlab."),
    fmt: str = typer.Option("text", "--format", "-f", help=f"Output format: {'|'.join(FORMATS)}."),
    write_clean: Path | None = typer.Option(
        None,
        "--write-clean",
        help="Directory to write the dataset without the rows --drop names, removed.json and a manifest.",
    ),
    drop: str = typer.Option(
        "poison", "--drop", help=f"What --write-clean removes, comma-separated: {','.join(DROP_KINDS)}."
    ),
    private_key: Path | None = typer.Option(
        None, "--private-key", help="Sign the --write-clean manifest with this PEM private key."
    ),
    fail_on: str = typer.Option("high", "--fail-on", help="Exit 1 at a finding of this severity or above."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    force: bool = typer.Option(False, "--force", help="Write into a non-empty --write-clean directory."),
) -> None:
    """Duplicates, train/test leakage, conflicting labels, class imbalance, label issues and poisoned classes in
    the training data."""
    from garrison.core.audit_report import ExitCode
    from garrison.core.errors import InputError
    from garrison.core.results import CheckStatus
    from garrison.core.severity import Severity

    if fmt not in FORMATS:
        raise typer.BadParameter(f"must be one of {', '.join(FORMATS)}, got {fmt!r}", param_hint="--format")
    if method not in ("auto", "spectral-clustering", "knn"):
        raise typer.BadParameter("must be auto, spectral-clustering or knn", param_hint="--method")
    kinds = [k.strip() for k in drop.split(",") if k.strip()]
    if not kinds or any(k not in DROP_KINDS for k in kinds):
        raise typer.BadParameter(
            f"must name some of {', '.join(DROP_KINDS)}, got {drop!r}", param_hint="--drop"
        )
    try:
        threshold = Severity(fail_on)
    except ValueError:
        raise typer.BadParameter(
            f"must be one of {', '.join(s.value for s in Severity)}", param_hint="--fail-on"
        ) from None
    if data is None and config is None:
        raise typer.BadParameter("give --data (or --config)", param_hint="--data")
    if write_clean is not None and write_clean.exists() and any(write_clean.iterdir()) and not force:
        raise InputError("is not empty (use --force to write into it)", path=write_clean)
    options = {"method": method, "layer": layer, "label_issues": label_issues, "backdoor_scan": False}
    result, train = _run(data, test, label, model, config, options, seed)
    payload = _payload(result, data or config)
    if write_clean is not None:
        if train is None:
            raise InputError("--write-clean needs the training data to load", path=data or config)
        payload["clean"] = _write_clean(train, result, write_clean, kinds, private_key)
        info(
            f"wrote {payload['clean']['rows']} rows ({len(payload['clean']['removed'])} removed) to "
            f"{write_clean} with a manifest"
        )
    if fmt == "json":
        typer.echo(json.dumps(payload, indent=2, sort_keys=True, allow_nan=False))
    else:
        typer.echo(_text(payload))
    if result.status is CheckStatus.ERROR:
        raise typer.Exit(int(ExitCode.INCOMPLETE))
    if any(f.severity >= threshold for f in result.findings):
        raise typer.Exit(int(ExitCode.FAILED))


def _run(
    data: Path | None,
    test: Path | None,
    label: str | None,
    model: Path | None,
    config: Path | None,
    options: dict[str, Any],
    seed: int,
) -> tuple[CheckResult, Dataset | None]:
    from garrison.audit.checks.training import TrainingCheck
    from garrison.audit.context import AuditContext
    from garrison.core.config import DataSourceConfig, ModelConfig
    from garrison.core.errors import InputError
    from garrison.data import load_datasets

    if config is not None:
        from garrison.adapters.loading import load_classifier
        from garrison.core import load_config

        cfg = load_config(config, env=dict(os.environ))
        sources = {r: s for r, s in (("train", cfg.data.train), ("test", cfg.data.test)) if s is not None}
        if data is not None:
            sources["train"] = DataSourceConfig(path=str(data.resolve()), label=label)
        if test is not None:
            sources["test"] = DataSourceConfig(path=str(test.resolve()), label=label)
        if "train" not in sources:
            raise InputError("needs `data.train` in the config or --data", path=config)
        datasets = load_datasets(sources, base_dir=cfg.base_dir, overrides=cfg.data.features)
        train = datasets["train"]
        classifier = None
        if cfg.model is not None:
            classifier = load_classifier(
                cfg.model,
                base_dir=cfg.base_dir,
                sample_shape=tuple(train.x.shape[1:]),
                codec=train.codec,
                feature_names=train.schema.names(),
            )
        from garrison.core.schema_spec import Spec, validate

        section = cfg.checks.get(TrainingCheck.id)
        configured = {}
        if section is not None:
            spec = Spec("map", fields=dict(TrainingCheck.options))
            configured = validate(
                dict(section.options), spec, path=cfg.source, key="checks.training", line=section.line
            )
        check = TrainingCheck(**{**configured, **_explicit(options)})
        ctx = AuditContext(model=classifier, train=train, test=datasets.get("test"), seed=seed, config=cfg)
    else:
        assert data is not None
        sources = {"train": DataSourceConfig(path=str(data), label=label)}
        if test is not None:
            sources["test"] = DataSourceConfig(path=str(test), label=label)
        datasets = load_datasets(sources)
        train = datasets["train"]
        classifier = None
        if model is not None:
            from garrison.adapters.loading import load_classifier

            classifier = load_classifier(
                ModelConfig(name=model.stem, path=str(model)),
                sample_shape=tuple(train.x.shape[1:]),
                codec=train.codec,
                feature_names=train.schema.names(),
            )
        check = TrainingCheck(**options)
        ctx = AuditContext(model=classifier, train=train, test=datasets.get("test"), seed=seed)
    if train.y is None:
        raise InputError(
            "the training data has no labels (give --label for CSV or Parquet)", path=data or config
        )
    info(
        f"scanning {len(train)} training rows of {train.name}"
        + (f" with {classifier.name}" if classifier else "")
    )
    return check.run(ctx), train


def _explicit(options: dict[str, Any]) -> dict[str, Any]:
    """Command-line options that differ from the defaults (so a config's `checks.training` keeps the rest)."""
    defaults = {"method": "auto", "layer": None, "label_issues": True}
    return {k: v for k, v in options.items() if k not in defaults or v != defaults[k]}


def _payload(result: CheckResult, source: Path | None) -> dict[str, Any]:
    data = result.to_dict()
    return {
        "schema_version": SCHEMA_VERSION,
        "data": str(source),
        "status": data["status"],
        "error": data["error"],
        "reason": data["reason"],
        "metrics": {m["name"]: m["value"] for m in data["metrics"]},
        "findings": data["findings"],
        "tables": {f["id"]: f["table"] for f in data["figures"] if f["table"]},
        "notes": [f["caption"] for f in data["figures"] if f["id"] == "training-note"],
    }


def _text(payload: dict[str, Any]) -> str:
    lines = []
    if payload["status"] != "ok":
        lines.append(f"status: {payload['status']} ({payload['error'] or payload['reason']})")
    for name, value in sorted(payload["metrics"].items()):
        lines.append(f"{name:28s} {value:g}" if isinstance(value, int | float) else f"{name:28s} {value}")
    if payload["findings"]:
        lines.append("")
    for f in payload["findings"]:
        lines.append(f"[{f['severity']}] {f['rule_id']} {f['title']}: {f['message']}")
        indices = next((e["value"] for e in f["evidence"] if e["key"] == "indices"), None)
        if indices:
            shown = ", ".join(str(i) for i in indices[:20])
            lines.append(f"    rows: {shown}{' …' if len(indices) > 20 else ''}")
    if not payload["findings"]:
        lines.append("no findings")
    lines.extend(f"note: {note}" for note in payload["notes"])
    return "\n".join(lines)


def _write_clean(
    train: Dataset, result: CheckResult, out: Path, kinds: list[str], private_key: Path | None
) -> dict[str, Any]:
    """Write the training set without the rows of the findings ``kinds`` names, removed.json, and a manifest."""
    import numpy as np

    from garrison.core.atomic_write import write_atomic
    from garrison.supplychain.manifest import write_manifest

    removed: set[int] = set()
    for finding in result.findings:
        if finding.rule_id in {_DROP_RULES[k] for k in kinds}:
            for ev in finding.evidence:
                if ev.key == "indices":
                    removed.update(int(i) for i in ev.value)
    keep = np.setdiff1d(np.arange(len(train)), np.fromiter(removed, dtype=np.int64, count=len(removed)))
    out.mkdir(parents=True, exist_ok=True)
    source = Path(train.path) if train.path is not None else Path(f"{train.name}.npz")
    target = out / source.name
    if train.records is not None:
        frame = train.records.iloc[keep].copy()
        if train.label is not None and train.y is not None:
            frame[train.label] = np.asarray(train.y)[keep]
        buffer = io.BytesIO()
        if source.suffix.lower() in (".parquet", ".pq"):
            frame.to_parquet(buffer, index=False)
        else:
            target = target.with_suffix(".csv")
            buffer.write(frame.to_csv(index=False).encode())
        write_atomic(target, buffer.getvalue())
    else:
        buffer = io.BytesIO()
        np.savez_compressed(buffer, x=np.asarray(train.x)[keep], y=np.asarray(train.y)[keep])
        target = target.with_suffix(".npz")
        write_atomic(target, buffer.getvalue())
    record = {"source": str(source), "dropped": kinds, "removed": sorted(removed), "rows": len(keep)}
    write_atomic(out / "removed.json", json.dumps(record, indent=2) + "\n")
    manifest = write_manifest(out, private_key=private_key)
    return {**record, "path": str(target), "manifest": str(manifest)}


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
