"""fl.yaml parsing: defaults, and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from garrison.core.errors import ConfigError
from garrison.federated import load_fl_config, parse_fl_config


def test_defaults_are_the_issue_setting() -> None:
    cfg = parse_fl_config({"attack": {"kind": "ipm"}})
    assert (cfg.clients, cfg.malicious, cfg.partition, cfg.alpha) == (12, 2, "dirichlet", 0.5)
    assert "screened:fedavg" in cfg.strategies


def test_no_attack_means_no_malicious_client() -> None:
    assert parse_fl_config({"malicious": 3}).malicious == 0


@pytest.mark.parametrize(
    ("data", "key", "message"),
    [
        ({"rounds": 5, "roundz": 3}, "roundz", "unknown key"),
        ({"attack": {"kind": "teleport"}}, "attack.kind", "must be one of"),
        ({"attack": {"kind": "alie", "zz": 1}}, "attack.zz", "unknown key"),
        ({"clients": 10, "malicious": 5, "attack": {"kind": "ipm"}}, "malicious", "less than half"),
        ({"attack": {"kind": "ipm"}, "malicious": 0}, "attack.kind", "malicious"),
        ({"strategies": ["fedavg", "fedprox"]}, "strategies[1]", "unknown strategy"),
        ({"strategies": ["armour:fedavg"]}, "strategies[0]", "unknown wrapper"),
        (
            {"clients": 10, "malicious": 2, "attack": {"kind": "ipm"}, "strategies": ["bulyan"]},
            "strategies[0]",
            "bulyan needs clients",
        ),
        ({"strategies": ["fedavg", "fedavg"]}, "strategies", "twice"),
        ({"strategies": []}, "strategies", "at least one"),
        ({"lr": -1}, "lr", "must be > 0"),
        ({"data": {"partition": "shards"}}, "data.partition", "must be one of"),
    ],
)
def test_errors_name_the_key(data: dict, key: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        parse_fl_config(data, path="fl.yaml")
    assert info.value.key == key
    assert key in str(info.value)


def test_a_file_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "fl.yaml"
    path.write_text("clients: 12\nrounds: 3\nlocal_epochs: zero\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_fl_config(path)
    assert info.value.key == "local_epochs"
    assert info.value.line == 3


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_fl_config(tmp_path / "absent.yaml")


def test_the_example_config_parses() -> None:
    cfg = load_fl_config(Path(__file__).parents[2] / "examples" / "fl-digits.yaml")
    assert cfg.clients >= 4 * cfg.malicious + 3
