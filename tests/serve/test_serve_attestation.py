"""`serve.require_attestation`: the service serves a model only with a verifying attestation of a passing audit."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("fastapi")

from garrison.audit.demo import write_demo_project
from garrison.cli import main
from garrison.core import load_config
from garrison.registry import RegistryRefusal
from garrison.serve import build_service
from garrison.supplychain.signing import generate_keypair


@pytest.mark.slow
def test_the_service_needs_a_verifying_attestation_of_a_passing_audit(tmp_path: Path) -> None:
    config = write_demo_project(tmp_path, report_dir=tmp_path / "report")
    config.write_text(
        config.read_text() + "serve: {explain: false, require_attestation: {public_key: att.pub}}\n"
    )
    generate_keypair(tmp_path / "att.key", tmp_path / "att.pub")
    store = f"sqlite:///{tmp_path / 'g.db'}"

    with pytest.raises(RegistryRefusal, match="attestation"):  # none yet
        build_service(load_config(config), store_url=store)

    assert (
        main(["audit", "--config", str(config), "--no-store", "-f", "json", "-o", str(tmp_path / "a.json")])
        == 0
    )
    model = tmp_path / "model.skops"
    assert main(["attest", "--report", str(tmp_path / "report" / "report.json"), "--model", str(model),
                 "--key", str(tmp_path / "att.key")]) == 0  # fmt: skip
    assert (tmp_path / "model.skops.intoto.jsonl").exists()
    build_service(load_config(config), store_url=store).close()  # attested: it serves

    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 1  # one bit of the model changes: the attestation no longer vouches for it
    model.write_bytes(bytes(data))
    with pytest.raises(RegistryRefusal) as refused:
        build_service(load_config(config), store_url=store)
    assert any("digest" in p or "SHA-256" in p or "sha256" in p for p in refused.value.problems), (
        refused.value
    )
