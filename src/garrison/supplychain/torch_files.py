"""PyTorch files: zip checkpoints, legacy tar and stacked-pickle checkpoints, TorchScript and ``.pt2`` archives.

Only what a loader unpickles or runs is analysed; tensor storages are raw numbers and are skipped without being
read (a stored member is never touched, a compressed one never decompressed).
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Iterable

from garrison.core.rules import SC_CODE_ARCHIVE
from garrison.core.severity import Severity
from garrison.supplychain.archives import (
    ZipArchive,
    ZipEntry,
    ZipFormatError,
    iter_tar_members,
    read_zip,
)
from garrison.supplychain.blob import Blob
from garrison.supplychain.context import LimitHit, ScanContext
from garrison.supplychain.pickle_files import analyze_blob, report_analysis

__all__ = [
    "scan_torch_export",
    "scan_torch_legacy",
    "scan_torch_legacy_tar",
    "scan_torch_zip",
    "scan_torchscript",
    "torchscript_source_issues",
]

_STORAGE = re.compile(r"^(?:[^/]+/)?data/\d+$")
_BOOKKEEPING = frozenset(
    {
        "version",
        ".format_version",
        ".storage_alignment",
        "byteorder",
        ".data/version",
        ".data/serialization_id",
        "archive_format",
        "archive_version",
    }
)


def _relative(name: str) -> str:
    return name.split("/", 1)[1] if "/" in name else name


def _open_zip(blob: Blob, ctx: ScanContext) -> ZipArchive | None:
    try:
        return read_zip(blob, ctx)
    except ZipFormatError as exc:
        ctx.incomplete(blob.location, f"not a readable zip archive: {exc}")
        return None


def _read_member(archive: ZipArchive, entry: ZipEntry, ctx: ScanContext) -> Blob | None:
    location = f"{archive.blob.location}!{entry.name}"
    try:
        data = archive.read(entry, ctx)
    except ZipFormatError as exc:
        ctx.incomplete(location, f"member cannot be read: {exc}")
        return None
    except LimitHit as hit:
        if hit.limit == "timeout_s":
            raise
        ctx.incomplete(location, hit.message, limit=hit.limit)
        return None
    return archive.blob.child(data, entry.name)


def _scan_entries(
    archive: ZipArchive,
    ctx: ScanContext,
    *,
    skip: Iterable[str] = (),
    torchscript: bool = False,
) -> None:
    """Analyse every ``.pkl`` member as a pickle and every other member by its own format, skipping storages."""
    skipped = set(skip)
    for entry in archive.entries:
        if entry.is_dir or entry.name in skipped:
            continue
        rel = _relative(entry.name)
        if not entry.hidden and (_STORAGE.match(entry.name) or rel in _BOOKKEEPING):
            continue
        ctx.check_deadline()
        child = _read_member(archive, entry, ctx)
        if child is None:
            continue
        if rel.endswith((".pkl", ".debug_pkl")):
            analysis = analyze_blob(child, ctx)
            report_analysis(analysis, child, ctx, ignore=_torchscript_type if torchscript else None)
        elif torchscript and rel.startswith("code/") and rel.endswith(".py"):
            _report_source(child, ctx)
        else:
            ctx.scan_child(child)


def scan_torch_zip(blob: Blob, ctx: ScanContext) -> None:
    """A ``torch.save`` zip checkpoint: ``data.pkl`` (and any other pickle) analysed, storages skipped."""
    archive = _open_zip(blob, ctx)
    if archive is not None:
        _scan_entries(archive, ctx)


# Names TorchScript's C++ unpickler resolves itself (torch/csrc/jit/serialization/unpickler.cpp): pure list and
# tensor builders. Even read by Python's unpickler they only build values.
_TORCHSCRIPT_BUILTINS = frozenset(
    ("torch.jit._pickle", name)
    for name in (
        "build_intlist",
        "build_tensorlist",
        "build_doublelist",
        "build_boollist",
        "build_tensor_from_id",
        "restore_type_tag",
    )
)


def _torchscript_type(call: object) -> bool:
    """Calls in a TorchScript pickle that never reach Python: ``__torch__.*`` classes compiled from ``code/``
    (not an importable module) and the C++ unpickler's own builders."""
    module = getattr(call, "module", "")
    if module == "__torch__" or module.startswith("__torch__."):
        return True
    return (module, getattr(call, "qualname", "")) in _TORCHSCRIPT_BUILTINS


def scan_torchscript(blob: Blob, ctx: ScanContext) -> None:
    """A TorchScript archive (``torch.jit.save``): a program. Its pickles are analysed and its code reviewed."""
    archive = _open_zip(blob, ctx)
    if archive is None:
        return
    ctx.report(
        SC_CODE_ARCHIVE,
        blob,
        "file is a TorchScript archive: loading it runs the serialised TorchScript program",
        evidence={"kind": "torchscript", "code_files": sum(1 for n in archive.names() if "/code/" in n)},
    )
    _scan_entries(archive, ctx, torchscript=True)


# TorchScript can only call the runtime's operators; these reach beyond plain tensor maths.
_SOURCE_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\bops\.aten\.from_file\b|\btorch\.from_file\b"), "reads a file (aten::from_file)"),
    (re.compile(r"\bops\.aten\.(?:save|_save)\b|\btorch\.save\b"), "writes a file"),
    (re.compile(r"\btorch\.classes\.\w+"), "uses a custom C++ class (native code from a loaded library)"),
    (
        re.compile(r"\bops\.(?!aten\b|prim\b|quantized\b|_caffe2\b|profiler\b)(\w+)\.\w+"),
        "calls an operator from a custom library (native code)",
    ),
)


def torchscript_source_issues(source: str) -> list[tuple[int, str, str]]:
    """(line, matched text, why) for each call in TorchScript source that reaches beyond the tensor runtime."""
    issues = []
    for lineno, line in enumerate(source.splitlines(), start=1):
        for pattern, why in _SOURCE_RULES:
            match = pattern.search(line)
            if match:
                issues.append((lineno, match.group(0), why))
    return issues


def _report_source(blob: Blob, ctx: ScanContext) -> None:
    text = bytes(blob.view()[: 16 << 20]).decode("utf-8", "replace")
    for lineno, matched, why in torchscript_source_issues(text):
        ctx.report(
            SC_CODE_ARCHIVE,
            blob,
            f"TorchScript code {why}: {matched}",
            evidence={"line": lineno, "code": matched},
            severity=Severity.HIGH,
        )


def scan_torch_export(blob: Blob, ctx: ScanContext) -> None:
    """A ``torch.export`` ``.pt2`` archive: a program. Pickled weights/constants and nested ``torch.save`` payloads
    are analysed; raw weight files the configs name as unpickled are skipped."""
    archive = _open_zip(blob, ctx)
    if archive is None:
        return
    ctx.report(
        SC_CODE_ARCHIVE,
        blob,
        "file is a torch.export archive: loading it runs the exported program",
        evidence={"kind": "torch-export"},
    )
    _scan_entries(archive, ctx, skip=_raw_weight_members(archive, ctx))


def _raw_weight_members(archive: ZipArchive, ctx: ScanContext) -> set[str]:
    """Members that the weights/constants configs name as raw tensor bytes (``use_pickle: false``)."""
    raw: set[str] = set()
    for entry in archive.entries:
        if entry.hidden or not entry.name.endswith(("_weights_config.json", "_constants_config.json")):
            continue
        child = _read_member(archive, entry, ctx)
        if child is None:
            continue
        try:
            config = json.loads(bytes(child.view()[: 64 << 20]))
        except (ValueError, RecursionError):
            continue
        folder = entry.name.rsplit("/", 1)[0]
        items = config.get("config", {}) if isinstance(config, dict) else {}
        if not isinstance(items, dict):
            continue
        for item in items.values():
            if (
                isinstance(item, dict)
                and item.get("use_pickle") is False
                and isinstance(item.get("path_name"), str)
            ):
                raw.add(f"{folder}/{item['path_name']}")
    return raw


# --- legacy formats --------------------------------------------------------------------------------------------

# Element sizes of the legacy storage classes, to step over their raw bytes.
_STORAGE_SIZES = {
    "DoubleStorage": 8,
    "FloatStorage": 4,
    "HalfStorage": 2,
    "BFloat16Storage": 2,
    "LongStorage": 8,
    "IntStorage": 4,
    "ShortStorage": 2,
    "CharStorage": 1,
    "ByteStorage": 1,
    "BoolStorage": 1,
    "ComplexDoubleStorage": 16,
    "ComplexFloatStorage": 8,
    "QInt8Storage": 1,
    "QUInt8Storage": 1,
    "QInt32Storage": 4,
    "QUInt4x2Storage": 1,
    "QUInt2x4Storage": 1,
    "UntypedStorage": 1,
}


def scan_torch_legacy(blob: Blob, ctx: ScanContext) -> None:
    """A stacked-pickle checkpoint (``_use_new_zipfile_serialization=False``): magic number, protocol, sys_info,
    the object, storage keys; raw storage bytes follow and are not pickles."""
    analysis = analyze_blob(blob, ctx, max_pickles=5)
    report_analysis(analysis, blob, ctx)
    if analysis.n_pickles < 5 and not analysis.limit:
        ctx.incomplete(blob.location, f"legacy torch checkpoint ends after {analysis.n_pickles} of 5 pickles")


def scan_torch_legacy_tar(blob: Blob, ctx: ScanContext) -> None:
    """The oldest torch format: a tar of ``sys_info``, ``pickle``, ``storages`` and ``tensors``."""
    for info, child in iter_tar_members(blob, ctx):
        name = info.name
        if name in ("sys_info", "pickle"):
            report_analysis(analyze_blob(child, ctx), child, ctx)
        elif name == "storages":
            _scan_legacy_records(child, ctx, storages=True)
        elif name == "tensors":
            _scan_legacy_records(child, ctx, storages=False)
        else:
            ctx.scan_child(child)


def _scan_legacy_records(blob: Blob, ctx: ScanContext, *, storages: bool) -> None:
    """``storages``/``tensors`` members: a pickled count, then per record a pickle followed by raw bytes."""
    view = blob.view()
    first = analyze_blob(view, ctx, max_pickles=1)
    report_analysis(first, blob, ctx)
    count = _small_int_pickle(view[: first.end_offset])
    if count is None:
        ctx.incomplete(blob.location, "record count of the legacy checkpoint cannot be read")
        return
    pos = first.end_offset
    for _ in range(count):
        ctx.check_deadline()
        record = analyze_blob(view[pos:], ctx, max_pickles=1)
        report_analysis(record, blob, ctx)
        if record.n_pickles < 1:
            return
        pos += record.end_offset
        try:
            if storages:
                size = next(
                    (_STORAGE_SIZES[c.qualname] for c in record.calls if c.qualname in _STORAGE_SIZES), None
                )
                if size is None:
                    ctx.incomplete(blob.location, "storage record of an unknown storage type")
                    return
                (numel,) = struct.unpack_from("<q", view, pos)
                pos += 8 + numel * size
            else:
                (ndim,) = struct.unpack_from("<i", view, pos)
                pos += 8 + 16 * ndim + 8
        except struct.error:
            ctx.incomplete(blob.location, "legacy checkpoint record is truncated")
            return
        if pos > len(view) or pos < 0:
            ctx.incomplete(blob.location, "legacy checkpoint record runs past the end of the member")
            return
    if storages and pos < len(view):
        tail = analyze_blob(view[pos:], ctx, max_pickles=1)
        report_analysis(tail, blob, ctx)


def _small_int_pickle(data: memoryview) -> int | None:
    """The value of a pickle holding only a small int (K, M, J, I opcodes; protocol 2+ header allowed)."""
    raw = bytes(data)
    if raw[:1] == b"\x80":
        raw = raw[2:]
    if raw[:1] == b"\x95":  # FRAME
        raw = raw[9:]
    if len(raw) >= 3 and raw[0:1] == b"K" and raw[2:3] == b".":
        return raw[1]
    if len(raw) >= 4 and raw[0:1] == b"M" and raw[3:4] == b".":
        return int.from_bytes(raw[1:3], "little")
    if len(raw) >= 6 and raw[0:1] == b"J" and raw[5:6] == b".":
        return max(0, int.from_bytes(raw[1:5], "little", signed=True))
    match = re.match(rb"I(\d+)\n\.", raw)
    return int(match.group(1)) if match else None
