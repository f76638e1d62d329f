"""The static table from a detected format to the scanner that reads it.

Scanners are named as ``"module:function"`` strings and imported on first use, so a format whose scanner module
is missing (or whose optional dependency is) makes its files incomplete, never clean.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from garrison.supplychain.blob import Blob
    from garrison.supplychain.context import ScanContext

__all__ = ["DIRECTORY_SCANNERS", "SCANNERS", "dispatch", "dispatch_directory", "resolve_scanner"]

_PKG = "garrison.supplychain"

# Every format detect_format can return. ``None``: nothing in it can run code, so there is nothing to scan.
# A leading "?" marks a scanner that only looks for extras in plain data (JSON): when it is absent the data
# itself still runs nothing. A format missing here is unsupported: its files are incomplete.
SCANNERS: Mapping[str, str | None] = {
    "pickle": f"{_PKG}.pickle_files:scan_pickle",
    "joblib": f"{_PKG}.pickle_files:scan_joblib",
    "zip": f"{_PKG}.archives:scan_zip",
    "tar": f"{_PKG}.archives:scan_tar",
    "gzip": f"{_PKG}.archives:scan_compressed",
    "bz2": f"{_PKG}.archives:scan_compressed",
    "xz": f"{_PKG}.archives:scan_compressed",
    "lzma": f"{_PKG}.archives:scan_compressed",
    "zlib": f"{_PKG}.archives:scan_compressed",
    "torch-zip": f"{_PKG}.torch_files:scan_torch_zip",
    "torchscript": f"{_PKG}.torch_files:scan_torchscript",
    "torch-export": f"{_PKG}.torch_files:scan_torch_export",
    "torch-legacy-tar": f"{_PKG}.torch_files:scan_torch_legacy_tar",
    "torch-legacy": f"{_PKG}.torch_files:scan_torch_legacy",
    "npy": f"{_PKG}.numpy_files:scan_npy",
    "npz": f"{_PKG}.numpy_files:scan_npz",
    "keras-zip": f"{_PKG}.keras:scan_keras_zip",
    "hdf5": f"{_PKG}.hdf5:scan_hdf5",
    "savedmodel-pb": f"{_PKG}.tensorflow:scan_saved_model_pb",
    "onnx": f"{_PKG}.onnx_files:scan_onnx",
    "safetensors": f"{_PKG}.safetensors_files:scan_safetensors",
    "gguf": f"{_PKG}.gguf:scan_gguf",
    "json": f"?{_PKG}.huggingface:scan_json",
    "python": None,
    "text": None,
    "empty": None,
    "unknown": None,
}

# Directory layouts that mean more than their files (scanned in addition to every file inside them).
DIRECTORY_SCANNERS: Mapping[str, str] = {
    "huggingface": f"{_PKG}.huggingface:scan_huggingface_dir",
    "savedmodel": f"{_PKG}.tensorflow:scan_saved_model_dir",
}

_UNSUPPORTED_REASON = {
    "7z": "7z archives are not supported; extract them and scan the content",
    "zstd": "zstd-compressed files are not supported; decompress them and scan the content",
    "lz4": "lz4-compressed files are not supported; decompress them and scan the content",
    "rar": "rar archives are not supported; extract them and scan the content",
}


def resolve_scanner(spec: str) -> Callable[..., None] | None:
    """Import ``"module:function"``; ``None`` when the scanner's module does not exist (yet)."""
    module_name, _, func_name = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            return None
        raise
    func = getattr(module, func_name, None)
    return func if callable(func) else None


def dispatch(blob: Blob, ctx: ScanContext) -> None:
    """Detect ``blob``'s format and run its scanner (a blob that is also a zip at its end is scanned as one too)."""
    from garrison.supplychain.formats import detect_format, trailing_zip

    fmt = detect_format(blob)
    ctx.scanned(blob, fmt)
    _run(fmt, blob, ctx)
    if fmt not in _ZIP_FAMILY and trailing_zip(blob):
        # A polyglot: loaders that look for the zip directory at the end (zipfile, keras) see a zip here.
        _run("zip", blob, ctx)


_ZIP_FAMILY = frozenset({"zip", "torch-zip", "torchscript", "torch-export", "npz", "keras-zip"})


def _run(fmt: str, blob: Blob, ctx: ScanContext) -> None:
    if fmt in _UNSUPPORTED_REASON:
        ctx.incomplete(blob.location, _UNSUPPORTED_REASON[fmt])
        return
    if fmt not in SCANNERS:
        ctx.incomplete(blob.location, f"unsupported format {fmt}")
        return
    spec = SCANNERS[fmt]
    if spec is None:
        return
    optional = spec.startswith("?")
    try:
        scanner = resolve_scanner(spec.lstrip("?"))
    except ImportError as exc:
        ctx.incomplete(blob.location, f"scanner for {fmt} cannot be loaded: {exc}")
        return
    if scanner is None:
        if not optional:
            ctx.incomplete(blob.location, f"no scanner for {fmt}")
        return
    scanner(blob, ctx)


def dispatch_directory(kind: str, path: Path, location: str, ctx: ScanContext) -> None:
    """Run the directory scanner of ``kind`` (see :func:`garrison.supplychain.formats.detect_directory`)."""
    spec = DIRECTORY_SCANNERS[kind]
    try:
        scanner = resolve_scanner(spec)
    except ImportError as exc:
        ctx.incomplete(location, f"scanner for {kind} cannot be loaded: {exc}")
        return
    if scanner is None:
        ctx.incomplete(location, f"no scanner for {kind}")
        return
    scanner(path, location, ctx)
