"""A scikit-learn pipeline on the tiny tabular reference data, for the check tests (a uniquely named module: test
directories share one module namespace, so helpers are not imported from ``conftest``)."""

from __future__ import annotations

from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from garrison.adapters import SklearnClassifier
from garrison.testing import TinyTabular


def logistic_pipeline(tiny: TinyTabular, *, handle_unknown: str) -> SklearnClassifier:
    estimator = Pipeline(
        [
            (
                "columns",
                ColumnTransformer(
                    [
                        ("numbers", StandardScaler(), ["age", "income", "hours", "member"]),
                        ("colour", OneHotEncoder(handle_unknown=handle_unknown), ["colour"]),
                    ]
                ),
            ),
            ("classifier", LogisticRegression(max_iter=1000)),
        ]
    )
    estimator.fit(tiny.train.records, tiny.train.y)
    return SklearnClassifier(estimator, codec=tiny.codec, name="logistic")
