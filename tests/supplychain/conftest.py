"""Shared fixtures of the supply-chain tests: real model files made by the real libraries, once per session."""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(scope="session")
def torch_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """torch.save (state dict, full module, legacy stacked pickles), torch.jit.save and torch.export.save files."""
    torch = pytest.importorskip("torch")
    out = tmp_path_factory.mktemp("torch")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    files = {
        "state_dict": out / "state_dict.pt",
        "full": out / "full.pt",
        "legacy": out / "legacy.pt",
        "script": out / "script.pt",
        "export": out / "model.pt2",
    }
    torch.save(model.state_dict(), files["state_dict"])
    torch.save(model, files["full"])
    torch.save(model.state_dict(), files["legacy"], _use_new_zipfile_serialization=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.script(model), files["script"])
        program = torch.export.export(model, (torch.randn(2, 3),))
        torch.export.save(program, files["export"])
    return files


@pytest.fixture(scope="session")
def sklearn_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A fitted scikit-learn model pickled (protocols 2-5) and dumped by joblib, plain and compressed."""
    import joblib
    from sklearn.linear_model import LogisticRegression

    out = tmp_path_factory.mktemp("sklearn")
    rng = np.random.default_rng(0)
    model = LogisticRegression().fit(rng.random((30, 3)), np.arange(30) % 2)
    files: dict[str, Path] = {}
    for protocol in range(2, 6):
        path = out / f"model_p{protocol}.pkl"
        path.write_bytes(pickle.dumps(model, protocol=protocol))
        files[f"pickle{protocol}"] = path
    for key, compress in [
        ("joblib", 0),
        ("joblib_zlib", 3),
        ("joblib_gzip", ("gzip", 3)),
        ("joblib_bz2", ("bz2", 3)),
        ("joblib_lzma", ("lzma", 3)),
        ("joblib_xz", ("xz", 3)),
    ]:
        path = out / f"{key}.joblib"
        joblib.dump(model, path, compress=compress)
        files[key] = path
    return files


@pytest.fixture(scope="session")
def numpy_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("numpy")
    files = {
        "plain": out / "plain.npy",
        "object": out / "object.npy",
        "npz": out / "arrays.npz",
        "npz_compressed": out / "compressed.npz",
    }
    np.save(files["plain"], np.arange(10.0))
    np.save(files["object"], np.array([{"a": 1}, None, "x"], dtype=object), allow_pickle=True)
    np.savez(files["npz"], a=np.arange(3), b=np.array([1, "x"], dtype=object))
    np.savez_compressed(files["npz_compressed"], a=np.zeros(100))
    return files
