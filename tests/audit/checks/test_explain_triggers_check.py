"""The `explain` check on image inputs: heat maps, per-class summary, and trigger localisation on data.train."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("captum")

from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

from garrison.adapters import InputSpec, TorchClassifier  # noqa: E402
from garrison.audit.checks.explain import ExplainCheck  # noqa: E402
from garrison.audit.context import AuditContext  # noqa: E402
from garrison.core.results import CheckStatus  # noqa: E402
from garrison.data import load_dataset  # noqa: E402
from garrison.poisoning import poison  # noqa: E402
from garrison.testing.digits import train_digits_cnn  # noqa: E402

pytestmark = pytest.mark.torch
TARGET = 7


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("explain-triggers")
    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]
    x_tr, x_te, y_tr, y_te = train_test_split(x, d.target, test_size=0.3, random_state=1, stratify=d.target)
    p = poison(x_tr, y_tr, kind="badnets", rate=0.1, target=TARGET, seed=1)
    np.savez(root / "poisoned.npz", x=p.x, y=p.y)
    np.savez(root / "clean.npz", x=x_tr, y=y_tr)
    np.savez(root / "test.npz", x=x_te, y=y_te)
    spec = InputSpec((1, 8, 8))
    return {
        "root": root,
        "backdoored": TorchClassifier(train_digits_cnn(p.x, p.y, seed=1), input_spec=spec, name="badnets"),
        "clean": TorchClassifier(train_digits_cnn(x_tr, y_tr, seed=1), input_spec=spec, name="clean"),
    }


def _run(project: dict[str, object], model: str, train: str | None) -> object:
    root = project["root"]
    assert isinstance(root, Path)
    ctx = AuditContext(
        model=project[model],  # type: ignore[arg-type]
        train=load_dataset(root / train) if train else None,
        test=load_dataset(root / "test.npz"),
        seed=0,
    )
    return ExplainCheck(rows=100, stability_rows=10).run(ctx)


def test_the_backdoored_class_is_a_trigger_finding_with_its_region(project: dict[str, object]) -> None:
    result = _run(project, "backdoored", "poisoned.npz")
    assert result.status is CheckStatus.OK, result.error
    found = [f for f in result.findings if f.rule_id == "GAR-XP-005"]
    assert [f.location for f in found] == [f"class {TARGET}"]
    box = next(e.value for e in found[0].evidence if e.key == "box")
    assert box[0] >= 5 and box[1] >= 5  # inside the bottom-right 3x3 corner of the 8x8 image
    figure = next(f for f in result.figures if f.id == "explain-triggers")
    assert figure.svg is not None and "class 7 region" in figure.svg
    assert len(figure.table) == 10


def test_image_reports_carry_heat_maps_and_a_per_class_summary(project: dict[str, object]) -> None:
    result = _run(project, "clean", "clean.npz")
    assert result.status is CheckStatus.OK, result.error
    assert not [f for f in result.findings if f.rule_id == "GAR-XP-005"]
    heat = next(f for f in result.figures if f.id == "explain-heatmaps")
    assert heat.svg is not None and heat.svg.count("<g ") == 2 * len(heat.table)
    kinds = {row["kind"] for row in heat.table}
    assert "representative" in kinds
    summary = next(f for f in result.figures if f.id == "explain-classes")
    assert sum(row["rows"] for row in summary.table) == 100
    assert all(0 <= row["precision"] <= 1 for row in summary.table)


def test_without_training_data_the_trigger_scan_says_why(project: dict[str, object]) -> None:
    result = _run(project, "clean", None)
    notes = [f.caption for f in result.figures if f.id == "explain-note"]
    assert any("needs data.train" in n for n in notes)
