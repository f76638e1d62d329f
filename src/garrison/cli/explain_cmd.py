"""``garrison explain``: which features drive a model's predictions — global importance and per-row attributions.

The library call is :func:`garrison.explain.attributions` (SHAP for scikit-learn trees and linear models, Captum
for torch, SHAP's budgeted permutation explainer for everything else). Exit codes: 0 done, 2 bad input.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from garrison.cli.console import info

if TYPE_CHECKING:
    from garrison.adapters.base import Classifier
    from garrison.data import Dataset

__all__ = ["register"]

FORMATS = ("text", "json")
SCHEMA_VERSION = 1


def explain_command(
    model: Path | None = typer.Option(
        None, "--model", "-m", help="Model file (skops, ONNX, TorchScript...)."
    ),
    data: Path | None = typer.Option(None, "--data", "-d", help="Rows to explain (CSV, Parquet or .npz)."),
    config: Path | None = typer.Option(
        None, "--config", "-c", help="A garrison.yaml: its model and data.test (instead of --model/--data)."
    ),
    label: str | None = typer.Option(None, "--label", help="Label column of tabular data (left out of x)."),
    rows: int = typer.Option(100, "--rows", help="Rows explained (a seeded sample)."),
    method: str = typer.Option(
        "auto", "--method", help="auto|tree|linear|permutation|integrated-gradients|..."
    ),
    top: int = typer.Option(10, "--top", help="Features listed in the global importance."),
    fmt: str = typer.Option("text", "--format", "-f", help=f"Output format: {'|'.join(FORMATS)}."),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Also write the JSON (with per-row values) here."
    ),
    budget_s: float | None = typer.Option(
        None, "--budget-s", help="Time budget of the permutation explainer."
    ),
    seed: int = typer.Option(0, "--seed", help="Random seed (row sample, background, permutations)."),
) -> None:
    """Global feature importance and per-row attributions of MODEL on DATA."""
    import numpy as np

    from garrison.core.atomic_write import write_atomic
    from garrison.explain import METHODS, Explainer

    if fmt not in FORMATS:
        raise typer.BadParameter(f"must be one of {', '.join(FORMATS)}, got {fmt!r}", param_hint="--format")
    if method not in METHODS:
        raise typer.BadParameter(
            f"must be one of {', '.join(METHODS)}, got {method!r}", param_hint="--method"
        )
    if rows < 1 or top < 1:
        raise typer.BadParameter("must be >= 1", param_hint="--rows" if rows < 1 else "--top")
    classifier, dataset = _load(model, data, config, label)
    rng = np.random.default_rng(seed)
    x = np.asarray(dataset.x)
    picked = np.sort(rng.choice(len(x), size=min(rows, len(x)), replace=False))
    info(f"explaining {len(picked)} rows of {dataset.name} with {classifier.name}")
    explainer = Explainer(classifier, background=x, method=method, budget_s=budget_s, seed=seed)
    result = explainer.explain(x[picked])
    names = list(result.feature_names or dataset.schema.names())
    importance = result.global_importance()
    order = np.argsort(-importance, kind="stable")[:top]
    payload: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "model": classifier.name,
        "data": dataset.name,
        "method": result.method,
        "output": result.output,
        "notes": list(result.notes),
        "rows": [int(i) for i in picked],
        "global_importance": [{"feature": names[j], "importance": float(importance[j])} for j in order],
    }
    if output is not None:
        write_atomic(
            output, json.dumps({**payload, "attributions": result.to_dict()}, indent=2, allow_nan=False)
        )
    if fmt == "json":
        typer.echo(json.dumps(payload, indent=2, sort_keys=True, allow_nan=False))
        return
    width = max(len(n) for n in (names[j] for j in order))
    lines = [f"{result.method} ({result.output}), {len(picked)} rows; mean |attribution|:"]
    peak = float(importance[order[0]]) or 1.0
    for j in order:
        bar = "#" * round(30 * float(importance[j]) / peak)
        lines.append(f"  {names[j]:{width}s}  {importance[j]:<10.4g} {bar}")
    lines.extend(f"note: {n}" for n in result.notes)
    typer.echo("\n".join(lines))


def _load(
    model: Path | None, data: Path | None, config: Path | None, label: str | None
) -> tuple[Classifier, Dataset]:
    from garrison.adapters.loading import load_classifier
    from garrison.core.config import DataSourceConfig, ModelConfig
    from garrison.data import load_dataset, load_datasets

    if config is not None:
        from garrison.core import load_config

        cfg = load_config(config, env=dict(os.environ))
        if cfg.model is None or cfg.data.test is None:
            raise typer.BadParameter("the config needs `model` and `data.test`", param_hint="--config")
        sources = {r: s for r, s in (("train", cfg.data.train), ("test", cfg.data.test)) if s is not None}
        if data is not None:
            sources["test"] = DataSourceConfig(path=str(data.resolve()), label=label)
        dataset = load_datasets(sources, base_dir=cfg.base_dir, overrides=cfg.data.features)["test"]
        model_config = cfg.model
        base_dir = cfg.base_dir
    else:
        if model is None or data is None:
            raise typer.BadParameter("give --model and --data (or --config)", param_hint="--model")
        dataset = load_dataset(data, label=label)
        model_config = ModelConfig(name=model.stem, path=str(model))
        base_dir = Path()
    classifier = load_classifier(
        model_config,
        base_dir=base_dir,
        sample_shape=tuple(dataset.x.shape[1:]),
        codec=dataset.codec,
        feature_names=dataset.schema.names(),
    )
    return classifier, dataset


def register(app: typer.Typer) -> None:
    app.command("explain")(explain_command)
