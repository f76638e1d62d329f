"""The `training` check end to end on a BadNets-poisoned digits CNN and a clean one: data integrity, the poisoned class
in the training set, and the model's backdoor, as findings of the audit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

from garrison.adapters import InputSpec, TorchClassifier  # noqa: E402
from garrison.audit.checks.training import TrainingCheck  # noqa: E402
from garrison.audit.context import AuditContext  # noqa: E402
from garrison.core.results import CheckStatus  # noqa: E402
from garrison.data import load_dataset  # noqa: E402
from garrison.poisoning import poison  # noqa: E402
from garrison.testing.digits import train_digits_cnn  # noqa: E402

TARGET = 0


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("training")
    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]
    x_tr, x_te, y_tr, y_te = train_test_split(x, d.target, test_size=0.3, random_state=0, stratify=d.target)
    # 10 % of the training rows become BadNets poisons of class 0 (rate is a share of the eligible rows)
    n_poison = round(0.1 * len(y_tr))
    poisoned = poison(x_tr, y_tr, kind="badnets", rate=n_poison / np.sum(y_tr != TARGET), target=TARGET,
                      size=2, seed=0)  # fmt: skip
    np.savez(root / "poisoned.npz", x=poisoned.x, y=poisoned.y)
    np.savez(root / "clean.npz", x=x_tr, y=y_tr)
    np.savez(root / "test.npz", x=x_te, y=y_te)
    spec = InputSpec((1, 8, 8))
    return {
        "root": root,
        "truth": set(poisoned.indices.tolist()),
        "backdoored": TorchClassifier(
            train_digits_cnn(poisoned.x, poisoned.y), input_spec=spec, name="badnets"
        ),
        "clean": TorchClassifier(train_digits_cnn(x_tr, y_tr), input_spec=spec, name="clean"),
    }


def _run(project: dict[str, object], model: str, train: str) -> object:
    root = project["root"]
    assert isinstance(root, Path)
    ctx = AuditContext(
        model=project[model],  # type: ignore[arg-type]
        train=load_dataset(root / train),
        test=load_dataset(root / "test.npz"),
        seed=0,
    )
    return TrainingCheck(label_issues=False).run(ctx)


def test_backdoored_model_is_named_by_the_audit(project: dict[str, object]) -> None:
    result = _run(project, "backdoored", "poisoned.npz")
    assert result.status is CheckStatus.OK, result.error
    poisoned = [f for f in result.findings if f.rule_id == "GAR-BD-001"]
    assert [f.location for f in poisoned] == ["class 0"]
    suspects = set(next(e.value for e in poisoned[0].evidence if e.key == "indices"))
    truth = project["truth"]
    assert isinstance(truth, set)
    assert len(suspects & truth) >= 0.9 * len(truth)
    assert len(suspects & truth) >= 0.8 * len(suspects)
    backdoor = [f for f in result.findings if f.rule_id == "GAR-BD-002"]
    assert [f.location for f in backdoor] == ["class 0"]
    assert result.metric("backdoor.flagged_classes").value == 1
    table = next(f for f in result.figures if f.id == "training-backdoor")
    assert len(table.table) == 10


def test_clean_model_and_data_raise_no_backdoor_or_poison_finding(project: dict[str, object]) -> None:
    result = _run(project, "clean", "clean.npz")
    assert result.status is CheckStatus.OK, result.error
    assert not [f for f in result.findings if f.rule_id.startswith("GAR-BD")]
    assert result.metric("backdoor.flagged_classes").value == 0
    assert result.metric("poison.suspect_rows").value == 0


def test_backdoor_scan_explains_why_it_did_not_run(project: dict[str, object]) -> None:
    root = project["root"]
    assert isinstance(root, Path)
    flat = load_dataset(root / "clean.npz")
    ctx = AuditContext(train=flat, test=load_dataset(root / "test.npz"), seed=0)
    result = TrainingCheck(label_issues=False, poison_scan=False).run(ctx)
    notes = [f.caption for f in result.figures if f.id == "training-note"]
    assert any("needs a torch model" in n for n in notes)
    skipped = TrainingCheck().run(AuditContext(test=load_dataset(root / "test.npz")))
    assert skipped.status is CheckStatus.SKIPPED
