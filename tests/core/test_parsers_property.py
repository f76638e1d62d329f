"""Config and triage files are untrusted text: every input gives a parsed object or a ConfigError, nothing else."""

from __future__ import annotations

import contextlib
import io

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from garrison.core import ConfigError, GarrisonConfig, Triage, parse_config, parse_triage

_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=12))
_keys = st.sampled_from(
    [
        "model",
        "path",
        "data",
        "test",
        "train",
        "label",
        "policy",
        "thresholds",
        "fail_on",
        "checks",
        "findings",
        "status",
        "expires",
        "owner",
        "reason",
        "performance.accuracy",
        "min",
        "max",
        "version",
        "seed",
        "x",
    ]
)
_docs = st.recursive(
    _scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_keys, inner, max_size=5)),
    max_leaves=20,
)


def _dump(doc: object) -> str:
    buf = io.StringIO()
    YAML(typ="safe", pure=True).dump(doc, buf)
    return buf.getvalue()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300))
def test_any_text_is_a_config_or_a_config_error(text: str) -> None:
    try:
        result: object = parse_config(text, path="g.yaml")
    except ConfigError as exc:
        result = exc
    assert isinstance(result, GarrisonConfig) or str(result).startswith("g.yaml")


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_docs)
def test_any_yaml_document_is_a_config_or_a_config_error(doc: object) -> None:
    with contextlib.suppress(ConfigError):
        assert isinstance(parse_config(_dump(doc), path="g.yaml"), GarrisonConfig)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(max_size=300), _docs.map(_dump)))
def test_any_triage_text_is_triage_or_a_config_error(text: str) -> None:
    try:
        result: object = parse_triage(text, path="t.yaml")
    except ConfigError as exc:
        result = exc
    assert isinstance(result, Triage) or str(result).startswith("t.yaml")
