"""Pickle and joblib files: the symbolic analysis of the pickle machine turned into findings."""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from garrison.core.rules import SC_CODE_EXECUTION, SC_MALFORMED_PICKLE, SC_UNKNOWN_GLOBAL
from garrison.supplychain.archives import decompress_limited
from garrison.supplychain.blob import Blob
from garrison.supplychain.context import ScanContext

if TYPE_CHECKING:
    from garrison.supplychain.pickle_machine import PickleAnalysis, PickleCall

__all__ = ["JOBLIB_ARRAY_WRAPPERS", "analyze_blob", "report_analysis", "scan_joblib", "scan_pickle"]

# The classes after whose BUILD joblib writes raw array bytes into the pickle stream.
JOBLIB_ARRAY_WRAPPERS = frozenset(
    {
        ("joblib.numpy_pickle", "NumpyArrayWrapper"),
        ("sklearn.externals.joblib.numpy_pickle", "NumpyArrayWrapper"),
    }
)
_MAX_ERRORS_SHOWN = 5


def analyze_blob(
    blob: Blob | memoryview | bytes,
    ctx: ScanContext,
    *,
    joblib: bool = False,
    max_pickles: int | None = None,
) -> PickleAnalysis:
    """Run the pickle machine over a blob (or raw bytes) with the context's allowlist, limits and deadline."""
    from garrison.supplychain.pickle_machine import analyze_pickle

    data = blob.view() if isinstance(blob, Blob) else blob
    return analyze_pickle(
        data,
        allowlist=ctx.allowlist,
        max_opcodes=ctx.limits.max_opcodes,
        max_memo_entries=ctx.limits.max_memo_entries,
        deadline=ctx.deadline,
        max_pickles=max_pickles,
        joblib=joblib,
    )


def report_analysis(
    analysis: PickleAnalysis,
    blob: Blob | str,
    ctx: ScanContext,
    *,
    ignore: Callable[[PickleCall], bool] | None = None,
    require_complete: bool = True,
) -> None:
    """Findings for an analysis: GAR-SC-001 per dangerous call, GAR-SC-002 per unknown one, GAR-SC-003 for parse
    problems; a stream that did not parse to a STOP, or a limit hit, also makes the location incomplete."""
    location = blob.location if isinstance(blob, Blob) else blob
    for call in analysis.calls:
        if ignore is not None and ignore(call):
            continue
        _report_call(call, location, ctx)
    if analysis.errors:
        shown = "; ".join(analysis.errors[:_MAX_ERRORS_SHOWN])
        more = len(analysis.errors) - _MAX_ERRORS_SHOWN
        ctx.report(
            SC_MALFORMED_PICKLE,
            location,
            f"pickle stream is malformed: {shown}" + (f" (and {more} more)" if more > 0 else ""),
            evidence={"errors": list(analysis.errors[:50]), "end_offset": analysis.end_offset},
        )
        if require_complete and analysis.n_pickles == 0:
            ctx.incomplete(location, f"pickle stream could not be parsed to its end: {analysis.errors[0]}")
    if analysis.limit is not None:
        ctx.incomplete(
            location, f"pickle analysis stopped at the {analysis.limit} limit", limit=analysis.limit
        )


def _report_call(call: PickleCall, location: str, ctx: ScanContext) -> None:
    from garrison.supplychain.pickle_policy import Verdict

    name = f"{call.module}.{call.qualname}" if call.module else call.qualname
    evidence = {"callable": name, "chain": call.chain, "offset": call.offset}
    if call.verdict is Verdict.DANGEROUS:
        ctx.report(
            SC_CODE_EXECUTION,
            location,
            f"loading calls {name}: {call.reason}" + (f"; call chain: {call.chain}" if call.chain else ""),
            evidence=evidence,
            symbol=name,
        )
    elif call.verdict is Verdict.UNKNOWN:
        ctx.report(
            SC_UNKNOWN_GLOBAL,
            location,
            f"loading imports {name}, which is not on the allowlist",
            evidence=evidence,
            symbol=name,
        )


def _uses_joblib_arrays(analysis: PickleAnalysis) -> bool:
    return any((c.module, c.qualname) in JOBLIB_ARRAY_WRAPPERS for c in analysis.calls)


def scan_pickle(blob: Blob, ctx: ScanContext) -> None:
    """Scan a raw pickle stream (several pickles in a row included).

    A stream that uses joblib's array wrapper is read the way ``joblib.load`` reads it (raw array bytes skipped);
    code that only ``pickle.load`` would see in those bytes is still reported.
    """
    plain = analyze_blob(blob, ctx)
    if not _uses_joblib_arrays(plain):
        report_analysis(plain, blob, ctx)
        return
    _report_joblib(blob, ctx, plain)


def _report_joblib(blob: Blob, ctx: ScanContext, plain: PickleAnalysis | None) -> None:
    from garrison.supplychain.pickle_policy import Verdict

    analysis = analyze_blob(blob, ctx, joblib=True)
    report_analysis(analysis, blob, ctx)
    if plain is None:
        plain = analyze_blob(blob, ctx)
    seen = {(c.module, c.qualname) for c in analysis.calls}
    for call in plain.calls:
        # The raw array bytes are opcodes to pickle.load: exact dangerous names there are a hidden payload.
        # Computed names ("<dynamic>") are what random array bytes look like as opcodes: only exact names count.
        exact = "<" not in call.module and "<" not in call.qualname
        if call.verdict is Verdict.DANGEROUS and exact and (call.module, call.qualname) not in seen:
            _report_call(call, blob.location, ctx)


_ZF_HEADER = re.compile(rb"ZF\s*(?:0x)?([0-9a-fA-F]+)L?\s*")


def scan_joblib(blob: Blob, ctx: ScanContext) -> None:
    """Scan a joblib file: the zlib-compressed ``ZF`` format of old joblib, or a raw joblib pickle."""
    view = blob.view()
    if bytes(view[:2]) != b"ZF":
        _report_joblib(blob, ctx, None)
        return
    # "ZF", the payload length in hex padded to a fixed width, then a zlib stream.
    header_len = 2 + len(hex(2**64))
    match = _ZF_HEADER.match(bytes(view[:header_len]))
    if match is None:
        ctx.incomplete(blob.location, "joblib ZF header is malformed")
        return
    try:
        data, complete = decompress_limited(
            zlib.decompressobj(), view[header_len:], ctx, what="joblib content"
        )
    except zlib.error as exc:
        ctx.incomplete(blob.location, f"joblib zlib stream is corrupt: {exc}")
        return
    inner = Blob.from_bytes(data, blob.location, depth=blob.depth + 1)
    if data:
        scan_pickle(inner, ctx)
    if not complete:
        ctx.incomplete(blob.location, "joblib zlib stream is truncated")
