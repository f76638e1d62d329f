"""Explanation drift in the service's drift window: a linear model's attributions move when its inputs do."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("shap")

from sklearn.linear_model import LogisticRegression

from garrison.adapters import SklearnClassifier
from garrison.data.schema import infer_array_schema
from garrison.explain import Explainer
from garrison.respond import IncidentResponder, incident_timeline, parse_playbooks
from garrison.serve.actions import ServiceActions
from garrison.serve.app import GuardedService, ServeSettings
from garrison.serve.loading import _drift_hook
from garrison.store import KeyRing, Store


def test_attributions_of_a_shifted_window_drift_from_the_reference(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 4))
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int)
    model = SklearnClassifier(LogisticRegression().fit(x, y))
    with Store.open(f"sqlite:///{tmp_path / 'g.db'}") as store:
        settings = ServeSettings(drift_window=200, drift_every=200, drift_min_interval_s=0)
        service = GuardedService(model=model, schema=infer_array_schema(x), keys=KeyRing.from_store(store),
                                 settings=settings, explainer=Explainer(model, background=x[:100]))  # fmt: skip
        responder = IncidentResponder(parse_playbooks([{"when": "drift", "then": ["notify"]}]),
                                      ServiceActions(service), store=store)  # fmt: skip
        hook = _drift_hook(service, x, responder, settings, service.metrics)
        same = rng.normal(size=(200, 4))
        hook("k", same, model.predict_proba(same), 0.0)
        assert store.list_incidents() == []  # same distribution: nothing drifted
        shifted = rng.normal(size=(200, 4))
        shifted[:, 0] += 2.5  # the decisive feature moves: its attributions follow
        hook("k", shifted, model.predict_proba(shifted), 1.0)
        # one open incident for the drift playbook; the second signal joins its timeline
        [incident] = store.list_incidents()
        steps = [t["detail"] for t in incident_timeline(store, incident.id)]
        assert "features drifted" in incident.title
        assert any("explanations drifted" in s and "f0" in s for s in steps), steps
