"""`garrison.adapters.load`: pickle-based models load only behind the scanner and a restricted unpickler."""

from __future__ import annotations

import pickle
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from tests.supplychain import pickles

from garrison.adapters import load
from garrison.core import ModelLoadError, UntrustedArtifactError


class NotAllowlisted:
    """A user class: unknown to the allowlist until the user trusts it."""

    def __init__(self) -> None:
        self.weights = [1.0, 2.0]


@pytest.fixture(scope="module")
def fitted() -> tuple[LogisticRegression, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 4))
    y = (x[:, 0] > 0).astype(int)
    return LogisticRegression().fit(x, y), x


@pytest.mark.parametrize("how", ["pickle", "joblib", "joblib-compressed"])
def test_benign_sklearn_models_load(tmp_path: Path, fitted, how: str) -> None:  # type: ignore[no-untyped-def]
    model, x = fitted
    path = tmp_path / "model.bin"
    if how == "pickle":
        path.write_bytes(pickle.dumps(model, protocol=4))
    else:
        joblib.dump(model, path, compress=3 if how.endswith("compressed") else 0)
    loaded = load(path)
    assert np.allclose(loaded.predict_proba(x), model.predict_proba(x))


def test_malicious_pickle_is_refused_and_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "model.pkl"
    path.write_bytes(pickles.marker_payload(str(marker)))
    with pytest.raises(UntrustedArtifactError, match="GAR-SC-001"):
        load(path)
    assert not marker.exists()


def test_unknown_class_needs_trust(tmp_path: Path) -> None:
    path = tmp_path / "custom.pkl"
    path.write_bytes(pickle.dumps(NotAllowlisted(), protocol=4))
    with pytest.raises(UntrustedArtifactError, match="GAR-SC-002"):
        load(path)
    obj = load(path, trusted=[f"{__name__}.NotAllowlisted"])
    assert obj.weights == [1.0, 2.0]


def test_full_torch_checkpoint_loads_after_the_scan(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    path = tmp_path / "full.pt"
    torch.save(net, path)
    loaded = load(path)
    x = torch.randn(3, 4)
    assert torch.allclose(loaded(x), net(x))


def test_missing_and_unsupported_files(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="not found"):
        load(tmp_path / "nope.pkl")
    csv = tmp_path / "data.csv"
    csv.write_text("a,b\n1,2\n")
    with pytest.raises(ModelLoadError):
        load(csv)
