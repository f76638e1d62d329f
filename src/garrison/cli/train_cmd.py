"""``garrison train``: train a config-defined torch model, with differential privacy (``--dp``, DP-SGD over Opacus)
or without, and write its new weights and a JSON record (the privacy ledger under ``--dp``) next to them."""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from garrison.cli.console import info
from garrison.cli.torch_project import label_arrays, load_torch_project

if TYPE_CHECKING:
    import numpy as np

    from garrison.core.config import GarrisonConfig

__all__ = ["register"]

SCHEMA_VERSION = 1
_ACCOUNTANTS = ("prv", "rdp")


def train_command(
    config: Path = typer.Option(Path("garrison.yaml"), "--config", "-c", help="The garrison.yaml to read."),
    dp: bool = typer.Option(False, "--dp/--no-dp", help="Train with differential privacy (DP-SGD, Opacus)."),
    epsilon: float | None = typer.Option(
        None, "--epsilon", help="Privacy budget ε the whole training may spend (required with --dp)."
    ),
    delta: float | None = typer.Option(
        None, "--delta", help="δ (default: the largest power of ten strictly below 1/n_train)."
    ),
    epochs: int = typer.Option(
        10, "--epochs", help="Epochs to train (with --dp, σ is chosen to spend ε over them)."
    ),
    max_grad_norm: float = typer.Option(
        1.0, "--max-grad-norm", help="Per-sample gradient clipping norm C (--dp)."
    ),
    batch_size: int = typer.Option(
        64, "--batch-size", help="Batch size (expected size under --dp's sampling)."
    ),
    lr: float = typer.Option(0.1, "--lr", help="SGD learning rate (momentum 0.9)."),
    accountant: str = typer.Option(
        "prv", "--accountant", help=f"Privacy accountant: {'|'.join(_ACCOUNTANTS)}."
    ),
    output: Path | None = typer.Option(
        None,
        "--output",
        "-o",
        help="Where to write the new weights (safetensors; default: <weights>-dp.safetensors or "
        "<weights>-trained.safetensors). The JSON record goes beside it (same name, .json).",
    ),
) -> None:
    """Train the configured torch model on data.train and write its new weights; with --dp, train with
    (ε, δ)-differential privacy and print and write the privacy ledger (σ, C, sample rate, steps, δ, ε).

    Training starts from the configured weights. Layers Opacus cannot train (BatchNorm) are refused: replace them
    in the factory (GroupNorm), so the new weights load back into it. Exit 0 on success, 2 on a usage, config or
    input error.
    """
    from garrison.core.atomic_write import write_atomic
    from garrison.core.config import load_config

    if accountant not in _ACCOUNTANTS:
        raise typer.BadParameter(
            f"must be one of {', '.join(_ACCOUNTANTS)}, got {accountant!r}", param_hint="--accountant"
        )
    if dp and epsilon is None:
        raise typer.BadParameter("is required with --dp", param_hint="--epsilon")
    for name, value, ok in (
        ("--epsilon", epsilon, epsilon is None or (math.isfinite(epsilon) and epsilon > 0)),
        ("--delta", delta, delta is None or 0 < delta < 1),
        ("--epochs", epochs, epochs >= 1),
        ("--max-grad-norm", max_grad_norm, math.isfinite(max_grad_norm) and max_grad_norm > 0),
        ("--batch-size", batch_size, batch_size >= 1),
        ("--lr", lr, math.isfinite(lr) and lr > 0),
    ):
        if not ok:
            raise typer.BadParameter(f"out of range, got {value!r}", param_hint=name)
    if not dp and (epsilon is not None or delta is not None):
        raise typer.BadParameter("only applies with --dp", param_hint="--epsilon/--delta")

    cfg = load_config(config, env=dict(os.environ))
    classifier, train, test = load_torch_project(cfg, command="train", need_test=False)
    module = classifier.torch_module  # type: ignore[attr-defined]
    x_train, y_train = label_arrays(train, classifier.n_classes)

    def progress(epoch: int, row: dict[str, float]) -> None:
        info(f"  epoch {epoch:>3}  loss {row['loss']:.4f}")

    mode = f"DP-SGD, ε={epsilon:g}" if dp else "SGD (no differential privacy)"
    info(f"training: {mode}, {epochs} epochs on {len(x_train)} samples ...")
    started = time.perf_counter()
    ledger = None
    if dp:
        from garrison.core.errors import ConfigError
        from garrison.privacy.dp import IncompatibleModuleError, train_private

        assert epsilon is not None
        try:
            result = train_private(
                module,
                x_train,
                y_train,
                target_epsilon=epsilon,
                target_delta=delta,
                epochs=epochs,
                batch_size=batch_size,
                lr=lr,
                max_grad_norm=max_grad_norm,
                seed=cfg.seed,
                accountant=accountant,  # type: ignore[arg-type]
                fix_modules=False,  # the weights must load back into the configured factory
                progress=progress,
            )
        except IncompatibleModuleError as exc:
            names = ", ".join(f"{p.name or '<root>'} ({p.layer}: {p.reason})" for p in exc.problems)
            raise ConfigError(
                f"the model has layers differential privacy cannot train: {names}; change them in the factory "
                "(BatchNorm -> GroupNorm or LayerNorm) so the new weights load back into it",
                path=cfg.source,
                key="model.factory",
            ) from exc
        module, history, ledger = result.module, result.history, result.ledger
    else:
        history = _train_plain(module, x_train, y_train, epochs, batch_size, lr, cfg.seed, progress)
    train_s = time.perf_counter() - started

    from safetensors.torch import save

    state = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    note = f"train dp eps={ledger.epsilon:.4g} delta={ledger.delta:g}" if ledger is not None else "train"
    blob = save(state, metadata={"garrison": note})
    weights_path = output if output is not None else _default_output(cfg, dp)
    record_path = weights_path.with_suffix(".json")

    test_acc = None
    if test is not None:
        x_test, y_test = label_arrays(test, classifier.n_classes)
        test_acc = _accuracy(module, x_test, y_test)
    doc: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "model": classifier.name,
        "config": str(config),
        "dp": dp,
        "seed": cfg.seed,
        "privacy": ledger.to_dict() if ledger is not None else None,
        "metrics": [ledger.epsilon_metric().to_dict()] if ledger is not None else [],
        "training": {
            "epochs": epochs,
            "batch_size": batch_size,
            "lr": lr,
            "n_train": len(x_train),
            "seconds": round(train_s, 3),
            "history": history,
        },
        "evaluation": {"data": "data.test", "n": len(test.x), "accuracy": test_acc}
        if test is not None
        else None,
        "weights": {"path": str(weights_path), "sha256": hashlib.sha256(blob).hexdigest()},
    }
    write_atomic(weights_path, blob)
    write_atomic(record_path, json.dumps(doc, indent=2, sort_keys=True) + "\n")
    typer.echo(_table(doc), nl=False)
    info(f"weights: {weights_path}")
    info(f"record:  {record_path}")


def _train_plain(
    module: Any,
    x: np.ndarray,
    y: np.ndarray,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    progress: Any,
) -> list[dict[str, float]]:
    """Ordinary mini-batch SGD (momentum 0.9), shuffled by ``seed``; the caller's torch RNG is left untouched."""
    import torch

    history: list[dict[str, float]] = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)
        opt = torch.optim.SGD(module.parameters(), lr=lr, momentum=0.9)
        module.train()
        for epoch in range(1, epochs + 1):
            order = torch.randperm(len(xt), generator=generator)
            total = 0.0
            for i in range(0, len(xt), batch_size):
                idx = order[i : i + batch_size]
                opt.zero_grad()
                loss = torch.nn.functional.cross_entropy(module(xt[idx]), yt[idx])
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(idx)
            row = {"epoch": float(epoch), "loss": total / len(xt)}
            history.append(row)
            progress(epoch, row)
    module.eval()
    return history


def _accuracy(module: Any, x: np.ndarray, y: np.ndarray) -> float:
    import torch

    module.eval()
    with torch.no_grad():
        pred = module(torch.from_numpy(x)).argmax(dim=1).numpy()
    return float((pred == y).mean()) if len(y) else float("nan")


def _default_output(cfg: GarrisonConfig, dp: bool) -> Path:
    assert cfg.model is not None
    suffix = "dp" if dp else "trained"
    if cfg.model.weights:
        weights = cfg.resolve(cfg.model.weights)
        return weights.with_name(f"{weights.stem}-{suffix}.safetensors")
    return cfg.resolve(f"{cfg.model.name}-{suffix}.safetensors")


def _table(doc: dict[str, Any]) -> str:
    tr = doc["training"]
    lines = [
        f"garrison train: {doc['model']}  {'DP-SGD' if doc['dp'] else 'SGD (no differential privacy)'}",
        f"trained {tr['epochs']} epoch(s) on {tr['n_train']} samples in {tr['seconds']:.1f}s",
    ]
    if doc["evaluation"] is not None:
        ev = doc["evaluation"]
        lines.append(f"test accuracy      {ev['accuracy']:.4f}  (n={ev['n']})")
    p = doc["privacy"]
    if p is not None:
        lines += [
            "",
            "privacy ledger (read from Opacus)",
            f"  epsilon (ε)        {p['epsilon']:.4f}  (target {p['target_epsilon']:g})",
            f"  delta (δ)          {p['delta']:g}",
            f"  noise multiplier σ {p['noise_multiplier']:.4f}",
            f"  max grad norm C    {p['max_grad_norm']:g}",
            f"  sample rate q      {p['sample_rate']:.6f}",
            f"  steps              {p['steps']}",
            f"  accountant         {p['accountant']}",
            f"  secure RNG         {'yes' if p['secure_mode'] else 'no (fine for experiments)'}",
        ]
    return "\n".join(lines) + "\n"


def register(app: typer.Typer) -> None:
    app.command("train")(train_command)
