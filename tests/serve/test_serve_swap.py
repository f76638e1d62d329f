"""After a fallback or rollback, the detectors calibrated on the served model's outputs follow the new model."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("fastapi")

from garrison.audit.demo import write_demo_project
from garrison.core import load_config
from garrison.serve import build_service

SERVE = """
serve:
  drift_window: 60
  drift_every: 60
  drift_min_interval_s: 0
  squeezing: true
  explain: false
  alerts: {log: alerts.jsonl, min_interval_s: 0}
  playbooks:
    - {name: watch-drift, when: drift, then: [notify]}
"""


class Inverted:
    """A user's model that answers the other class: the same inputs, opposite outputs."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.name = "inverted"
        self.classes = model.classes
        self.n_classes = model.n_classes
        self.input_spec = model.input_spec

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.model.predict_proba(x))[:, ::-1].copy()


def _prediction_drift_alerts(root: Path) -> list[str]:
    path = root / "alerts.jsonl"
    if not path.exists():
        return []
    alerts = [json.loads(line) for line in path.read_text().splitlines()]
    return [
        a["message"] for a in alerts if a["kind"] == "drift" and a["message"].startswith("the predictions")
    ]


def test_prediction_drift_is_measured_against_the_model_now_served(tmp_path: Path) -> None:
    config = write_demo_project(tmp_path, report_dir=tmp_path / "report")
    config.write_text(config.read_text() + SERVE)
    bundle = build_service(load_config(config), store_url=f"sqlite:///{tmp_path / 'g.db'}")
    try:
        service = bundle.service
        service.close()  # the test calls the hooks itself, in order
        rows = pd.read_csv(tmp_path / "train.csv").drop(columns="target").iloc[:60].to_dict("records")
        x = service.validator.validate({"instances": rows}).x

        def feed() -> None:
            probabilities = np.asarray(service.model.predict_proba(x))
            for hook in service.hooks:
                hook("k", x, probabilities, time.monotonic())

        feed()  # reference rows through the reference model: nothing drifts
        assert _prediction_drift_alerts(tmp_path) == []
        service.swap_model(Inverted(service.model), "inverted")
        feed()  # the same rows through the new model: its predictions are its normal ones
        assert _prediction_drift_alerts(tmp_path) == []
        # every detector refitted without an error
        assert b"garrison_hook_errors_total{" not in service.metrics.exposition()[0]
    finally:
        bundle.close()
