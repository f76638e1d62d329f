"""`audit()` end to end from a garrison.yaml, for every kind of model the adapters load."""

from __future__ import annotations

import json
import threading
import warnings
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from garrison.audit import audit
from garrison.core import CheckStatus, UntrustedArtifactError, parse_config

FACTORY_MODULE = """
import torch
from torch import nn


def build(n_classes: int = 10) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, n_classes))
"""


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    bunch = load_digits()
    x = (bunch.data / 16.0).astype(np.float32)
    return tuple(train_test_split(x, bunch.target, test_size=0.2, random_state=0, stratify=bunch.target))  # type: ignore[return-value]


def _write_npz(path: Path, x: np.ndarray, y: np.ndarray) -> None:
    np.savez(path, x=x, y=y)


def _config(tmp_path: Path, model: str, *, test: str = "test.npz") -> Any:
    text = f"""\
project: models
model:
{model}
data:
  test: {{path: {test}}}
checks:
  fuzzing: {{budget_s: 60, max_features: 4}}
  performance: {{budget_s: 60, n_bootstrap: 20}}
  robustness: {{budget_s: 120, n_samples: 20, queries: 50, steps: 10, min_perturbation: false}}
policy:
  thresholds:
    performance.accuracy: {{min: 0.8}}
"""
    path = tmp_path / "garrison.yaml"
    path.write_text(text)
    return parse_config(text, path=path, env={"MODEL_TOKEN": "tok-5ecret-value"})


def _assert_ok(report: Any) -> None:
    assert {r.check_id for r in report.results} == {
        "anonymity",
        "explain",
        "artifact",
        "fuzzing",
        "performance",
        "privacy",
        "provenance",
        "robustness",
        "training",
    }
    status = {r.check_id: r.status for r in report.results}
    files = [a for a in report.run.artifacts if a.role in ("model", "weights")]
    # the model file is scanned first (artifact stage); a remote model has no file to scan
    assert status["artifact"] is (CheckStatus.OK if files else CheckStatus.SKIPPED), [
        r.error for r in report.results
    ]
    assert status["fuzzing"] is status["performance"] is status["robustness"] is CheckStatus.OK
    accuracy = report.result("performance").metric("accuracy")
    assert accuracy.value >= 0.8
    assert report.decision.thresholds[0].passed


def test_onnx_model(tmp_path: Path, digits: Any) -> None:
    pytest.importorskip("onnxruntime")
    from skl2onnx import to_onnx

    x_train, x_test, y_train, y_test = digits
    clf = LogisticRegression(max_iter=300).fit(x_train, y_train)
    (tmp_path / "model.onnx").write_bytes(
        to_onnx(clf, x_train[:1], options={"zipmap": False}).SerializeToString()
    )
    _write_npz(tmp_path / "test.npz", x_test, y_test)
    report = audit(_config(tmp_path, "  path: model.onnx"))
    _assert_ok(report)
    assert {a.role for a in report.run.artifacts} == {"model", "test"}


@pytest.fixture
def torch_model(tmp_path: Path, digits: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    torch = pytest.importorskip("torch")
    (tmp_path / "garrison_test_factory.py").write_text(FACTORY_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    import garrison_test_factory  # type: ignore[import-not-found]

    x_train, x_test, y_train, y_test = digits
    torch.manual_seed(0)
    net = garrison_test_factory.build()
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    xt, yt = torch.from_numpy(x_train.reshape(-1, 1, 8, 8)), torch.from_numpy(y_train)
    for _ in range(60):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(xt), yt).backward()
        opt.step()
    net.eval()
    _write_npz(tmp_path / "test.npz", x_test.reshape(-1, 1, 8, 8), y_test)
    return net


def test_torch_factory_with_safetensors_weights(tmp_path: Path, torch_model: Any) -> None:
    from safetensors.torch import save_file

    save_file(torch_model.state_dict(), tmp_path / "weights.safetensors")
    model = '  factory: "garrison_test_factory:build"\n  weights: weights.safetensors'
    config = _config(tmp_path, model)
    report = audit(config)
    _assert_ok(report)
    assert {a.role for a in report.run.artifacts} == {"weights", "test"}
    with pytest.raises(UntrustedArtifactError, match="allow-factory"):
        audit(config, allow_factory=False)


def test_torchscript_and_export_archives_load_after_the_scan_or_when_trusted(
    tmp_path: Path, torch_model: Any
) -> None:
    import torch

    example = torch.zeros(1, 1, 8, 8)
    with warnings.catch_warnings():  # torch deprecates TorchScript, but users still ship it
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.trace(torch_model, example).save(str(tmp_path / "model.ts"))
    batch = torch.export.Dim("batch", min=1, max=4096)
    exported = torch.export.export(torch_model, (torch.zeros(2, 1, 8, 8),), dynamic_shapes=({0: batch},))
    torch.export.save(exported, str(tmp_path / "model.pt2"))
    for name in ("model.ts", "model.pt2"):
        # code archives load once the scan passes them; the artifact stage reports that they are code
        scanned = audit(_config(tmp_path, f"  path: {name}"))
        _assert_ok(scanned)
        assert any(f.rule_id == "GAR-SC-012" for f in scanned.decision.findings)
        _assert_ok(audit(_config(tmp_path, f"  path: {name}\n  trusted: true")))


@pytest.fixture
def served(digits: Any) -> Iterator[str]:
    x_train, _, y_train, _ = digits
    clf = LogisticRegression(max_iter=300).fit(x_train, y_train)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            if self.headers.get("Authorization") != "Bearer tok-5ecret-value":
                self.send_response(401)
                self.end_headers()
                return
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            x = np.array(
                [[np.nan if v is None else v for v in row] for row in body["inputs"]], dtype=np.float64
            )
            if not np.isfinite(x).all():
                self.send_response(422)  # a well-behaved endpoint rejects what it cannot score
                self.end_headers()
                return
            out = json.dumps({"probabilities": clf.predict_proba(x).tolist()}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1/predict"
    server.shutdown()
    server.server_close()


def test_remote_endpoint(tmp_path: Path, digits: Any, served: str) -> None:
    _, x_test, _, y_test = digits
    _write_npz(tmp_path / "test.npz", x_test, y_test)
    model = (
        f"  url: {served}\n  n_classes: 10\n  retries: 0\n"
        '  headers: {Authorization: "Bearer ${MODEL_TOKEN}"}'
    )
    report = audit(_config(tmp_path, model))
    _assert_ok(report)
    assert "tok-5ecret-value" not in json.dumps(report.to_dict())
    assert report.run.config["model"]["headers"] == {"Authorization": "***"}
