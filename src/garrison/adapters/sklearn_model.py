"""scikit-learn models as :class:`Classifier`, skops loading, and telling model files apart by their bytes.

Pickle and joblib files are code: they load only through ``garrison.adapters.load``, behind the model-file scanner.
:func:`sniff_model_format` only reads bytes and never imports or unpickles anything.
"""

from __future__ import annotations

import io
import pickletools
import struct
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from garrison.adapters.base import BaseClassifier, InputSpec
from garrison.core.errors import ModelInputMismatchError, ModelLoadError, UntrustedArtifactError

if TYPE_CHECKING:
    from garrison.data.codec import FeatureCodec

__all__ = ["SklearnClassifier", "load_skops", "sniff_model_format"]


class SklearnClassifier(BaseClassifier):
    """A fitted scikit-learn classifier (or Pipeline) seen through the :class:`Classifier` interface.

    ``predict_proba`` takes codec space. With a ``codec`` and an estimator fitted on a DataFrame (it has
    ``feature_names_in_``), each batch is decoded leniently to records first, so pipelines with string and
    categorical columns work; otherwise the array goes in as ``(n, n_features)``. Estimators without
    ``predict_proba`` are scored from ``decision_function`` (sigmoid for two classes, softmax otherwise), or
    from ``predict`` as one-hot rows. Errors raised by the estimator propagate unchanged.
    """

    def __init__(
        self,
        estimator: Any,
        *,
        codec: FeatureCodec | None = None,
        name: str = "model",
        input_spec: InputSpec | None = None,
    ) -> None:
        classes = getattr(estimator, "classes_", None)
        if classes is None or not hasattr(estimator, "predict"):
            raise ModelLoadError(
                f"{type(estimator).__name__} is not a fitted scikit-learn classifier (it has no `classes_`)"
            )
        # multi-output estimators keep a list of class arrays
        multi = isinstance(classes, list) and any(isinstance(c, np.ndarray | list) for c in classes)
        classes_arr = np.asarray(classes, dtype=object if multi else None)
        if multi or classes_arr.ndim != 1:
            raise ModelLoadError(
                f"{type(estimator).__name__} is a multi-output classifier; one output is supported"
            )
        if len(classes_arr) < 2:
            raise ModelLoadError(f"{type(estimator).__name__} was fitted on a single class")
        if input_spec is None:
            input_spec = _input_spec(estimator, codec)
        super().__init__(
            name=name, n_classes=len(classes_arr), input_spec=input_spec, classes=tuple(classes_arr.tolist())
        )
        self._estimator = estimator
        self._codec = codec
        self._columns: list[str] | None = None
        names_in = getattr(estimator, "feature_names_in_", None)
        if codec is not None and names_in is not None:
            names = [str(n) for n in names_in]
            known = set(codec.schema.names())
            missing = [n for n in names if n not in known]
            if missing:
                raise ModelInputMismatchError(
                    f"the model needs feature(s) the data does not have: {', '.join(map(repr, missing[:10]))}",
                    field=missing[0],
                )
            self._columns = names

    @property
    def estimator(self) -> Any:
        """The wrapped estimator."""
        return self._estimator

    @property
    def codec(self) -> FeatureCodec | None:
        return self._codec

    def model_input(self, x: np.ndarray) -> Any:
        """What the estimator takes for rows ``x`` of codec space: the named raw columns, or the flat array."""
        if self._codec is not None and self._columns is not None:
            records = self._codec.decode(x.reshape(len(x), -1), strict=False)
            return records[self._columns]
        return x.reshape(len(x), -1)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities ``(n, n_classes)``, float64, columns in the order of ``classes``."""
        arr = np.asarray(x)
        if arr.ndim == 0:
            raise ModelInputMismatchError(
                f"expected a batch of shape (n, {self.input_spec.shape}), got a scalar", field="x"
            )
        if len(arr) == 0:
            return np.empty((0, self.n_classes), dtype=np.float64)
        est = self._estimator
        inputs = self.model_input(arr)
        if hasattr(est, "predict_proba"):
            return np.asarray(est.predict_proba(inputs), dtype=np.float64)
        if hasattr(est, "decision_function"):
            return _scores_to_proba(np.asarray(est.decision_function(inputs), dtype=np.float64))
        predicted = np.asarray(est.predict(inputs))
        index = {c: i for i, c in enumerate(np.asarray(est.classes_).tolist())}
        out = np.zeros((len(predicted), self.n_classes), dtype=np.float64)
        out[np.arange(len(predicted)), [index[p] for p in predicted.tolist()]] = 1.0
        return out


def _input_spec(estimator: Any, codec: FeatureCodec | None) -> InputSpec:
    if codec is not None:
        return InputSpec(codec.schema.sample_shape, "float64", codec.schema.names())
    n_in = getattr(estimator, "n_features_in_", None)
    if n_in is None:
        raise ModelLoadError(f"cannot tell the input size of {type(estimator).__name__}; pass `input_spec`")
    names_in = getattr(estimator, "feature_names_in_", None)
    names = tuple(str(n) for n in names_in) if names_in is not None else None
    return InputSpec((int(n_in),), "float64", names)


def _scores_to_proba(scores: np.ndarray) -> np.ndarray:
    if scores.ndim == 1 or scores.shape[1] == 1:
        s = scores.reshape(-1)
        p = np.empty_like(s)
        pos = s >= 0
        # the two branches of the logistic keep exp() from overflowing
        p[pos] = 1.0 / (1.0 + np.exp(-s[pos]))
        e = np.exp(s[~pos])
        p[~pos] = e / (1.0 + e)
        return np.column_stack([1.0 - p, p])
    z = scores - scores.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


# ------------------------------------------------------------------------------------------------ loading


def load_skops(path: str | Path, *, trusted: Sequence[str] = ()) -> Any:
    """Load a skops file, refusing it unless every type skops does not trust by default is in ``trusted``.

    :class:`UntrustedArtifactError` names the types left to trust; :class:`ModelLoadError` for a missing,
    unreadable or corrupt file.
    """
    p = Path(path)
    try:
        import skops.io as sio
    except ImportError:  # pragma: no cover - skops is a core dependency
        from garrison.core.errors import MissingDependencyError

        raise MissingDependencyError("skops", extra="all") from None
    if not p.is_file():
        raise ModelLoadError("model file not found", path=p)
    try:
        untrusted = sio.get_untrusted_types(file=p)
    except MemoryError:
        raise
    except Exception as exc:  # corrupt archives raise zip, json and key errors alike
        raise ModelLoadError(f"not a readable skops file: {exc.__class__.__name__}", path=p) from None
    left = sorted(set(untrusted) - set(trusted))
    if left:
        raise UntrustedArtifactError(
            f"skops file uses types that are not trusted: {', '.join(left)}; review them and list them as trusted",
            path=p,
        )
    try:
        return sio.load(p, trusted=list(untrusted))
    except MemoryError:
        raise
    except Exception as exc:
        raise ModelLoadError(f"cannot load skops file: {exc.__class__.__name__}: {exc}", path=p) from None


_SNIFF_BYTES = 1 << 16
_SCAN_CHUNK = 1 << 20
_JOBLIB_MARKER = b"joblib.numpy_pickle"
# compressed joblib streams: zlib (several levels), gzip, bz2, xz, lzma
_COMPRESSED = (
    b"\x78\x01",
    b"\x78\x5e",
    b"\x78\x9c",
    b"\x78\xda",
    b"\x1f\x8b",
    b"BZh",
    b"\xfd7zXZ\x00",
    b"]\x00\x00",
)
# fields of onnx.ModelProto and their protobuf wire types (0 varint, 2 length-delimited)
_ONNX_FIELDS = {1: 0, 2: 2, 3: 2, 4: 2, 5: 0, 6: 2, 7: 2, 8: 2, 14: 2, 20: 2, 25: 2, 26: 2}


def sniff_model_format(path: str | Path) -> str:
    """The format of a model file from its bytes alone (nothing is imported, unpickled or executed).

    One of ``skops``, ``pickle``, ``joblib``, ``onnx``, ``torchscript``, ``torch-export``, ``torch-zip``,
    ``safetensors`` or ``unknown``. :class:`ModelLoadError` when the file cannot be read.
    """
    p = Path(path)
    try:
        size = p.stat().st_size
        with p.open("rb") as fh:
            head = fh.read(_SNIFF_BYTES)
            if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
                return _sniff_zip(fh)
            if _is_safetensors(head, size):
                return "safetensors"
            if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
                return "joblib" if _contains(fh, _JOBLIB_MARKER) else "pickle"
            if head.startswith(_COMPRESSED):
                return "joblib" if _decompressed_pickle(head) else "unknown"
            if _is_onnx(fh, size):
                return "onnx"
            if _is_old_pickle(head, size):
                return "joblib" if _contains(fh, _JOBLIB_MARKER) else "pickle"
    except OSError as exc:
        raise ModelLoadError(f"cannot read file: {exc.strerror or exc.__class__.__name__}", path=p) from None
    return "unknown"


def _sniff_zip(fh: io.BufferedReader) -> str:
    fh.seek(0)
    try:
        with zipfile.ZipFile(fh) as zf:
            names = zf.namelist()
    except Exception:  # a damaged central directory fails in many ways; none of them is a model
        return "unknown"
    if "schema.json" in names:
        return "skops"
    # torch archives put everything under one top-level folder named after the file
    base = {n.split("/", 1)[1] if "/" in n else n for n in names}
    if (
        "archive_format" in base
        or "serialized_exported_program.json" in base
        or any(b.startswith("models/") and b.endswith(".json") for b in base)
    ):
        return "torch-export"
    if "data.pkl" in base:
        if "constants.pkl" in base or any(b.startswith("code/") for b in base):
            return "torchscript"
        return "torch-zip"
    return "unknown"


def _is_safetensors(head: bytes, size: int) -> bool:
    if len(head) < 10:
        return False
    (n,) = struct.unpack("<Q", head[:8])
    return 2 <= n <= size - 8 and head[8:9] == b"{"


def _contains(fh: io.BufferedReader, marker: bytes) -> bool:
    fh.seek(0)
    tail = b""
    while chunk := fh.read(_SCAN_CHUNK):
        if marker in tail + chunk:
            return True
        tail = chunk[-len(marker) :]
    return False


def _decompressed_pickle(head: bytes) -> bool:
    try:
        if head.startswith(b"\x78"):
            data = zlib.decompressobj().decompress(head, 64)
        elif head.startswith(b"\x1f\x8b"):
            data = zlib.decompressobj(wbits=31).decompress(head, 64)
        elif head.startswith(b"BZh"):
            import bz2

            data = bz2.BZ2Decompressor().decompress(head, 64)
        else:
            import lzma

            data = lzma.LZMADecompressor().decompress(head, 64)
    except (zlib.error, OSError, EOFError, ValueError, ImportError):
        return False
    return len(data) >= 2 and data[0] == 0x80 and 2 <= data[1] <= 5


def _is_old_pickle(head: bytes, size: int) -> bool:
    """A protocol 0/1 pickle: the whole stream parses as pickle opcodes and ends with STOP."""
    if size > _SNIFF_BYTES or not head.endswith(b".") or len(head) < 2:
        return False
    try:
        ops = list(pickletools.genops(head))
    except Exception:  # any malformed opcode stream means "not a pickle"
        return False
    return bool(ops) and ops[-1][0].name == "STOP" and ops[-1][2] == len(head) - 1


def _read_varint(fh: io.BufferedReader) -> int | None:
    shift = result = 0
    for _ in range(10):
        b = fh.read(1)
        if not b:
            return None
        result |= (b[0] & 0x7F) << shift
        if not b[0] & 0x80:
            return result
        shift += 7
    return None


def _is_onnx(fh: io.BufferedReader, size: int) -> bool:
    """Walks the top-level protobuf fields: all must be ModelProto fields, ending exactly at the end of the file,
    with ``ir_version`` and ``graph`` present."""
    fh.seek(0)
    seen: set[int] = set()
    while fh.tell() < size:
        tag = _read_varint(fh)
        if tag is None:
            return False
        number, wire = tag >> 3, tag & 7
        if _ONNX_FIELDS.get(number) != wire:
            return False
        value = _read_varint(fh)
        if value is None:
            return False
        if wire == 2:
            if fh.tell() + value > size:
                return False
            fh.seek(value, io.SEEK_CUR)
        seen.add(number)
    return {1, 7} <= seen
