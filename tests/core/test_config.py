from __future__ import annotations

import pytest

from garrison.core import ConfigError, Severity, load_config, parse_config

MINIMAL = "model:\n  path: model.skops\n"


def test_minimal_config_fills_defaults() -> None:
    cfg = parse_config(MINIMAL, path="g.yaml")
    assert cfg.model.name == "model"
    assert cfg.model.format == "auto"
    assert cfg.policy.fail_on is Severity.HIGH
    assert cfg.data.train is None and cfg.data.test is None
    assert cfg.report.formats == ("json", "html", "sarif", "junit", "markdown")


def test_full_config_round_trip(tmp_path) -> None:
    text = """\
project: p
seed: 7
model:
  name: credit
  path: m.onnx
  batch_size: 32
data:
  train: {path: train.csv, label: y}
  test: {path: test.parquet}
  features:
    age: {min: 0, max: 120, immutable: true}
checks:
  fuzzing: {enabled: false}
  performance: {budget_s: 5, batch_size: 64}
policy:
  fail_on: medium
  thresholds:
    performance.accuracy: {min: 0.9}
    performance.ece: {max: 0.05, severity: medium}
  required_checks: [performance]
report:
  output: out
  formats: [json, sarif]
"""
    path = tmp_path / "garrison.yaml"
    path.write_text(text)
    cfg = load_config(path)
    assert cfg.seed == 7 and cfg.project == "p"
    assert cfg.model.name == "credit" and cfg.model.batch_size == 32
    assert cfg.data.train is not None and cfg.data.train.label == "y"
    assert cfg.data.features["age"].immutable is True
    assert cfg.checks["fuzzing"].enabled is False
    assert cfg.checks["performance"].budget_s == 5.0
    assert dict(cfg.checks["performance"].options) == {"batch_size": 64}
    assert cfg.policy.fail_on is Severity.MEDIUM
    ece = next(t for t in cfg.policy.thresholds if t.metric == "performance.ece")
    assert ece.max == 0.05 and ece.severity is Severity.MEDIUM and ece.line == 19
    assert cfg.policy.required_checks == ("performance",)
    assert cfg.resolve("x.csv") == tmp_path / "x.csv"


@pytest.mark.parametrize(
    ("text", "key", "line"),
    [
        ("model:\n  path: m\n  bogus: 1\n", "model.bogus", 3),
        ("model:\n  path: m\nextra: 1\n", "extra", 3),
        ("model:\n  path: m\n  retries: -1\n", "model.retries", 3),
        ("model:\n  path: m\n  trusted: yes please\n", "model.trusted", 3),
        ("model:\n  path: m\npolicy:\n  fail_on: severe\n", "policy.fail_on", 4),
        (
            "model:\n  path: m\npolicy:\n  thresholds:\n    accuracy: {min: 1}\n",
            "policy.thresholds.accuracy",
            5,
        ),
        ("model:\n  path: m\npolicy:\n  thresholds:\n    a.b: {}\n", "policy.thresholds.a.b", 5),
        ("model:\n  path: m\ndata:\n  test: {label: y}\n", "data.test.path", 4),
        ("model:\n  name: x\n", "model", 1),
        ("model:\n  path: m\nchecks:\n  fuzzing: {budget_s: 0}\n", "checks.fuzzing.budget_s", 4),
    ],
)
def test_bad_config_names_key_and_line(text: str, key: str, line: int) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, path="g.yaml")
    assert info.value.key == key
    assert info.value.line == line
    assert str(info.value).startswith(f"g.yaml:{line}")


def test_yaml_syntax_error_has_line() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config("model:\n  path: [m\n", path="g.yaml")
    assert info.value.line is not None
    assert "invalid YAML" in str(info.value)


def test_duplicate_keys_are_errors() -> None:
    with pytest.raises(ConfigError):
        parse_config("model:\n  path: a\n  path: b\n", path="g.yaml")


def test_missing_and_empty_files(tmp_path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(ConfigError, match="empty"):
        load_config(empty)


def test_secrets_expand_from_env_and_are_redacted() -> None:
    text = (
        "model:\n  url: http://127.0.0.1:1/p\n  n_classes: 2\n  headers: {Authorization: 'Bearer ${TOKEN}'}\n"
    )
    cfg = parse_config(text, env={"TOKEN": "s3cret"})
    assert cfg.model.headers["Authorization"] == "Bearer s3cret"
    assert "s3cret" not in repr(cfg.redacted())
    assert cfg.redacted()["model"]["headers"] == {"Authorization": "***"}
    with pytest.raises(ConfigError, match="TOKEN is not set"):
        parse_config(text, env={})


def test_scan_section() -> None:
    text = (
        "model: {path: m.pkl}\n"
        "scan:\n  allowlist: [mypkg.models.Net]\n  require_signature: keys/pub.pem\n"
        "  limits: {max_nesting_depth: 4, timeout_s: 30}\n"
    )
    cfg = parse_config(text)
    assert cfg.scan.allowlist == ("mypkg.models.Net",)
    assert cfg.scan.require_signature == "keys/pub.pem"
    assert dict(cfg.scan.limits) == {"max_nesting_depth": 4, "timeout_s": 30.0}
    assert parse_config(MINIMAL).scan.limits == {}
    with pytest.raises(ConfigError) as info:
        parse_config("model: {path: m}\nscan:\n  limits: {max_nesting_depth: 0}\n", path="g.yaml")
    assert info.value.key == "scan.limits.max_nesting_depth" and info.value.line == 3


def test_scan_only_config_has_no_model() -> None:
    cfg = parse_config("scan:\n  allowlist: [a.B]\n")
    assert cfg.model is None and cfg.scan.allowlist == ("a.B",)
