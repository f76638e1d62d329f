"""``garrison init``: write a commented starting ``garrison.yaml``."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from garrison.cli.console import info

__all__ = ["TEMPLATE", "register"]

TEMPLATE = """\
# garrison.yaml: what to audit and what passes. Reference: docs/config.md
version: 1
project: {project}
seed: 0                      # every randomised check derives its seed from this

model:
  # name: my-model           # logical name, stable across retraining (default: file stem)
  path: {model}              # .skops, .onnx; TorchScript/.pt2 need `trusted: true`
  # format: auto             # auto | skops | onnx | torchscript | torch-export | torch | remote
  # factory: "pkg.module:build_model"   # torch: a function returning an nn.Module
  # weights: weights.safetensors        # torch: safetensors or a state_dict (weights_only)
  # trusted: false           # load code-bearing files (TorchScript, .pt2) without a scan
  # url: https://models.internal/v1/predict   # remote: POST {{"inputs": [...]}} -> {{"probabilities": [...]}}
  # headers: {{Authorization: "Bearer ${{MODEL_TOKEN}}"}}   # secrets from the environment, never logged
  # n_classes: 2             # remote models must say

data:
{train}  test: {{path: {test}, label: {label}}}
  # features:                # override the inferred schema
  #   age: {{min: 0, max: 120, immutable: true}}
  #   country: {{categorical: true}}

checks:                      # every installed check runs unless `enabled: false`
  fuzzing: {{budget_s: 300}}
  performance: {{budget_s: 300}}

policy:
  fail_on: high              # an open finding at or above this severity fails the audit
  thresholds:
    performance.accuracy: {{min: 0.8}}
    performance.ece: {{max: 0.1}}
  # required_checks: [fuzzing, performance]   # default: every enabled check

report:
  output: garrison-report
  formats: [json, html, sarif, junit, markdown]
"""


def init_command(
    model: str | None = typer.Option(None, "--model", help="Path to the model file."),
    test: str | None = typer.Option(None, "--test", help="Test data (CSV, Parquet or .npz)."),
    train: str | None = typer.Option(None, "--train", help="Training data (optional)."),
    label: str = typer.Option("label", "--label", help="Label column of CSV/Parquet data."),
    project: str = typer.Option("my-project", "--project", help="Project name."),
    output: Path = typer.Option(Path("garrison.yaml"), "--output", "-o", help="Where to write the config."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
) -> None:
    """Write a commented garrison.yaml. Asks for missing paths only on an interactive terminal."""
    from garrison.core import parse_config
    from garrison.core.errors import ConfigError

    if output.exists() and not force:
        raise ConfigError("file exists; use --force to overwrite", path=output)
    interactive = sys.stdin.isatty()
    if model is None:
        model = typer.prompt("Model file", default="model.skops") if interactive else "model.skops"
    if test is None:
        test = typer.prompt("Test data", default="test.csv") if interactive else "test.csv"
    train_line = (
        f"  train: {{path: {train}, label: {label}}}\n"
        if train
        else "  # train: {path: train.csv, label: label}\n"
    )
    text = TEMPLATE.format(project=project, model=model, test=test, train=train_line, label=label)
    parse_config(text, path=output)  # what we write must be valid
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    info(f"wrote {output}; next: garrison audit --config {output}")


def register(app: typer.Typer) -> None:
    app.command("init")(init_command)
