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
