"""``garrison poisoning simulate``: a poisoned copy of a dataset and its ground truth, for red-teaming a pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from garrison.cli.console import info

__all__ = ["poisoning_app", "register"]

poisoning_app = typer.Typer(
    name="poisoning",
    help="Poison generators for red-teaming your own pipeline and testing detectors.\n\n"
    "Exit codes: 0 done, 2 bad input.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@poisoning_app.command("simulate")
def simulate_command(
    data: Path = typer.Option(..., "--data", "-d", help="Labelled array data: an .npz with arrays x and y."),
    kind: str = typer.Option(..., "--kind", help="flip-random | flip-targeted | badnets | blend."),
    rate: float = typer.Option(..., "--rate", help="Share of the eligible rows to poison, in (0, 1)."),
    target: int | None = typer.Option(None, "--target", help="Target class (every kind but flip-random)."),
    output: Path = typer.Option(
        ...,
        "--output",
        "-o",
        help="Poisoned copy (.npz); its ground truth goes beside it as <output>.truth.json.",
    ),
    seed: int = typer.Option(0, "--seed", help="Random seed (which rows, flips and blend pattern)."),
    force: bool = typer.Option(False, "--force", help="Replace existing output files."),
) -> None:
    """Write a poisoned copy of DATA and the ground truth: which rows, how, the trigger."""
    import io

    import numpy as np

    from garrison.core.atomic_write import write_atomic
    from garrison.core.errors import InputError
    from garrison.data import load_dataset
    from garrison.poisoning import KINDS, poison

    if kind not in KINDS:
        raise typer.BadParameter(f"must be one of {', '.join(KINDS)}, got {kind!r}", param_hint="--kind")
    truth_path = output.with_name(output.name + ".truth.json")
    for path in (output, truth_path):
        if path.exists() and not force:
            raise InputError("already exists (use --force to replace it)", path=path)
    dataset = load_dataset(data)
    if dataset.codec is not None or dataset.y is None:
        raise InputError("poisoning simulate needs array data: an .npz with arrays x and y", path=data)
    y = np.asarray(dataset.y)
    if not np.issubdtype(y.dtype, np.integer):
        raise InputError("labels `y` must be integer class indices", path=data)
    try:
        result = poison(dataset.x, y, kind=kind, rate=rate, target=target, seed=seed)
    except ValueError as exc:
        raise InputError(str(exc), path=data) from None
    buffer = io.BytesIO()
    np.savez_compressed(buffer, x=result.x, y=result.y)
    write_atomic(output, buffer.getvalue())
    write_atomic(truth_path, json.dumps({"source": str(data), **result.truth()}, indent=2) + "\n")
    info(
        f"poisoned {len(result.indices)} of {len(result.y)} rows ({kind}) -> {output}; ground truth: {truth_path}"
    )


def register(app: typer.Typer) -> None:
    app.add_typer(poisoning_app, name="poisoning")
