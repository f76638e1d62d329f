"""The request parser and validator on untrusted bytes: only RequestError (4xx), never an echo, never a crash."""

from __future__ import annotations

import json
import math
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from garrison.core.errors import RequestError
from garrison.data import infer_schema
from garrison.serve.validation import RequestValidator, parse_json

FRAME = pd.DataFrame({"age": [20, 35, 61], "income": [1.5e4, 5.2e4, 9.9e4], "city": ["Lyon", "Oslo", "Lima"],
                      "member": [True, False, True]})  # fmt: skip
VALIDATOR = RequestValidator(infer_schema(FRAME), max_batch=8)
GOOD = {"age": 40, "income": 50000.0, "city": "Oslo", "member": False}

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_are_parsed_or_refused_with_a_request_error(body: bytes) -> None:
    refused = _refusal(lambda: VALIDATOR.validate(parse_json(body)))
    assert refused is None or 400 <= refused.status < 500


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_any_json_document_is_validated_or_refused_without_echo(doc: object) -> None:
    for body in ({"instances": doc}, {"inputs": doc}, doc):
        out: list[np.ndarray] = []
        refused = _refusal(
            lambda b=body, o=out: o.append(VALIDATOR.validate(parse_json(json.dumps(b).encode())).x)
        )
        if refused is None:
            assert np.isfinite(out[0]).all() and out[0].shape[1:] == (4,)
        else:
            assert 400 <= refused.status < 500 and "Lyon" not in str(refused)


def _refusal(call: Callable[[], object]) -> RequestError | None:
    try:
        call()
    except RequestError as exc:
        return exc
    return None


@settings(max_examples=100, deadline=None)
@given(st.integers(20, 61), st.floats(1.5e4, 9.9e4), st.sampled_from(["Lyon", "Oslo", "Lima"]), st.booleans())
def test_valid_records_encode_to_the_codec_space(age: int, income: float, city: str, member: bool) -> None:
    row = {"age": age, "income": income, "city": city, "member": member}
    batch = VALIDATOR.validate(parse_json(json.dumps({"instances": [row]}).encode()))
    assert batch.x.tolist() == [[age, income, ["Lima", "Lyon", "Oslo"].index(city), float(member)]]
    again = VALIDATOR.validate({"inputs": batch.x.tolist()})
    assert again.x.tolist() == batch.x.tolist()


@pytest.mark.parametrize(
    ("doc", "field", "code"),
    [
        ({"instances": [{**GOOD, "age": 40.5}]}, "instances[0].age", "value"),
        ({"instances": [{**GOOD, "age": 10**400}]}, "instances[0].age", "value"),
        ({"instances": [{**GOOD, "city": "Paris"}]}, "instances[0].city", "category"),
        ({"instances": [{**GOOD, "member": 1}]}, "instances[0].member", "type"),
        ({"instances": [{**GOOD, "income": True}]}, "instances[0].income", "type"),
        ({"instances": [{**GOOD, "income": None}]}, "instances[0].income", "null"),
        ({"instances": [{k: v for k, v in GOOD.items() if k != "city"}]}, "instances[0].city", "missing"),
        ({"inputs": [[40, "50000", 1, 0]]}, "inputs", "type"),
        ({"inputs": [[40, 50000, 1, True]]}, "inputs", "type"),
        ({"inputs": [[40, 50000, 7, 0]]}, "inputs[0].city", "value"),
        ({"inputs": [[40, 1e999, 1, 0]]}, "inputs[0].income", "value"),
        ({"inputs": [[40, 10**400, 1, 0]]}, "inputs", "value"),  # was an OverflowError: a 500
        ({"inputs": [[40.5, 50000, 1, 0]]}, "inputs[0].age", "value"),
        ({"inputs": [[40, 50000, 1]]}, "inputs", "shape"),
        ({"inputs": [[40, 50000, 1, 0]] * 9}, "inputs", "batch_size"),
    ],
)
def test_each_refusal_names_its_field(doc: dict[str, object], field: str, code: str) -> None:
    with pytest.raises(RequestError) as info:
        VALIDATOR.validate(doc)
    assert (info.value.field, info.value.code, info.value.status) == (field, code, 422)


def test_parse_refuses_constants_duplicates_and_depth() -> None:
    for body, code in ((b'{"a": NaN}', "json"), (b'{"a": -Infinity}', "json"), (b'{"a": 1, "a": 2}', "json"),
                       (b"[" * 7 + b"]" * 7, "depth"), (b'"\\ud800"', None)):  # fmt: skip
        if code is None:
            assert (
                parse_json(body) == "\ud800"
            )  # a lone surrogate is valid JSON text; validation refuses it later
            continue
        with pytest.raises(RequestError) as info:
            parse_json(body)
        assert info.value.code == code and info.value.status == 400
    assert parse_json(b'{"s": "[[[[[[[[[[[[[["}') == {"s": "[" * 14}  # brackets inside strings are not depth
    assert not math.isnan(parse_json(b"1e999"))  # json reads 1e999 as inf: refused by the validator's bounds


LOWER, UPPER = (b.reshape(-1) for b in VALIDATOR.schema.bounds())


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.one_of(st.integers(-10, 10**6), st.floats(-10.0, 1.2e5), st.integers(-(2**60), 2**60)),
                         min_size=4, max_size=4), min_size=1, max_size=8))  # fmt: skip
def test_numeric_rows_are_accepted_exactly_when_every_value_is_in_its_bounds(rows: list[list[float]]) -> None:
    """Small batches take a one-pass path, larger ones numpy's: both must agree with the schema."""
    x = np.array(rows, dtype=np.float64)
    integral = np.array([f.kind.value != "numeric" for f in VALIDATOR.schema.features])
    ok = bool(((x >= LOWER) & (x <= UPPER)).all() and (np.floor(x[:, integral]) == x[:, integral]).all())
    if ok:
        assert np.array_equal(VALIDATOR.validate({"inputs": rows}).x, x)
    else:
        with pytest.raises(RequestError) as refused:
            VALIDATOR.validate({"inputs": rows})
        assert refused.value.status == 422 and str(refused.value.field).startswith("inputs")


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(st.text(max_size=6), json_values, min_size=1, max_size=4),
    st.sampled_from(["", " ", "\t", "\n ", " \r\n"]),
    st.booleans(),
)
def test_a_repeated_key_is_refused_whatever_the_spacing_or_nesting(
    doc: dict, space: str, nested: bool
) -> None:
    key = next(iter(doc))
    pairs = [f"{json.dumps(k)}{space}:{space}{json.dumps(v)}" for k, v in doc.items()]
    obj = "{" + ",".join([*pairs, f"{json.dumps(key)}{space}:{space}1"]) + "}"
    body = '{"inputs": [[1.0], ' + obj + "]}" if nested else obj
    with pytest.raises(RequestError) as refused:
        parse_json(body.encode())
    assert refused.value.status == 400


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_the_fast_parser_returns_what_the_strict_one_does(doc: object) -> None:
    body = json.dumps(doc).encode()
    errors: list[str] = []
    try:
        parsed = parse_json(body)
    except RequestError as exc:
        errors.append(exc.code)
    if errors:  # generated documents are strict JSON: only their depth can be refused
        assert errors[0] == "depth"
    else:
        assert parsed == json.loads(body)
