import bz2
import gzip
import io
import lzma
import pickle
import struct
import tarfile
import zipfile
import zlib
from pathlib import Path

import pytest

from garrison.supplychain import Blob, detect_format
from garrison.supplychain.formats import detect_directory, looks_like_pickle, trailing_zip


def fmt(data: bytes, name: str = "x") -> str:
    return detect_format(Blob.from_bytes(data, name))


def fmt_file(path: Path) -> str:
    with Blob.from_path(path, path.name) as blob:
        return detect_format(blob)


def test_real_torch_files(torch_files: dict[str, Path]) -> None:
    assert fmt_file(torch_files["state_dict"]) == "torch-zip"
    assert fmt_file(torch_files["full"]) == "torch-zip"
    assert fmt_file(torch_files["legacy"]) == "torch-legacy"
    assert fmt_file(torch_files["script"]) == "torchscript"
    assert fmt_file(torch_files["export"]) == "torch-export"


def test_real_sklearn_and_joblib_files(sklearn_files: dict[str, Path]) -> None:
    expected = {
        "pickle2": "pickle",
        "pickle5": "pickle",
        "joblib": "pickle",
        "joblib_zlib": "zlib",
        "joblib_gzip": "gzip",
        "joblib_bz2": "bz2",
        "joblib_lzma": "lzma",
        "joblib_xz": "xz",
    }
    for key, want in expected.items():
        assert fmt_file(sklearn_files[key]) == want, key


def test_real_numpy_files(numpy_files: dict[str, Path]) -> None:
    assert fmt_file(numpy_files["plain"]) == "npy"
    assert fmt_file(numpy_files["object"]) == "npy"
    assert fmt_file(numpy_files["npz"]) == "npz"
    assert fmt_file(numpy_files["npz_compressed"]) == "npz"


@pytest.mark.parametrize("protocol", range(6))
def test_pickles_of_every_protocol(protocol: int) -> None:
    assert fmt(pickle.dumps({"a": [1, 2.5, "x"], "b": (None, True)}, protocol=protocol)) == "pickle"


def test_extension_never_decides_for_clear_content() -> None:
    assert fmt(pickle.dumps([1, 2], protocol=2), "weights.safetensors") == "pickle"
    assert fmt(b"# title\nsome prose here\n", "model.pkl") == "text"
    assert fmt(b'{"architectures": ["Bert"]}', "model.bin") == "json"


def test_protocol0_payload_and_text() -> None:
    payload = b"cos\nsystem\n(S'echo hi'\ntR."
    assert fmt(payload) == "pickle"
    assert fmt(payload[:-1] + b"\x00garbage") == "pickle"  # a payload followed by garbage is still a payload
    assert fmt(b"class Model(nn.Module):\n    pass\n") == "python"
    assert fmt(b"import os\nprint(os.getcwd())\n") == "python"
    assert fmt(b"I am a readme\n") == "text"
    assert fmt(b"Lorem ipsum dolor sit amet\n") == "text"
    assert not looks_like_pickle(b"daily notes\n")
    # Ambiguous short protocol-0 text: the name tips it.
    assert looks_like_pickle(b"I12\nI13\n", lenient=True)


def test_compressed_wrappers_and_archives() -> None:
    inner = pickle.dumps([1], protocol=4)
    assert fmt(gzip.compress(inner)) == "gzip"
    assert fmt(bz2.compress(inner)) == "bz2"
    assert fmt(lzma.compress(inner)) == "xz"
    assert fmt(lzma.compress(inner, format=lzma.FORMAT_ALONE)) == "lzma"
    assert fmt(zlib.compress(inner)) == "zlib"
    assert fmt(b"7z\xbc\xaf\x27\x1c" + b"\x00" * 30) == "7z"
    assert fmt(b"BZ is not bzip2 text\n") == "text"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("a.pkl")
        info.size = len(inner)
        tar.addfile(info, io.BytesIO(inner))
    assert fmt(buf.getvalue()) == "tar"


def _zip(names: list[str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name in names:
            zf.writestr(name, b"x")
    return buf.getvalue()


def test_zip_kinds_by_member_names() -> None:
    assert fmt(_zip(["config.json", "metadata.json", "model.weights.h5"])) == "keras-zip"
    assert fmt(_zip(["a.npy", "b.npy"])) == "npz"
    assert fmt(_zip(["arc/data.pkl", "arc/version", "arc/data/0"])) == "torch-zip"
    assert fmt(_zip(["arc/data.pkl", "arc/code/__torch__/m.py", "arc/constants.pkl"])) == "torchscript"
    assert fmt(_zip(["arc/archive_format", "arc/models/model.json"])) == "torch-export"
    assert fmt(_zip(["readme.txt"])) == "zip"
    assert fmt(_zip([])) == "zip"


def test_other_magics() -> None:
    header = b'{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'
    assert fmt(struct.pack("<Q", len(header)) + header + b"\x00" * 4) == "safetensors"
    assert fmt(b"GGUF\x03\x00\x00\x00" + b"\x00" * 16) == "gguf"
    assert fmt(b"\x89HDF\r\n\x1a\n" + b"\x00" * 40) == "hdf5"
    assert fmt(b"\x00" * 512 + b"\x89HDF\r\n\x1a\n" + b"\x00" * 40) == "hdf5"
    assert fmt(b"") == "empty"
    assert fmt(bytes(range(256))[1:]) == "unknown"


def test_onnx_and_savedmodel_protobufs() -> None:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    assert fmt(helper.make_model(graph).SerializeToString()) == "onnx"
    assert onnx is not None
    meta_graph = b"\x0a\x02\x0a\x00"  # MetaGraphDef{meta_info_def{}}
    assert fmt(b"\x08\x01\x12" + bytes([len(meta_graph)]) + meta_graph) == "savedmodel-pb"


def test_trailing_zip_polyglot() -> None:
    payload = pickle.dumps([1], protocol=2) + _zip(["a.pkl"])
    blob = Blob.from_bytes(payload, "poly.pkl")
    assert detect_format(blob) == "pickle"
    assert trailing_zip(blob)
    assert not trailing_zip(Blob.from_bytes(pickle.dumps([1]), "p"))


def test_detect_directory(tmp_path: Path) -> None:
    assert detect_directory(tmp_path) == ()
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "saved_model.pb").write_bytes(b"")
    assert detect_directory(tmp_path) == ("huggingface", "savedmodel")


def test_safetensors_with_a_header_length_past_the_end() -> None:
    assert fmt(struct.pack("<Q", 2**40) + b'{"a": 1}') == "safetensors"
    assert fmt(b'var x = {"a": 1}\n') == "text"
