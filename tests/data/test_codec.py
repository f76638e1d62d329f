from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pandas.testing import assert_frame_equal

from garrison.core import FeatureOverride, InputError
from garrison.data import UNKNOWN_CATEGORY, FeatureCodec, FeatureKind, infer_schema

WORDS = st.text(alphabet="abcxyz é,\"'", min_size=0, max_size=6)


@st.composite
def frames(draw: st.DrawFn) -> pd.DataFrame:
    """Random DataFrames mixing the column kinds users have: floats, ints, strings, categories, booleans."""
    n = draw(st.integers(1, 12))
    floats = st.floats(-1e12, 1e12, allow_nan=False, allow_infinity=False)
    columns: dict[str, object] = {}
    for i in range(draw(st.integers(1, 6))):
        kind = draw(
            st.sampled_from(
                ["float", "float_nan", "f32", "int", "Int64", "str", "category", "bool", "boolean"]
            )
        )
        name = f"c{i}_{kind}"
        if kind == "float":
            columns[name] = np.array(draw(st.lists(floats, min_size=n, max_size=n)), dtype=np.float64)
        elif kind == "float_nan":
            values = draw(st.lists(st.one_of(floats, st.just(np.nan)), min_size=n, max_size=n))
            columns[name] = np.array(values, dtype=np.float64)
        elif kind == "f32":
            small = st.floats(-1e6, 1e6, allow_nan=False, width=32)
            columns[name] = np.array(draw(st.lists(small, min_size=n, max_size=n)), dtype=np.float32)
        elif kind == "int":
            ints = st.integers(-(2**40), 2**40)
            columns[name] = np.array(draw(st.lists(ints, min_size=n, max_size=n)), dtype=np.int64)
        elif kind == "Int64":
            values = draw(st.lists(st.one_of(st.integers(-1000, 1000), st.none()), min_size=n, max_size=n))
            columns[name] = pd.array(values, dtype="Int64")
        elif kind == "str":
            values = draw(st.lists(st.one_of(WORDS, st.none()), min_size=n, max_size=n))
            columns[name] = pd.Series(values, dtype="str")
        elif kind == "category":
            cats = draw(st.lists(WORDS, min_size=1, max_size=5, unique=True))
            values = draw(st.lists(st.one_of(st.sampled_from(cats), st.none()), min_size=n, max_size=n))
            columns[name] = pd.Categorical(values, categories=cats, ordered=draw(st.booleans()))
        elif kind == "bool":
            columns[name] = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
        else:
            values = draw(st.lists(st.one_of(st.booleans(), st.none()), min_size=n, max_size=n))
            columns[name] = pd.array(values, dtype="boolean")
    return pd.DataFrame(columns)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames())
def test_decode_inverts_encode_dtypes_included(df: pd.DataFrame) -> None:
    codec = FeatureCodec(infer_schema(df))
    x = codec.encode(df)
    assert x.dtype == np.float64
    assert x.shape == (len(df), df.shape[1])
    assert_frame_equal(codec.decode(x), df)
    assert not codec.schema.violations(x).any()


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames(), st.data())
def test_lenient_decode_never_raises_and_project_lands_inside(df: pd.DataFrame, data: st.DataObject) -> None:
    codec = FeatureCodec(infer_schema(df))
    x = codec.encode(df)
    noise = data.draw(
        st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=x.size, max_size=x.size).map(
            lambda v: np.array(v, dtype=np.float64).reshape(x.shape)
        )
    )
    fuzzed = x + noise
    decoded = codec.decode(fuzzed, strict=False)
    assert list(decoded.columns) == list(df.columns)
    assert len(decoded) == len(df)

    projected = codec.project(fuzzed, original=x)
    assert not codec.schema.violations(projected).any()
    lower, upper = codec.schema.bounds()
    inside = np.isnan(projected) | ((projected >= lower) & (projected <= upper))
    assert inside.all()
    # a projected point decodes strictly: it is a valid record
    codec.decode(projected)


def test_project_keeps_immutable_features_and_rounds_discrete_ones() -> None:
    df = pd.DataFrame({"age": [30, 40], "income": [1.0, 5.0], "city": pd.Series(["a", "b"], dtype="str")})
    schema = infer_schema(df)
    schema = schema.with_overrides({"age": FeatureOverride(immutable=True)})
    codec = FeatureCodec(schema)
    x = codec.encode(df)
    moved = x + np.array([[3.0, 100.0, 0.7], [-3.0, -100.0, 5.0]])
    p = codec.project(moved, original=x)
    np.testing.assert_array_equal(p[:, 0], x[:, 0])
    np.testing.assert_array_equal(p[:, 1], [5.0, 1.0])
    np.testing.assert_array_equal(p[:, 2], [1.0, 1.0])
    assert codec.schema.immutable_mask().tolist() == [True, False, False]


def test_lenient_decode_maps_bad_codes_to_the_sentinel_and_keeps_missing_values() -> None:
    df = pd.DataFrame({"n": [1, 2], "c": pd.Series(["a", "b"], dtype="str"), "k": pd.Categorical(["u", "v"])})
    codec = FeatureCodec(infer_schema(df))
    bad = np.array([[1.6, 7.0, -1.0], [np.nan, np.nan, 0.5]])
    with pytest.raises(InputError) as exc:
        codec.decode(bad)
    assert exc.value.field in {"n", "c", "k"}
    out = codec.decode(bad, strict=False)
    assert out["n"].iloc[0] == 2.0
    assert np.isnan(out["n"].iloc[1])
    assert out["c"].iloc[0] == UNKNOWN_CATEGORY
    assert pd.isna(out["c"].iloc[1])
    assert out["k"].iloc[0] == UNKNOWN_CATEGORY
    assert out["k"].iloc[1] == UNKNOWN_CATEGORY


def test_encode_names_the_column_of_an_unknown_category_or_a_missing_column() -> None:
    df = pd.DataFrame({"n": [1.0, 2.0], "c": ["a", "b"]})
    codec = FeatureCodec(infer_schema(df))
    with pytest.raises(InputError, match="unknown category 'z'") as exc:
        codec.encode(pd.DataFrame({"n": [1.0], "c": ["z"]}))
    assert exc.value.field == "c"
    with pytest.raises(InputError) as exc:
        codec.encode(pd.DataFrame({"n": [1.0]}))
    assert exc.value.field == "c"
    with pytest.raises(InputError) as exc:
        codec.encode(pd.DataFrame({"n": ["not a number"], "c": ["a"]}))
    assert exc.value.field == "n"


def test_categorical_codes_index_the_sorted_categories() -> None:
    df = pd.DataFrame({"c": ["pear", "apple", "fig", "apple"]})
    schema = infer_schema(df)
    spec = schema.feature("c")
    assert spec.kind is FeatureKind.CATEGORICAL
    assert spec.categories == ("apple", "fig", "pear")
    x = FeatureCodec(schema).encode(df)
    assert x[:, 0].tolist() == [2.0, 0.0, 1.0, 0.0]


def test_integer_column_made_categorical_decodes_to_integers() -> None:
    df = pd.DataFrame({"zip": [10001, 94105, 10001]})
    schema = infer_schema(df, categorical={"zip"})
    assert schema.feature("zip").categories == ("10001", "94105")
    codec = FeatureCodec(schema)
    assert_frame_equal(codec.decode(codec.encode(df)), df)
