from __future__ import annotations

import numpy as np
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OrdinalEncoder
from threadpoolctl import threadpool_limits

from garrison.adapters import SklearnClassifier
from garrison.data import Dataset, infer_array_schema
from garrison.testing import TinyTabular, tiny_tabular_dataset


@pytest.fixture(scope="module")
def tiny() -> TinyTabular:
    """Tabular reference data (integer, numeric, categorical and boolean columns) with a fitted LR pipeline."""
    return tiny_tabular_dataset(seed=7)


@pytest.fixture(scope="module")
def hist_gradient_boosting(tiny: TinyTabular) -> SklearnClassifier:
    estimator = Pipeline(
        [
            (
                "columns",
                ColumnTransformer(
                    [
                        (
                            "colour",
                            OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1),
                            ["colour"],
                        )
                    ],
                    remainder="passthrough",
                ),
            ),
            ("classifier", HistGradientBoostingClassifier(max_iter=20, random_state=0)),
        ]
    )
    with threadpool_limits(limits=1, user_api="openmp"):
        estimator.fit(tiny.train.records, tiny.train.y)
    return SklearnClassifier(estimator, codec=tiny.codec, name="hgb")


@pytest.fixture
def numbers() -> Dataset:
    """Plain numeric array data: 4 features, 3 classes, bounds observed from the data."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(40, 4))
    y = np.argmax(x[:, :3], axis=1)
    return Dataset("numbers", x, y, infer_array_schema(x))
