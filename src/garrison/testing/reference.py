"""Tiny reference data, a fitted model and a context builder: all a check author needs to test a check."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from garrison.adapters.base import Classifier
from garrison.audit.budget import Budget
from garrison.audit.context import AuditContext
from garrison.audit.progress import NullProgress, Progress
from garrison.data import Dataset, FeatureCodec, infer_schema

__all__ = ["TinyTabular", "make_context", "tiny_tabular_dataset"]

_CLASSES = ("high", "low", "medium")
_COLOURS = ("blue", "green", "red")


@dataclass(frozen=True)
class TinyTabular:
    """A small three-class tabular problem: train and test sets and a scikit-learn pipeline fitted on train.

    Features: ``age`` (integer), ``income`` and ``hours`` (numeric), ``colour`` (categorical), ``member``
    (boolean); labels ``high``, ``low``, ``medium``. ``estimator`` is the fitted pipeline, ``model`` the same
    pipeline as a Garrison :class:`Classifier` on codec-space arrays.
    """

    train: Dataset
    test: Dataset
    model: Classifier
    estimator: Any
    codec: FeatureCodec


def _records(rng: np.random.Generator, n: int) -> tuple[pd.DataFrame, np.ndarray]:
    age = rng.integers(18, 80, n)
    income = np.round(rng.lognormal(10.0, 0.5, n), 2)
    hours = np.round(rng.uniform(0.0, 60.0, n), 1)
    colour = rng.choice(_COLOURS, n)
    member = rng.random(n) < 0.4
    score = (
        (age - 48) / 18
        + (np.log(income) - 10.0) / 0.5
        - (hours - 30) / 20
        + np.where(colour == "red", 1.0, 0.0)
        + np.where(member, -0.8, 0.0)
        + rng.normal(0.0, 0.5, n)
    )
    label = np.where(score > 0.7, "high", np.where(score < -0.7, "low", "medium")).astype(object)
    frame = pd.DataFrame(
        {
            "age": age.astype(np.int64),
            "income": income,
            "hours": hours,
            "colour": pd.array(colour.astype(object), dtype=object),
            "member": member,
        }
    )
    return frame, label


def tiny_tabular_dataset(seed: int = 0, *, n_train: int = 160, n_test: int = 80) -> TinyTabular:
    """Build the reference problem from ``seed`` (fresh arrays every call; fitting takes milliseconds)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from garrison.adapters.sklearn_model import SklearnClassifier

    rng = np.random.default_rng(seed)
    train_df, train_y = _records(rng, n_train)
    test_df, test_y = _records(rng, n_test)
    schema = infer_schema(train_df, test_df)
    codec = FeatureCodec(schema)
    estimator = Pipeline(
        [
            (
                "columns",
                ColumnTransformer(
                    [
                        ("numbers", StandardScaler(), ["age", "income", "hours", "member"]),
                        ("colour", OneHotEncoder(handle_unknown="ignore"), ["colour"]),
                    ]
                ),
            ),
            ("classifier", LogisticRegression(max_iter=1000)),
        ]
    )
    estimator.fit(train_df, train_y)
    model = SklearnClassifier(estimator, codec=codec, name="tiny-logistic-regression")
    train = Dataset("tiny-train", codec.encode(train_df), train_y, schema, codec=codec, records=train_df)
    test = Dataset("tiny-test", codec.encode(test_df), test_y, schema, codec=codec, records=test_df)
    return TinyTabular(train=train, test=test, model=model, estimator=estimator, codec=codec)


def make_context(
    model: Classifier | None = None,
    test: Dataset | None = None,
    train: Dataset | None = None,
    *,
    artifacts: Sequence[Path] = (),
    seed: int = 0,
    budget_s: float | None = None,
    progress: Progress | None = None,
) -> AuditContext:
    """An :class:`AuditContext` for a check under test.

    With neither ``model`` nor ``test`` given, the tiny reference problem of :func:`tiny_tabular_dataset` fills
    ``model``, ``test`` and (unless given) ``train``. ``budget_s`` limits the run (``None``: unlimited).
    """
    if model is None and test is None:
        reference = tiny_tabular_dataset(seed)
        model, test, train = reference.model, reference.test, train or reference.train
    return AuditContext(
        model=model,
        test=test,
        train=train,
        artifacts=tuple(Path(a) for a in artifacts),
        seed=seed,
        budget=Budget(budget_s),
        progress=progress or NullProgress(),
    )
