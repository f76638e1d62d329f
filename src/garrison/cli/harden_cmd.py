"""``garrison harden``: adversarial training of a config-defined torch model, with a before/after report."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from garrison.cli.console import info
from garrison.cli.torch_project import label_arrays, load_torch_project

if TYPE_CHECKING:
    import numpy as np

    from garrison.adapters.base import Classifier
    from garrison.core.config import GarrisonConfig

__all__ = ["register"]

SCHEMA_VERSION = 1
_METHODS = ("pgd-at", "trades")
_NORMS = ("linf", "l2")
_ATTACKS = ("ensemble", "pgd")
_EVAL_STEPS = 40
_EVAL_RESTARTS = 2
_ATTACK_NAMES = {
    "ensemble": "the default ensemble ({norm}) with gradient-masking diagnostics",
    "pgd": "PGD-{steps} ({norm}, random start, {restarts} restarts; a quick single-attack estimate)",
}


def harden_command(
    config: Path = typer.Option(Path("garrison.yaml"), "--config", "-c", help="The garrison.yaml to read."),
    eps: float = typer.Option(..., "--eps", help="Attack budget ε to train against (and evaluate at)."),
    method: str = typer.Option("pgd-at", "--method", help=f"Training method: {'|'.join(_METHODS)}."),
    norm: str = typer.Option("linf", "--norm", help=f"Norm of the ε-ball: {'|'.join(_NORMS)}."),
    epochs: int = typer.Option(20, "--epochs", help="Most epochs to train (early stopping may end sooner)."),
    batch_size: int = typer.Option(128, "--batch-size", help="Training batch size."),
    lr: float = typer.Option(1e-3, "--lr", help="Adam learning rate (constant)."),
    patience: int = typer.Option(5, "--patience", help="Epochs without a better robust validation accuracy."),
    val_fraction: float = typer.Option(
        0.1,
        "--val-fraction",
        help="Share of the training data held out for early stopping; 0 trains on all of it and keeps the last epoch.",
    ),
    output: Path | None = typer.Option(
        None,
        "--output",
        "-o",
        help="Where to write the new weights (safetensors; default: <weights>-hardened.safetensors).",
    ),
    report: Path | None = typer.Option(
        None, "--report", help="Directory for harden.json and harden.txt (default: report.output)."
    ),
    attack: str = typer.Option(
        "ensemble",
        "--attack",
        help="Before/after evaluation: ensemble (the audit's default attacks, with gradient-masking "
        "diagnostics) or pgd (a quick PGD-40).",
    ),
    eval_samples: int = typer.Option(
        1000, "--eval-samples", help="Test samples the before/after robustness is measured on."
    ),
    time_limit: float | None = typer.Option(
        None, "--time-limit", help="Stop training after this many seconds, keeping the best epoch."
    ),
) -> None:
    """Adversarially train the configured torch model on data.train; write its new weights and a before/after
    robustness report on data.test (clean and PGD accuracy at --eps).

    Exit 0 on success, 2 on a config or input error.
    """
    from garrison.core.atomic_write import write_atomic
    from garrison.core.config import load_config

    _check_choice(method, _METHODS, "--method")
    _check_choice(norm, _NORMS, "--norm")
    _check_choice(attack, _ATTACKS, "--attack")
    for name, value, ok in (
        ("--eps", eps, eps > 0),
        ("--epochs", epochs, epochs >= 1),
        ("--batch-size", batch_size, batch_size >= 1),
        ("--lr", lr, lr > 0),
        ("--patience", patience, patience >= 1),
        ("--val-fraction", val_fraction, 0 <= val_fraction < 1),
        ("--eval-samples", eval_samples, eval_samples >= 1),
        ("--time-limit", time_limit, time_limit is None or time_limit > 0),
    ):
        if not ok:
            raise typer.BadParameter(f"out of range, got {value!r}", param_hint=name)

    cfg = load_config(config, env=dict(os.environ))
    classifier, train, test = load_torch_project(cfg, command="harden", need_test=True)
    module = classifier.torch_module  # type: ignore[attr-defined]
    x_train, y_train = label_arrays(train, classifier.n_classes)
    x_test, y_test = label_arrays(test, classifier.n_classes)
    lower, upper = train.schema.bounds()
    x_eval, y_eval = _eval_subset(x_test, y_test, eval_samples, cfg.seed)

    info(f"before: measuring clean and robust accuracy ({attack}) on {len(x_eval)} test samples ...")
    before = _robustness(classifier, x_eval, y_eval, eps, norm, lower, upper, cfg.seed, attack)

    from garrison.robustness.training import adversarial_training

    def progress(epoch: int, row: dict[str, float]) -> None:
        val = (
            ""
            if row["clean_acc"] != row["clean_acc"]  # nan: no validation split
            else f"val clean {row['clean_acc']:.3f}  val robust {row['robust_val_acc']:.3f}  "
        )
        info(f"  epoch {epoch:>3}  loss {row['loss']:.4f}  {val}({row['seconds']:.1f}s)")

    info(f"training: {method}, ε={eps:g} ({norm}), up to {epochs} epochs on {len(x_train)} samples ...")
    started = time.perf_counter()
    result = adversarial_training(
        module,
        x_train,
        y_train,
        method=method,  # type: ignore[arg-type]
        eps=eps,
        norm=norm,  # type: ignore[arg-type]
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        patience=patience,
        val_fraction=val_fraction,
        seed=cfg.seed,
        lower=lower,
        upper=upper,
        progress=progress,
        deadline=None if time_limit is None else time.monotonic() + time_limit,
    )
    train_s = time.perf_counter() - started
    after = _robustness(classifier, x_eval, y_eval, eps, norm, lower, upper, cfg.seed, attack)

    from safetensors.torch import save

    state = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    blob = save(state, metadata={"garrison": f"harden {method} eps={eps:g} {norm}"})
    weights_path = output if output is not None else _default_output(cfg)
    write_atomic(weights_path, blob)

    doc = {
        "schema_version": SCHEMA_VERSION,
        "model": classifier.name,
        "config": str(config),
        "method": method,
        "norm": norm,
        "eps": eps,
        "seed": cfg.seed,
        "training": {
            "epochs_max": epochs,
            "epochs_run": len(result.history),
            "best_epoch": result.best_epoch,
            "stop_reason": result.stop_reason,
            "seconds": round(train_s, 3),
            "n_train": len(x_train),
            "history": result.history,
        },
        "evaluation": {
            "data": "data.test",
            "n": len(x_eval),
            "attack": _ATTACK_NAMES[attack].format(steps=_EVAL_STEPS, norm=norm, restarts=_EVAL_RESTARTS),
        },
        "before": before,
        "after": after,
        "weights": {"path": str(weights_path), "sha256": hashlib.sha256(blob).hexdigest()},
    }
    report_dir = report if report is not None else cfg.resolve(cfg.report.output)
    table = _table(doc)
    write_atomic(report_dir / "harden.json", json.dumps(doc, indent=2, sort_keys=True) + "\n")
    write_atomic(report_dir / "harden.txt", table)
    typer.echo(table, nl=False)
    info(f"weights: {weights_path}")
    info(f"report:  {report_dir / 'harden.json'}")


def _check_choice(value: str, choices: tuple[str, ...], hint: str) -> None:
    if value not in choices:
        raise typer.BadParameter(f"must be one of {', '.join(choices)}, got {value!r}", param_hint=hint)


def _eval_subset(x: np.ndarray, y: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    import numpy as np

    if len(x) <= n:
        return x, y
    idx = np.sort(np.random.default_rng(seed).choice(len(x), size=n, replace=False))
    return x[idx], y[idx]


def _robustness(
    classifier: Classifier,
    x: np.ndarray,
    y: np.ndarray,
    eps: float,
    norm: str,
    lower: np.ndarray,
    upper: np.ndarray,
    seed: int,
    attack: str,
) -> dict[str, Any]:
    """Clean and robust accuracy at ``eps`` (fractions): the default ensemble with gradient-masking diagnostics
    (``attack="ensemble"``), or a quick PGD."""
    import numpy as np

    if attack == "ensemble":
        from garrison.robustness.evaluate import evaluate_robustness

        ev = evaluate_robustness(
            classifier,
            x,
            y,
            eps=[eps],
            norm=norm,
            lower=lower,
            upper=upper,
            min_perturbation=False,
            seed=seed,
        )  # type: ignore[arg-type]
        masking = ev.masking.suspected if ev.masking is not None else None
        return {
            "clean_acc": ev.clean_accuracy,
            "robust_acc": float(np.mean(ev.robust_correct[0])) if ev.n else float("nan"),
            "gradient_masking_suspected": masking,
            "notes": list(ev.notes),
        }
    from garrison.adapters.base import predict
    from garrison.robustness import PGD, ThreatModel, robust_accuracy

    threat = ThreatModel(norm, eps, lower, upper)  # type: ignore[arg-type]
    result = PGD(steps=_EVAL_STEPS, restarts=_EVAL_RESTARTS).run(classifier, x, y, threat, seed=seed)
    clean = float(np.mean(predict(classifier, x) == y))
    return {"clean_acc": clean, "robust_acc": robust_accuracy(classifier, x, y, result)}


def _default_output(cfg: GarrisonConfig) -> Path:
    assert cfg.model is not None
    if cfg.model.weights:
        weights = cfg.resolve(cfg.model.weights)
        return weights.with_name(f"{weights.stem}-hardened.safetensors")
    return cfg.resolve(f"{cfg.model.name}-hardened.safetensors")


def _table(doc: dict[str, Any]) -> str:
    before, after = doc["before"], doc["after"]
    ev = doc["evaluation"]
    tr = doc["training"]
    lines = [
        f"garrison harden: {doc['model']}  {doc['method']}  ε={doc['eps']:g} ({doc['norm']})",
        f"trained {tr['epochs_run']} epoch(s) in {tr['seconds']:.1f}s; kept epoch {tr['best_epoch']} "
        f"({tr['stop_reason']})",
        f"evaluated on {ev['n']} test samples with {ev['attack']}",
        "",
        f"{'':<16}{'before':>10}{'after':>10}{'change':>10}",
    ]
    for key, label in (("clean_acc", "clean accuracy"), ("robust_acc", "robust accuracy")):
        delta = after[key] - before[key]
        lines.append(f"{label:<16}{before[key]:>10.3f}{after[key]:>10.3f}{delta:>+10.3f}")
    for when, row in (("before", before), ("after", after)):
        if row.get("gradient_masking_suspected"):
            lines.append(f"warning: gradient masking suspected {when} training; see `garrison robustness`")
    return "\n".join(lines) + "\n"


def register(app: typer.Typer) -> None:
    app.command("harden")(harden_command)
