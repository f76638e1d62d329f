"""The `training` check with a scikit-learn model: label issues come from the audited estimator, refitted out of
fold; the poison scan uses the k-NN method; the backdoor scan says why it did not run."""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_wine
from sklearn.ensemble import RandomForestClassifier

from garrison.adapters import SklearnClassifier
from garrison.audit.checks.training import TrainingCheck
from garrison.audit.context import AuditContext
from garrison.core.results import CheckStatus
from garrison.data import Dataset
from garrison.data.schema import infer_array_schema
from garrison.poisoning import flip_labels


def _dataset(x: np.ndarray, y: np.ndarray) -> Dataset:
    return Dataset(name="train", x=x, y=y, schema=infer_array_schema(x))


def test_label_issues_come_from_the_audited_estimator() -> None:
    x, y = load_wine(return_X_y=True)
    noisy, flipped = flip_labels(y, rate=0.1, seed=1)
    forest = RandomForestClassifier(n_estimators=50, random_state=0).fit(x, noisy)
    ctx = AuditContext(model=SklearnClassifier(forest), train=_dataset(x, noisy), seed=0)
    result = TrainingCheck().run(ctx)
    assert result.status is CheckStatus.OK
    issues = next(f for f in result.findings if f.rule_id == "GAR-DI-005")
    assert "audited estimator" in issues.message
    found = set(next(e.value for e in issues.evidence if e.key == "indices"))
    assert len(found & set(flipped.tolist())) >= 0.7 * len(flipped)
    scan = next(f for f in result.figures if f.id == "training-poison")
    assert "knn" in scan.title
    notes = [f.caption for f in result.figures if f.id == "training-note"]
    assert any("needs a torch model" in n for n in notes)


def test_missing_values_skip_the_integrity_part_with_a_note_instead_of_failing_the_audit() -> None:
    x, y = load_wine(return_X_y=True)
    x = x.copy()
    x[3, 2] = np.nan
    result = TrainingCheck(poison_scan=False).run(AuditContext(train=_dataset(x, y), seed=0))
    assert result.status is CheckStatus.OK
    notes = [f.caption for f in result.figures if f.id == "training-note"]
    assert any(n.startswith("data integrity skipped") and "NaN" in n for n in notes)
