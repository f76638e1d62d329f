from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from garrison.core import ConfigError, FeatureOverride, InputError
from garrison.data import FeatureKind, FeatureSpec, Schema, infer_array_schema, infer_schema


@pytest.fixture
def schema() -> Schema:
    df = pd.DataFrame(
        {
            "age": [20, 35, 60],
            "income": [1.5, np.nan, 9.0],
            "city": pd.Series(["rome", "oslo", "rome"], dtype="str"),
            "member": [True, False, True],
        }
    )
    return infer_schema(df)


def test_infer_schema_kinds_bounds_and_nullability(schema: Schema) -> None:
    assert schema.names() == ("age", "income", "city", "member")
    assert schema.sample_shape == (4,)
    kinds = [f.kind for f in schema.features]
    assert kinds == [FeatureKind.INTEGER, FeatureKind.NUMERIC, FeatureKind.CATEGORICAL, FeatureKind.BOOLEAN]
    assert (schema.feature("age").min, schema.feature("age").max) == (20.0, 60.0)
    assert schema.feature("income").nullable
    assert not schema.feature("age").nullable
    lower, upper = schema.bounds()
    np.testing.assert_array_equal(lower, [20.0, 1.5, 0.0, 0.0])
    np.testing.assert_array_equal(upper, [60.0, 9.0, 1.0, 1.0])


def test_infer_schema_takes_the_union_of_categories_over_frames() -> None:
    a = pd.DataFrame({"c": ["x", "y"], "n": [1, 2]})
    b = pd.DataFrame({"c": ["z", None], "n": [0.5, 7.0]})
    s = infer_schema(a, b)
    assert s.feature("c").categories == ("x", "y", "z")
    assert s.feature("c").nullable
    assert s.feature("n").kind is FeatureKind.NUMERIC
    assert (s.feature("n").min, s.feature("n").max) == (0.5, 7.0)


def test_unknown_feature_is_an_input_error_naming_it(schema: Schema) -> None:
    with pytest.raises(InputError) as exc:
        schema.feature("nope")
    assert exc.value.field == "nope"


def test_violations_flag_each_way_a_row_can_leave_the_schema(schema: Schema) -> None:
    ok = [30.0, np.nan, 1.0, 0.0]
    rows = np.array(
        [
            ok,
            [70.0, 2.0, 1.0, 0.0],  # above max
            [30.5, 2.0, 1.0, 0.0],  # non-integer in an integer feature
            [30.0, 2.0, 2.0, 0.0],  # category code out of range
            [30.0, 2.0, 0.5, 0.0],  # non-integer category code
            [30.0, 2.0, 1.0, 0.3],  # not a boolean
            [np.nan, 2.0, 1.0, 0.0],  # NaN in a non-nullable feature
            [30.0, np.inf, 1.0, 0.0],  # infinite
        ]
    )
    assert schema.violations(rows).tolist() == [False] + [True] * 7


def test_violations_reject_a_wrong_shape(schema: Schema) -> None:
    with pytest.raises(InputError):
        schema.violations(np.zeros((2, 3)))


def test_overrides_change_bounds_kind_and_mutability(schema: Schema) -> None:
    s = schema.with_overrides(
        {
            "age": FeatureOverride(min=18, max=99, immutable=True),
            "income": FeatureOverride(integer=True),
            "city": FeatureOverride(categories=("oslo", "paris", "rome")),
        }
    )
    assert (s.feature("age").min, s.feature("age").max, s.feature("age").immutable) == (18.0, 99.0, True)
    assert s.feature("income").kind is FeatureKind.INTEGER
    assert s.feature("city").categories == ("oslo", "paris", "rome")
    assert schema.feature("age").immutable is False  # the original is untouched


@pytest.mark.parametrize(
    ("name", "override", "message"),
    [
        ("salary", FeatureOverride(min=0), "unknown feature"),
        ("city", FeatureOverride(min=0), "apply to numeric"),
        ("age", FeatureOverride(categorical=True, integer=True), "cannot both"),
        ("age", FeatureOverride(categorical=True), "needs `categories`"),
        ("age", FeatureOverride(categories=("1", "2")), "set `categorical: true`"),
        ("city", FeatureOverride(categories=("rome",)), "leaves out"),
        ("city", FeatureOverride(categorical=False), "non-categorical"),
        ("member", FeatureOverride(integer=True), "numeric features"),
        ("age", FeatureOverride(min=50, max=10), "<="),
    ],
)
def test_invalid_overrides_are_config_errors_naming_the_key(
    schema: Schema, name: str, override: FeatureOverride, message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as exc:
        schema.with_overrides({name: override})
    assert exc.value.key == f"data.features.{name}"


def test_dict_round_trip_through_json(schema: Schema) -> None:
    s = schema.with_overrides({"age": FeatureOverride(immutable=True)})
    again = Schema.from_dict(json.loads(json.dumps(s.to_dict())))
    assert again == s


@pytest.mark.parametrize(
    "doc",
    [
        [],
        {"features": "x"},
        {"features": [{"kind": "numeric"}]},
        {"features": [{"name": "a", "kind": "weird"}]},
        {"features": [{"name": "a", "kind": "categorical"}]},
        {"features": [{"name": "a", "kind": "numeric"}], "sample_shape": [2]},
        {"features": [{"name": "a", "kind": "numeric"}, {"name": "a", "kind": "numeric"}]},
        {"schema_version": 99, "features": []},
    ],
)
def test_from_dict_rejects_malformed_documents(doc: object) -> None:
    with pytest.raises(InputError):
        Schema.from_dict(doc)  # type: ignore[arg-type]


def test_array_schema_per_element_bounds_for_flat_samples() -> None:
    x = np.array([[0.0, 10.0], [1.0, 20.0], [np.nan, 15.0]])
    s = infer_array_schema(x)
    assert s.names() == ("f0", "f1")
    lower, upper = s.bounds()
    np.testing.assert_array_equal(lower, [0.0, 10.0])
    np.testing.assert_array_equal(upper, [1.0, 20.0])
    assert [f.nullable for f in s.features] == [True, False]


def test_array_schema_global_bounds_for_images() -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(5, 1, 4, 4)).astype(np.uint8)
    x[0, 0, 0, 0], x[1, 0, 3, 3] = 0, 255
    s = infer_array_schema(x)
    assert s.sample_shape == (1, 4, 4)
    assert len(s.features) == 16
    assert all(f.kind is FeatureKind.INTEGER for f in s.features)
    lower, upper = s.bounds()
    assert lower.shape == (1, 4, 4)
    assert (lower == 0).all()
    assert (upper == 255).all()
    projected = s.project(np.full((2, 1, 4, 4), 300.7))
    assert (projected == 255).all()
    assert not s.violations(projected).any()
    assert s.violations(np.full((1, 1, 4, 4), 0.5)).all()


def test_array_schema_refuses_non_numeric_arrays() -> None:
    with pytest.raises(InputError):
        infer_array_schema(np.array([["a"], ["b"]]))


def test_feature_spec_validates_its_own_fields() -> None:
    with pytest.raises(InputError):
        FeatureSpec("a", FeatureKind.NUMERIC, min=2.0, max=1.0)
    with pytest.raises(InputError):
        FeatureSpec("a", FeatureKind.NUMERIC, categories=("x",))
