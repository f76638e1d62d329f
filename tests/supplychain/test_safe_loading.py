"""Loading pickle-based models only after the scan, through the restricted unpickler (defence in depth)."""

from __future__ import annotations

import io
import pickle
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pickles as pk
import pytest

from garrison.core.errors import InputError, UntrustedArtifactError
from garrison.supplychain.pickle_policy import default_allowlist
from garrison.supplychain.safe_loading import (
    RestrictedUnpickler,
    load_pickle,
    load_torch_checkpoint,
    restricted_pickle_module,
)


class Marker:
    """Pickles as ``builtins.open(path, 'w')``: loading it unrestricted would create the marker file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.path), "w"))


@pytest.fixture(scope="module")
def model() -> Any:
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier

    x, y = make_classification(n_samples=40, n_features=4, random_state=0)
    return RandomForestClassifier(n_estimators=3, random_state=0).fit(x, y)


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_scikit_learn_pickle_loads(tmp_path: Path, model: Any, protocol: int) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(model, protocol=protocol))
    loaded = load_pickle(path)
    x = np.zeros((2, 4))
    assert (loaded.predict_proba(x) == model.predict_proba(x)).all()


@pytest.mark.parametrize("compress", [0, 3, ("gzip", 3), ("bz2", 3), ("xz", 3), ("lzma", 3)])
def test_joblib_files_load_plain_and_compressed(tmp_path: Path, model: Any, compress: Any) -> None:
    import joblib

    path = tmp_path / "model.joblib"
    joblib.dump({"model": model, "objects": np.array([1, "x"], dtype=object)}, path, compress=compress)
    loaded = load_pickle(path)
    assert type(loaded["model"]).__name__ == "RandomForestClassifier"
    assert loaded["objects"].tolist() == [1, "x"]


def test_malicious_pickle_is_refused_by_the_scan_and_nothing_runs(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"model": Marker(marker)}, protocol=4))
    with pytest.raises(UntrustedArtifactError, match=r"open\("):
        load_pickle(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    "payload",
    [
        pk.call("os", "getcwd"),
        pk.getattr_import("os", "getcwd"),
        pk.build_setstate("os", "getcwd"),
        pk.obj_then_pop("os", "getcwd"),
        pk.inst_call("os", "getcwd"),
        pk.partial_gadget("os", "getcwd"),
        pk.call("builtins", "print", "hello"),
    ],
)
def test_restricted_unpickler_refuses_what_the_scan_refuses(tmp_path: Path, payload: bytes) -> None:
    path = tmp_path / "evil.pkl"
    path.write_bytes(payload)
    with pytest.raises(UntrustedArtifactError):
        load_pickle(path)
    with pytest.raises(UntrustedArtifactError, match="restricted unpickler refuses"):
        RestrictedUnpickler(io.BytesIO(payload)).load()


def test_restricted_unpickler_alone_never_runs_the_payload(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    for protocol in (0, 2, 5):
        with pytest.raises(UntrustedArtifactError):
            RestrictedUnpickler(io.BytesIO(pickle.dumps(Marker(marker), protocol=protocol))).load()
    with pytest.raises(UntrustedArtifactError):
        RestrictedUnpickler(io.BytesIO(pk.marker_payload(str(marker)))).load()
    assert not marker.exists()


def test_restricted_getattr_reaches_only_allowlisted_attributes() -> None:
    getattr_payload = (
        pk.proto(2) + pk.global_("builtins", "getattr") + pk.global_("collections", "OrderedDict")
    )
    getattr_payload += pk.text("__init__") + pk.TUPLE2 + pk.REDUCE + pk.STOP
    with pytest.raises(UntrustedArtifactError, match="getattr"):
        RestrictedUnpickler(io.BytesIO(getattr_payload)).load()


def test_pandas_time_zones_load_through_the_allowlisted_getattr(tmp_path: Path) -> None:
    import pandas as pd

    frame = pd.DataFrame({"t": pd.date_range("2020", periods=2, tz="Europe/Paris")})
    path = tmp_path / "frame.pkl"
    path.write_bytes(pickle.dumps(frame, protocol=2))
    assert load_pickle(path).equals(frame)


def test_trusted_names_extend_the_allowlist(tmp_path: Path) -> None:
    path = tmp_path / "counter.pkl"
    path.write_bytes(pickle.dumps(np.random.SeedSequence(1), protocol=4))
    assert load_pickle(path).entropy == 1
    path.write_bytes(pickle.dumps(Path("x"), protocol=4))
    assert load_pickle(path) == Path("x")
    path.write_bytes(pk.call("fractions", "Fraction", "1/3"))
    assert str(load_pickle(path)) == "1/3"
    path.write_bytes(pickle.dumps(warnings.WarningMessage("m", UserWarning, "f", 1), protocol=4))
    with pytest.raises(UntrustedArtifactError, match="WarningMessage"):
        load_pickle(path)
    loaded = load_pickle(path, trusted=["warnings.WarningMessage", "builtins.UserWarning"])
    assert loaded.message == "m"


def test_malformed_stream_and_bad_kind_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "broken.pkl"
    path.write_bytes(pickle.dumps([1, 2], protocol=4)[:-3])
    with pytest.raises(UntrustedArtifactError, match="malformed"):
        load_pickle(path)
    with pytest.raises(InputError, match="kind"):
        load_pickle(path, kind="zip")
    with pytest.raises(InputError, match="cannot read"):
        load_pickle(tmp_path / "missing.pkl")


def test_torch_checkpoints_load_and_malicious_ones_are_refused(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.ReLU())
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    for legacy in (False, True):
        path = tmp_path / f"full-{legacy}.pt"
        torch.save(
            {"net": net, "opt": optimizer.state_dict()}, path, _use_new_zipfile_serialization=not legacy
        )
        loaded = load_torch_checkpoint(path)
        assert torch.equal(loaded["net"][0].weight, net[0].weight)
    marker = tmp_path / "marker"
    evil = tmp_path / "evil.pt"
    torch.save({"net": net, "x": Marker(marker)}, evil)
    with pytest.raises(UntrustedArtifactError, match=r"data\.pkl"):
        load_torch_checkpoint(evil)
    # scan bypassed: torch.load driven by the restricted module still refuses the payload
    with pytest.raises(UntrustedArtifactError):
        torch.load(evil, weights_only=False, pickle_module=restricted_pickle_module(default_allowlist()))
    assert not marker.exists()


def test_pickled_tensors_nest_torch_load_through_the_restricted_module(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    path = tmp_path / "tensor.pkl"
    path.write_bytes(pickle.dumps({"w": torch.arange(3.0)}, protocol=2))
    assert torch.equal(load_pickle(path)["w"], torch.arange(3.0))
