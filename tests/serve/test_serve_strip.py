"""Sampled STRIP in the service's background detectors: triggered image inputs open an incident, clean ones not."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

from garrison.adapters import InputSpec, TorchClassifier  # noqa: E402
from garrison.data.schema import infer_array_schema  # noqa: E402
from garrison.poisoning import poison  # noqa: E402
from garrison.respond import IncidentResponder, parse_playbooks  # noqa: E402
from garrison.serve.actions import ServiceActions  # noqa: E402
from garrison.serve.app import GuardedService, ServeSettings  # noqa: E402
from garrison.serve.loading import _strip_hook  # noqa: E402
from garrison.store import KeyRing, Store  # noqa: E402
from garrison.testing.digits import train_digits_cnn  # noqa: E402

pytestmark = pytest.mark.torch


def test_triggered_inputs_sampled_by_strip_open_an_adversarial_incident(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]
    x_tr, x_te, y_tr, _ = train_test_split(x, d.target, test_size=0.3, random_state=0, stratify=d.target)
    p = poison(x_tr, y_tr, kind="badnets", rate=0.1, target=0, size=2, seed=0)
    assert p.trigger is not None
    model = TorchClassifier(train_digits_cnn(p.x, p.y, seed=0), input_spec=InputSpec((1, 8, 8)), n_classes=10)
    with Store.open(f"sqlite:///{tmp_path / 'g.db'}") as store:
        service = GuardedService(model=model, schema=infer_array_schema(x_tr), keys=KeyRing.from_store(store),
                                 settings=ServeSettings(strip_sample=1.0))  # fmt: skip
        responder = IncidentResponder(parse_playbooks([{"when": "adversarial", "then": ["notify"]}]),
                                      ServiceActions(service), store=store)  # fmt: skip
        hook = _strip_hook(service, x_tr, responder, service.settings, service.metrics, 0)
        clean = x_te[:40]
        hook("clean-key", clean, model.predict_proba(clean), 0.0)
        triggered = p.trigger.apply(x_te[40:80][d.target[40:80] != 0])
        hook("bad-key", triggered, model.predict_proba(triggered), 1.0)
        incidents = store.list_incidents()
        assert [i.details["signal"]["subject"] for i in incidents] == ["bad-key"]
        # 25 of 34 here: STRIP is fitted on the reference (training) rows, poisons included, which lowers its bar
        assert incidents[0].details["signal"]["details"]["rows"] >= 0.5 * len(triggered)
