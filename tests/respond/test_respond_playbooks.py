"""Playbooks parse strictly; the responder opens one incident per playbook and subject, acts, and keeps a timeline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from garrison.core.errors import ConfigError
from garrison.respond import IncidentResponder, Signal, incident_timeline, parse_playbooks
from garrison.store import Store


class _Recorder:
    """The service's side of the actions, recorded (the real ones are tested through `garrison serve`)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []

    def notify(self, signal: Signal, incident: int) -> str:
        self.calls.append(("notify", signal.subject))
        return f"notified about {signal.kind}"

    def block(self, subject: str) -> str:
        self.calls.append(("block", subject))
        return f"blocked {subject}"

    def throttle(self, subject: str, rate: float) -> str:
        self.calls.append(("throttle", subject, str(rate)))
        return f"throttled {subject}"

    def quarantine(self, subject: str, rows: np.ndarray | None, incident: int) -> str:
        raise OSError("disk full")

    def abstain(self, subject: str) -> str:
        return "abstain"

    def fallback(self) -> str:
        return "fallback"

    def rollback(self) -> str:
        return "rollback"


def test_playbooks_parse_with_defaults_and_refuse_unknown_signals_and_actions() -> None:
    books = parse_playbooks([{"when": "probing", "then": ["notify", "block"]}, {"name": "d", "when": "drift",
                                                                                "then": "notify"}])  # fmt: skip
    assert [(b.name, b.when, b.then, b.min_severity) for b in books] == [
        ("playbook-0-probing", "probing", ("notify", "block"), "low"),
        ("d", "drift", ("notify",), "low"),
    ]
    with pytest.raises(ConfigError, match=r"serve.playbooks\[0\].when"):
        parse_playbooks([{"when": "typo", "then": ["notify"]}])
    with pytest.raises(ConfigError, match=r"serve.playbooks\[0\].then"):
        parse_playbooks([{"when": "ood", "then": ["delete-everything"]}])
    with pytest.raises(ConfigError, match="unknown key `than`"):
        parse_playbooks([{"when": "ood", "than": ["notify"]}])
    with pytest.raises(ConfigError, match="unique"):
        parse_playbooks([{"name": "a", "when": "ood", "then": "notify"}, {"name": "a", "when": "drift",
                                                                          "then": "notify"}])  # fmt: skip
    assert not books[0].matches("probing", "info") and books[0].matches("probing", "low")
    assert not books[0].matches("drift", "critical")


def test_one_incident_per_subject_with_every_action_on_its_timeline(tmp_path: Path) -> None:
    books = parse_playbooks([
        {"name": "extraction", "when": "probing", "min_severity": "medium", "then": ["notify", "block", "quarantine"]},
        {"name": "slow-down", "when": "any", "min_severity": "high", "then": ["throttle"], "throttle_rate": 2},
    ])  # fmt: skip
    actions = _Recorder()
    with Store.open(f"sqlite:///{tmp_path / 'g.db'}") as store:
        responder = IncidentResponder(books, actions, store=store, model_name="m")
        assert responder.handle(Signal("probing", "low", "k1", "weak")) == []  # below min_severity
        first = responder.handle(Signal("probing", "high", "k1", "600 near-duplicate queries"))
        again = responder.handle(Signal("probing", "medium", "k1", "more"))
        other = responder.handle(Signal("probing", "medium", "k2", "k2 too"))
        incidents = {i.id: i for i in store.list_incidents()}
        # k1: one incident for each playbook that matched (extraction, slow-down); k2: one more
        assert len(incidents) == 3
        k1 = first[0][0]
        assert again[0][0] == k1 and other[0][0] != k1
        assert ("block", "k1") in actions.calls and ("throttle", "k1", "2.0") in actions.calls
        assert ("throttle", "k2", "2.0") not in actions.calls  # medium: below slow-down's min_severity
        timeline = incident_timeline(store, k1)
        whats = [t["what"] for t in timeline]
        assert whats[0] == "opened" and whats.count("signal") == 1
        assert any(t["detail"] == "quarantine failed: OSError" for t in timeline)
        assert incidents[k1].details["signal"]["message"] == "600 near-duplicate queries"
        store.update_incident(k1, status="resolved", actor="alice", note="key revoked")
        reopened = responder.handle(Signal("probing", "high", "k1", "back again"))
        assert reopened[0][0] not in incidents  # the old incident is resolved: a new one opens
