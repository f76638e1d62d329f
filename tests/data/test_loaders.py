from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pandas.testing import assert_frame_equal

from garrison.core import ConfigError, DataError, DataSourceConfig, FeatureOverride
from garrison.data import Dataset, FeatureKind, detect_format, file_sha256, load_dataset, load_datasets


def _frame(n: int = 8, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "age": rng.integers(18, 80, n),
            "income": rng.normal(50, 10, n).round(3),
            "city": rng.choice(["oslo", "rome", "lima"], n),
            "member": rng.random(n) > 0.5,
            "label": rng.choice(["good", "bad"], n),
        }
    )


def test_csv_with_string_columns(tmp_path: Path) -> None:
    df = _frame()
    path = tmp_path / "credit.csv"
    df.to_csv(path, index=False)
    ds = load_dataset(path)
    assert isinstance(ds, Dataset)
    assert ds.name == "credit"
    assert ds.label == "label"
    assert len(ds) == 8
    assert ds.x.dtype == np.float64
    assert ds.x.shape == (8, 4)
    assert ds.y.tolist() == df["label"].tolist()
    assert ds.schema.feature("city").kind is FeatureKind.CATEGORICAL
    assert ds.sha256 == hashlib.sha256(path.read_bytes()).hexdigest() == file_sha256(path)
    assert ds.codec is not None
    assert ds.records is not None
    assert list(ds.records.columns) == ["age", "income", "city", "member"]
    assert_frame_equal(ds.codec.decode(ds.x), ds.records)


def test_parquet_with_categorical_dtype_is_detected_by_content(tmp_path: Path) -> None:
    df = _frame()
    df["city"] = pd.Categorical(df["city"], categories=["rome", "oslo", "lima", "kyiv"])
    path = tmp_path / "data.csv"  # misleading extension: the content decides
    df.to_parquet(path, index=False)
    assert detect_format(path) == "parquet"
    ds = load_dataset(path, label="label")
    assert ds.schema.feature("city").categories == ("kyiv", "lima", "oslo", "rome")
    assert ds.records is not None
    assert ds.codec is not None
    assert isinstance(ds.records["city"].dtype, pd.CategoricalDtype)
    assert_frame_equal(ds.codec.decode(ds.x), ds.records)


def test_npz_arrays(tmp_path: Path) -> None:
    x = np.random.default_rng(1).random((6, 1, 4, 4)).astype(np.float32)
    y = np.array([0, 1, 2, 0, 1, 2])
    path = tmp_path / "digits.npz"
    np.savez(path, x=x, y=y)
    ds = load_dataset(path)
    assert ds.codec is None
    assert ds.records is None
    assert ds.x.dtype == np.float32
    np.testing.assert_array_equal(ds.x, x)
    assert ds.schema.sample_shape == (1, 4, 4)
    assert ds.y.tolist() == y.tolist()


def test_npz_integer_x_becomes_float64(tmp_path: Path) -> None:
    path = tmp_path / "ints.npz"
    np.savez(path, x=np.arange(12, dtype=np.uint8).reshape(4, 3), y=np.array([0, 1, 0, 1]))
    ds = load_dataset(path)
    assert ds.x.dtype == np.float64
    assert ds.schema.features[0].kind is FeatureKind.INTEGER


@pytest.mark.parametrize("name", ["target", "y", "class"])
def test_label_column_found_by_conventional_name(tmp_path: Path, name: str) -> None:
    path = tmp_path / "d.csv"
    _frame().rename(columns={"label": name}).to_csv(path, index=False)
    assert load_dataset(path).label == name


def test_missing_label_is_a_data_error_naming_the_field(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    _frame().drop(columns=["label"]).to_csv(path, index=False)
    with pytest.raises(DataError) as exc:
        load_dataset(path)
    assert exc.value.field == "label"
    assert exc.value.path == str(path)
    with pytest.raises(DataError) as exc:
        load_dataset(path, label="outcome")
    assert exc.value.field == "outcome"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"a,b,label\n", "no rows"),
        (b"label\n1\n2\n", "no feature columns"),
        (b"a,label\n1,\n2,1\n", "NaN"),
        (b"a,label\ninf,0\n2,1\n", "infinite"),
        (b"\xff\xfe\x00garbage\x81,\x9f\n", "UTF-8"),
    ],
)
def test_unusable_csv_files_are_data_errors(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message) as exc:
        load_dataset(path)
    assert exc.value.path == str(path)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        load_dataset(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="not a regular file"):
        load_dataset(tmp_path)


def test_npz_problems_are_data_errors(tmp_path: Path) -> None:
    cases = {
        "object.npz": {"x": np.array([[1, "a"]], dtype=object), "y": np.array([0])},
        "noy.npz": {"x": np.zeros((2, 2))},
        "length.npz": {"x": np.zeros((3, 2)), "y": np.array([0, 1])},
        "strings.npz": {"x": np.array([["a", "b"]]), "y": np.array([0])},
        "flat.npz": {"x": np.zeros(3), "y": np.zeros(3)},
        "nanlabels.npz": {"x": np.zeros((2, 2)), "y": np.array([0.0, np.nan])},
        "empty.npz": {"x": np.zeros((0, 2)), "y": np.zeros(0)},
        "nofeatures.npz": {"x": np.zeros((2, 0)), "y": np.zeros(2)},
    }
    fields = {
        "noy.npz": "y",
        "length.npz": "y",
        "strings.npz": "x",
        "nanlabels.npz": "y",
        "nofeatures.npz": "x",
    }
    for name, arrays in cases.items():
        path = tmp_path / name
        np.savez(path, **arrays)  # type: ignore[arg-type]
        with pytest.raises(DataError) as exc:
            load_dataset(path)
        assert exc.value.path == str(path), name
        if name in fields:
            assert exc.value.field == fields[name], name
        if name == "object.npz":
            assert "pickle" in str(exc.value)


def test_corrupt_parquet_and_zip_are_data_errors(tmp_path: Path) -> None:
    pq = tmp_path / "bad.parquet"
    pq.write_bytes(b"PAR1" + b"\x00" * 40)
    zp = tmp_path / "bad.npz"
    zp.write_bytes(b"PK\x03\x04" + b"\x01" * 40)
    for path in (pq, zp):
        with pytest.raises(DataError):
            load_dataset(path)


def test_train_and_test_share_one_schema_and_codec(tmp_path: Path) -> None:
    train, test = _frame(10, seed=1), _frame(6, seed=2)
    test.loc[0, "city"] = "accra"  # seen only in test
    test = test[["city", "age", "label", "member", "income"]]  # column order may differ
    train.to_csv(tmp_path / "train.csv", index=False)
    test.to_parquet(tmp_path / "test.parquet", index=False)
    out = load_datasets(
        {"train": DataSourceConfig("train.csv"), "test": DataSourceConfig("test.parquet")}, base_dir=tmp_path
    )
    assert set(out) == {"train", "test"}
    assert out["train"].schema == out["test"].schema
    assert out["train"].codec is out["test"].codec
    assert "accra" in out["train"].schema.feature("city").categories
    assert out["test"].x.shape == (6, 4)
    assert list(out["test"].records.columns) == ["age", "income", "city", "member"]


def test_mismatched_columns_name_the_file(tmp_path: Path) -> None:
    _frame().to_csv(tmp_path / "train.csv", index=False)
    _frame().drop(columns=["income"]).to_csv(tmp_path / "test.csv", index=False)
    with pytest.raises(DataError, match="income") as exc:
        load_datasets(
            {"train": DataSourceConfig("train.csv"), "test": DataSourceConfig("test.csv")}, base_dir=tmp_path
        )
    assert exc.value.path == str(tmp_path / "test.csv")


def test_mismatched_sample_shapes_and_mixed_kinds(tmp_path: Path) -> None:
    np.savez(tmp_path / "a.npz", x=np.zeros((2, 3)), y=np.zeros(2))
    np.savez(tmp_path / "b.npz", x=np.zeros((2, 4)), y=np.zeros(2))
    _frame().to_csv(tmp_path / "c.csv", index=False)
    with pytest.raises(DataError, match="sample shape") as exc:
        load_datasets(
            {"train": DataSourceConfig("a.npz"), "test": DataSourceConfig("b.npz")}, base_dir=tmp_path
        )
    assert exc.value.path == str(tmp_path / "b.npz")
    with pytest.raises(DataError, match="mix"):
        load_datasets(
            {"train": DataSourceConfig("a.npz"), "test": DataSourceConfig("c.csv")}, base_dir=tmp_path
        )


def test_given_schema_encodes_test_data_and_names_unknown_categories(tmp_path: Path) -> None:
    train_path, test_path = tmp_path / "train.csv", tmp_path / "test.csv"
    _frame(seed=3).to_csv(train_path, index=False)
    test = _frame(seed=4)
    test.to_csv(test_path, index=False)
    train = load_dataset(train_path)
    ok = load_dataset(test_path, schema=train.schema)
    assert ok.schema is train.schema
    test.loc[2, "city"] = "atlantis"
    test.to_csv(test_path, index=False)
    with pytest.raises(DataError, match="atlantis") as exc:
        load_dataset(test_path, schema=train.schema)
    assert exc.value.field == "city"
    assert exc.value.path == str(test_path)


def test_overrides_are_applied_after_inference(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    df = _frame()
    df["zip"] = [10001, 94105] * 4
    df.to_csv(path, index=False)
    ds = load_dataset(
        path,
        overrides={
            "age": FeatureOverride(min=0, max=120, immutable=True),
            "zip": FeatureOverride(categorical=True),
        },
    )
    assert ds.schema.feature("age").max == 120.0
    assert ds.schema.feature("age").immutable
    assert ds.schema.feature("zip").categories == ("10001", "94105")
    assert ds.records is not None
    assert ds.codec is not None
    assert_frame_equal(ds.codec.decode(ds.x), ds.records)
    with pytest.raises(ConfigError) as exc:
        load_dataset(path, overrides={"nope": FeatureOverride(min=0)})
    assert exc.value.key == "data.features.nope"


def test_forced_format_and_unknown_format(tmp_path: Path) -> None:
    path = tmp_path / "d.txt"
    _frame().to_csv(path, index=False)
    assert len(load_dataset(path, format="csv")) == 8
    with pytest.raises(DataError):
        load_dataset(path, format="npz")
    with pytest.raises(DataError) as exc:
        load_dataset(path, format="xlsx")
    assert exc.value.field == "format"


def test_subset_keeps_rows_aligned(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    _frame().to_csv(path, index=False)
    ds = load_dataset(path)
    sub = ds.subset(np.array([5, 1]))
    assert len(sub) == 2
    np.testing.assert_array_equal(sub.x, ds.x[[5, 1]])
    assert sub.y.tolist() == [ds.y[5], ds.y[1]]
    assert sub.records is not None
    assert sub.codec is not None
    assert_frame_equal(sub.codec.decode(sub.x), sub.records)
    mask = np.zeros(len(ds), dtype=bool)
    mask[[0, 7]] = True
    assert len(ds.subset(mask)) == 2


# ------------------------------------------------------------------ fuzzing: untrusted bytes never crash the loader

FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _load_or_data_error(path: Path, **kwargs: object) -> None:
    try:
        ds = load_dataset(path, **kwargs)  # type: ignore[arg-type]
    except DataError as exc:
        message = str(exc)
    else:
        message = ""
    if message:
        assert str(path) in message
        return
    assert isinstance(ds, Dataset)
    assert len(ds) > 0
    assert ds.x.shape[0] == len(ds.y)


@FUZZ
@given(data=st.binary(max_size=300), prefix=st.sampled_from([b"", b"PAR1", b"PK\x03\x04", b"a,label\n"]))
def test_fuzz_arbitrary_bytes(tmp_path: Path, data: bytes, prefix: bytes) -> None:
    path = tmp_path / "fuzz.bin"
    path.write_bytes(prefix + data)
    _load_or_data_error(path)


CELL = st.one_of(
    st.text(alphabet='0123456789.-+eEinfatruTRUEFALS"x ,;\t', max_size=6),
    st.integers(-(2**70), 2**70).map(str),
    st.floats().map(str),
)


@FUZZ
@given(
    rows=st.lists(st.lists(CELL, min_size=1, max_size=4), min_size=0, max_size=6), header=st.integers(1, 4)
)
def test_fuzz_csv_text(tmp_path: Path, rows: list[list[str]], header: int) -> None:
    names = [f"c{i}" for i in range(header - 1)] + ["label"]
    text = ",".join(names) + "\n" + "\n".join(",".join(r) for r in rows)
    path = tmp_path / "fuzz.csv"
    path.write_text(text, encoding="utf-8")
    _load_or_data_error(path)


ARRAYS = st.sampled_from(
    [
        np.zeros((2, 3)),
        np.array([[1, 2]], dtype=np.int8),
        np.array([[True], [False]]),
        np.array([["a"]]),
        np.array([1.0, np.nan]),
        np.array([[np.inf, 1.0]]),
        np.zeros((0, 3)),
        np.array([0, 1]),
        np.array(["x", "y"]),
        np.array([[1 + 2j]]),
        np.zeros((2, 1, 2, 2), dtype=np.float16),
        np.array([(1, 2.0)], dtype=[("a", "i4"), ("b", "f8")]),
    ]
)


@FUZZ
@given(arrays=st.dictionaries(st.sampled_from(["x", "y", "z"]), ARRAYS, max_size=3), cut=st.integers(0, 400))
def test_fuzz_npz(tmp_path: Path, arrays: dict[str, np.ndarray], cut: int) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for key, arr in arrays.items():
            member = io.BytesIO()
            np.save(member, arr, allow_pickle=False)
            zf.writestr(f"{key}.npy", member.getvalue())
    blob = buf.getvalue()
    path = tmp_path / "fuzz.npz"
    path.write_bytes(blob if cut == 0 else blob[: max(4, len(blob) - cut)])
    _load_or_data_error(path)


def test_unsupported_column_dtype_is_a_data_error_naming_the_column(tmp_path: Path) -> None:
    df = _frame(4)
    df["seen"] = pd.date_range("2024-01-01", periods=4)
    path = tmp_path / "dates.parquet"
    df.to_parquet(path, index=False)
    with pytest.raises(DataError, match="unsupported") as exc:
        load_dataset(path)
    assert exc.value.field == "seen"
    assert exc.value.path == str(path)
