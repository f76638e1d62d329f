"""``garrison robustness``: the robustness check on one model and one labelled dataset, without a config file."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import typer

from garrison.cli.console import info

__all__ = ["register"]

FORMATS = ("text", "json")
SCHEMA_VERSION = 1


def robustness_command(
    model: Path = typer.Option(
        ..., "--model", "-m", help="Model file (skops, pickle, ONNX, TorchScript...)."
    ),
    data: Path = typer.Option(..., "--data", "-d", help="Labelled test data (CSV, Parquet or .npz)."),
    eps: list[float] = typer.Option(
        ...,
        "--eps",
        help="Attack radius; repeat for a curve (--eps 0.03 --eps 0.1). Tabular data: fraction "
        "of each feature's range.",
    ),
    norm: str = typer.Option("linf", "--norm", help="Threat-model norm: linf|l2."),
    fmt: str = typer.Option("text", "--format", "-f", help=f"Output format: {'|'.join(FORMATS)}."),
    label: str | None = typer.Option(None, "--label", help="Label column of tabular data."),
    n_samples: int = typer.Option(100, "--n-samples", help="Rows evaluated (a seeded sample)."),
    attacks: str = typer.Option(
        "auto", "--attacks", help="auto|full (full adds HopSkipJump on black-box models)."
    ),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
) -> None:
    """Robust accuracy of MODEL on DATA under attacks within each ε, with gradient-masking diagnostics."""
    from garrison.adapters.loading import load_classifier
    from garrison.audit.checks.robustness import RobustnessCheck
    from garrison.audit.context import AuditContext
    from garrison.core.config import ModelConfig
    from garrison.data import load_dataset

    if fmt not in FORMATS:
        raise typer.BadParameter(f"must be one of {', '.join(FORMATS)}, got {fmt!r}", param_hint="--format")
    if norm not in ("linf", "l2"):
        raise typer.BadParameter(f"must be linf or l2, got {norm!r}", param_hint="--norm")
    if attacks not in ("auto", "full"):
        raise typer.BadParameter(f"must be auto or full, got {attacks!r}", param_hint="--attacks")
    if any(not math.isfinite(e) or e < 0 for e in eps):
        raise typer.BadParameter("every ε must be a number >= 0", param_hint="--eps")
    if n_samples < 1:
        raise typer.BadParameter("must be >= 1", param_hint="--n-samples")
    test = load_dataset(data, label=label)
    if test.y is None:
        raise typer.BadParameter(f"{data} has no label column (give --label)", param_hint="--data")
    classifier = load_classifier(
        ModelConfig(name=model.stem, path=str(model)),
        sample_shape=tuple(test.x.shape[1:]),
        codec=test.codec,
        feature_names=test.schema.names(),
    )
    info(
        f"attacking {classifier.name} on {len(test)} rows of {data.name} at ε = {', '.join(f'{e:g}' for e in eps)}"
    )
    check = RobustnessCheck(eps=list(eps), norm=norm, n_samples=n_samples, attacks=attacks)
    result = check.run(AuditContext(model=classifier, test=test, seed=seed))
    payload = _payload(result.to_dict(), model, data)
    if fmt == "json":
        typer.echo(json.dumps(payload, indent=2, sort_keys=True, allow_nan=False))
    else:
        typer.echo(_text(payload))


def _payload(result: dict[str, Any], model: Path, data: Path) -> dict[str, Any]:
    curve = next((f for f in result["figures"] if f["id"] == "robustness-curve"), None)
    classes = next((f for f in result["figures"] if f["id"] == "robustness-classes"), None)
    return {
        "schema_version": SCHEMA_VERSION,
        "model": str(model),
        "data": str(data),
        "status": result["status"],
        "error": result["error"],
        "partial": result["partial"],
        "metrics": {
            m["name"]: {k: m[k] for k in ("value", "n", "ci_low", "ci_high")} for m in result["metrics"]
        },
        "curve": curve["table"] if curve else [],
        "caption": curve["caption"] if curve else "",
        "per_class": classes["table"] if classes else [],
        "findings": [
            {"rule_id": f["rule_id"], "title": f["title"], "message": f["message"]}
            for f in result["findings"]
        ],
    }


def _text(payload: dict[str, Any]) -> str:
    def pct(v: float | None) -> str:
        return "  n/a" if v is None else f"{100 * v:5.1f}%"

    metrics = payload["metrics"]
    clean = metrics.get("clean_accuracy", {})
    lines = [
        f"clean accuracy {pct(clean.get('value'))}  (n={clean.get('n')})",
        "",
        "     eps   robust   95% CI           success",
    ]
    for row in payload["curve"]:
        lines.append(
            f"{row['eps']:8g}   {pct(row['robust_accuracy'])}   [{pct(row['ci_low'])}, {pct(row['ci_high'])}]"
            f"   {pct(row['success_rate'])}"
        )
    median = metrics.get("median_min_perturbation")
    if median is not None:
        value = median["value"]
        lines.append("")
        lines.append(
            f"median minimal perturbation: {'beyond 2 x max eps' if value is None else f'{value:.4g}'}"
        )
    lines.append(payload["caption"])
    for f in payload["findings"]:
        lines.append(f"{f['rule_id']} {f['title']}: {f['message']}")
    if payload["partial"]:
        lines.append("(partial: the time budget ran out)")
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    app.command("robustness")(robustness_command)
