from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from garrison.audit.checks.provenance import (
    RULE_FILE_CHANGED,
    RULE_SIGNATURE,
    RULE_UNSAFE_PATH,
    ProvenanceCheck,
)
from garrison.audit.context import AuditContext
from garrison.core.config import DataConfig, DataSourceConfig, GarrisonConfig
from garrison.core.results import CheckStatus
from garrison.core.severity import Severity, Stage
from garrison.data import load_dataset
from garrison.supplychain.manifest import write_manifest
from garrison.supplychain.signing import generate_keypair
from garrison.testing import assert_conforms, make_context


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("keys")
    generate_keypair(folder / "k.pem", folder / "k.pub")
    generate_keypair(folder / "o.pem", folder / "o.pub")
    return folder / "k.pem", folder / "k.pub"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project directory: data/train.csv and data/test.csv (iris-like numbers), with a config beside data/."""
    rng = np.random.default_rng(0)
    (tmp_path / "data").mkdir()
    for name, n in (("train", 60), ("test", 30)):
        frame = pd.DataFrame(rng.normal(size=(n, 3)).round(3), columns=["a", "b", "c"])
        frame["label"] = (frame["a"] > 0).astype(int)
        frame.to_csv(tmp_path / "data" / f"{name}.csv", index=False)
    return tmp_path


def _config(project: Path) -> GarrisonConfig:
    return GarrisonConfig(
        data=DataConfig(
            train=DataSourceConfig("data/train.csv", label="label"),
            test=DataSourceConfig("data/test.csv", label="label"),
        ),
        base_dir=project,
    )


def _context(project: Path) -> AuditContext:
    train = load_dataset(project / "data" / "train.csv", label="label", name="train")
    test = load_dataset(project / "data" / "test.csv", label="label", name="test", schema=train.schema)
    ctx = make_context(test=test, train=train)
    ctx.config = _config(project)
    return ctx


def test_conforms(project: Path, keys: tuple[Path, Path]) -> None:
    write_manifest(project / "data", private_key=keys[0])
    assert_conforms(ProvenanceCheck, lambda: _context(project))


def test_skipped_without_a_manifest(project: Path) -> None:
    result = ProvenanceCheck().run(_context(project))
    assert result.status is CheckStatus.SKIPPED
    assert "no dataset manifest found" in (result.reason or "")
    assert "garrison-manifest.json" in (result.reason or "")
    explicit = ProvenanceCheck(manifest="elsewhere/m.json").run(_context(project))
    assert explicit.status is CheckStatus.SKIPPED


def test_intact_signed_dataset_has_no_findings(project: Path, keys: tuple[Path, Path]) -> None:
    write_manifest(project / "data", private_key=keys[0])
    result = ProvenanceCheck(public_key=str(keys[1])).run(_context(project))
    assert result.status is CheckStatus.OK
    assert result.findings == ()
    values = {m.name: m.value for m in result.metrics}
    assert values["files"] == 2 and values["changed"] == 0 and values["signature_checked"] == 1
    assert values["signature_failures"] == 0


def test_one_finding_per_changed_appeared_vanished_file(project: Path, keys: tuple[Path, Path]) -> None:
    write_manifest(project / "data", private_key=keys[0])
    ctx = _context(project)  # loaded before the tampering, as an audit would
    text = (project / "data" / "train.csv").read_text()
    (project / "data" / "train.csv").write_text(text.replace(",0\n", ",1\n", 1))  # one flipped label
    (project / "data" / "extra.csv").write_text("a,b,c,label\n9,9,9,1\n")
    (project / "data" / "test.csv").rename(project / "data" / "test-old.csv")

    result = ProvenanceCheck(public_key=str(keys[1])).run(ctx)
    assert result.status is CheckStatus.OK
    got = sorted(
        (f.rule_id, f.location, {e.key: e.value for e in f.evidence}["change"]) for f in result.findings
    )
    assert got == [
        (RULE_FILE_CHANGED, "extra.csv", "appeared"),
        (RULE_FILE_CHANGED, "test-old.csv", "appeared"),
        (RULE_FILE_CHANGED, "test.csv", "vanished"),
        (RULE_FILE_CHANGED, "train.csv", "changed"),
    ]
    assert {f.subject.name for f in result.findings} == {"data"}
    assert all(f.check_id == "provenance" and f.stage is Stage.DATA for f in result.findings)
    values = {m.name: m.value for m in result.metrics}
    assert (values["changed"], values["appeared"], values["vanished"]) == (1, 2, 1)


def test_fingerprints_do_not_depend_on_where_the_project_lives(project: Path, tmp_path: Path) -> None:
    write_manifest(project / "data")
    (project / "data" / "train.csv").write_text("a,b,c,label\n0,0,0,0\n")
    copy = tmp_path / "clone"
    shutil.copytree(project, copy, symlinks=True)
    first = ProvenanceCheck().run(_context(project)).findings
    second = ProvenanceCheck().run(_context(copy)).findings
    assert [f.fingerprint for f in first] == [f.fingerprint for f in second]
    assert len(first) == 1


def test_signature_problems_are_critical_findings(project: Path, keys: tuple[Path, Path]) -> None:
    manifest = write_manifest(project / "data", private_key=keys[0])
    other_public = keys[1].with_name("o.pub")
    wrong = ProvenanceCheck(public_key=str(other_public)).run(_context(project))
    [finding] = wrong.findings
    assert finding.rule_id == RULE_SIGNATURE and finding.location == "garrison-manifest.json"
    assert finding.severity is Severity.CRITICAL
    assert "different key" in finding.message

    manifest.write_text(manifest.read_text().replace('"root": "data"', '"root": "other"'))
    edited = ProvenanceCheck(public_key=str(keys[1])).run(_context(project))
    assert [f.rule_id for f in edited.findings] == [RULE_SIGNATURE]
    assert "edited after signing" in edited.findings[0].message

    write_manifest(project / "data")  # unsigned
    unsigned = ProvenanceCheck(public_key=str(keys[1])).run(_context(project))
    assert [f.rule_id for f in unsigned.findings] == [RULE_SIGNATURE]
    integrity_only = ProvenanceCheck().run(_context(project))
    assert integrity_only.findings == ()
    assert {m.name: m.value for m in integrity_only.metrics}["signature_checked"] == 0


def test_options_resolve_against_the_config_directory(project: Path, keys: tuple[Path, Path]) -> None:
    shutil.copy(keys[1], project / "signer.pub")
    write_manifest(project / "data", private_key=keys[0], output=project / "manifests" / "data.json")
    check = ProvenanceCheck(manifest="manifests/data.json", directory="data", public_key="signer.pub")
    ctx = _context(project)
    result = check.run(ctx)
    assert result.status is CheckStatus.OK and result.findings == ()
    (project / "data" / "train.csv").unlink()
    assert [f.location for f in check.run(ctx).findings] == ["train.csv"]


def test_link_out_of_the_dataset_is_a_finding(project: Path, tmp_path: Path) -> None:
    write_manifest(project / "data")
    outside = tmp_path / "outside.csv"
    outside.write_text("a,b,c,label\n")
    (project / "data" / "more.csv").symlink_to(outside)
    result = ProvenanceCheck().run(_context(project))
    [finding] = result.findings
    assert (finding.rule_id, finding.location) == (RULE_UNSAFE_PATH, "more.csv")


def test_malformed_manifest_makes_the_check_error(project: Path) -> None:
    (project / "data" / "garrison-manifest.json").write_text('{"kind": "garrison-dataset-manifest"}')
    result = ProvenanceCheck().run(_context(project))
    assert result.status is CheckStatus.ERROR
    assert "schema_version" in (result.error or "")


def test_a_tampered_dataset_fails_a_real_audit(project: Path, keys: tuple[Path, Path]) -> None:
    import skops.io
    from sklearn.linear_model import LogisticRegression

    from garrison.audit.check import CheckRegistry
    from garrison.audit.runner import audit
    from garrison.core.config import load_config

    train = pd.read_csv(project / "data" / "train.csv")
    model = LogisticRegression().fit(train[["a", "b", "c"]], train["label"])
    skops.io.dump(model, project / "model.skops")
    shutil.copy(keys[1], project / "data.pub")
    (project / "garrison.yaml").write_text(
        "model: {name: m, path: model.skops}\n"
        "data:\n  train: {path: data/train.csv, label: label}\n  test: {path: data/test.csv, label: label}\n"
        "checks:\n  provenance: {public_key: data.pub}\n"
        "policy: {fail_on: high}\n"
    )
    write_manifest(project / "data", private_key=keys[0])
    registry = CheckRegistry()
    registry.register(ProvenanceCheck)
    config = load_config(project / "garrison.yaml")

    clean = audit(config, registry=registry)
    assert clean.decision is not None and int(clean.decision.exit_code) == 0

    (project / "data" / "test.csv").write_text(
        (project / "data" / "test.csv").read_text() + "0.1,0.2,0.3,0\n"
    )
    tampered = audit(config, registry=registry)
    assert tampered.decision is not None and int(tampered.decision.exit_code) == 1
    assert [(f.rule_id, f.location) for f in tampered.findings] == [(RULE_FILE_CHANGED, "test.csv")]
