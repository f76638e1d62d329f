"""Symbolic emulation of the pickle virtual machine: what loading a pickle would import and call, never run.

:func:`analyze_pickle` walks every opcode of protocols 0 to 5 the way ``pickle.Unpickler`` would, but on
symbolic values (see :mod:`garrison.supplychain.callchain`): a GLOBAL becomes a name judged by the allowlist, a
REDUCE a call expression, a BUILD on an object of an unvetted class a call of its ``__setstate__``. Large byte and
string payloads are skipped by offset arithmetic, never copied, and runs of numbers are consumed by regular
expressions, so tensor-heavy files scan at disk speed and opcode-heavy ones far faster than ``pickletools``.
Hostile input is expected input: the function never raises; parse problems become ``errors``, and a budget that
runs out sets ``limit``.
"""

from __future__ import annotations

import gc
import re
import struct
import time
from _compat_pickle import IMPORT_MAPPING, NAME_MAPPING
from collections.abc import Callable
from dataclasses import dataclass
from itertools import repeat
from typing import Any

from garrison.supplychain.callchain import Call, Container, Name, Opaque, Text, render
from garrison.supplychain.pickle_policy import Allowlist, Verdict

__all__ = ["PickleAnalysis", "PickleCall", "analyze_pickle"]

_CHECK_EVERY = 65_536  # opcodes between two looks at the clock
_MAX_ERRORS = 64
_MAX_CALLS = 10_000  # distinct calls kept; beyond it only non-safe ones are
_MAX_NESTING = 4  # pickles inside pickles (joblib object arrays, torch storages pickled by value)
_SMALL_TEXT = 65_536  # strings up to this many bytes are decoded; longer ones stay offsets into the stream
_SMALL_BYTES = 4_096
_MAX_NAME_BYTES = 1 << 20
_MAX_LONG_BYTES = 1 << 16

_SAFE, _UNKNOWN, _DANGEROUS = Verdict.SAFE, Verdict.UNKNOWN, Verdict.DANGEROUS
_NUMBER = Opaque("number")
_MISSING = object()
_ARRAY = Opaque("ndarray")

_U8 = struct.Struct("<Q").unpack_from
_U32 = struct.Struct("<I").unpack_from
_I32 = struct.Struct("<i").unpack_from
_U16 = struct.Struct("<H").unpack_from
_F64 = struct.Struct(">d").unpack_from
_NL = re.compile(b"\n")
# Runs of fixed-width number opcodes (BINFLOAT, BININT, BININT2, BININT1, NONE, NEWTRUE, NEWFALSE): the bulk of
# opcode-heavy pickles. A regular expression consumes them at C speed; the run is pushed as placeholders.
_RUN = re.compile(rb"(?:G.{8}|J.{4}|M.{2}|K.|[N\x88\x89]){16,}", re.DOTALL)
_ATOM = re.compile(rb"G.{8}|J.{4}|M.{2}|K.|[N\x88\x89]", re.DOTALL)
_ATOMS = frozenset(b"GJMKN\x88\x89")
_UNIFORM = {
    ord("G"): (9, re.compile(rb"(?:G.{8})+", re.DOTALL)),
    ord("J"): (5, re.compile(rb"(?:J.{4})+", re.DOTALL)),
    ord("M"): (3, re.compile(rb"(?:M.{2})+", re.DOTALL)),
    ord("K"): (2, re.compile(rb"(?:K.)+", re.DOTALL)),
}
_DTYPE_CODE = re.compile(r"[<>|=]?([a-zA-Z])(\d*)")
_DTYPE_SIZES = {"b": 1, "B": 1, "h": 2, "H": 2, "i": 4, "I": 4, "l": 8, "L": 8, "q": 8, "Q": 8, "e": 2, "f": 4, "d": 8,
                "g": 16, "F": 8, "D": 16, "G": 32, "?": 1, "O": 8, "M": 8, "m": 8}  # fmt: skip
_JOBLIB_WRAPPERS = frozenset(
    {
        ("joblib.numpy_pickle", "NumpyArrayWrapper"),
        ("sklearn.externals.joblib.numpy_pickle", "NumpyArrayWrapper"),
    }
)
_TEXT_CODECS = frozenset({"latin1", "latin-1", "latin_1", "iso-8859-1", "iso8859-1", "iso8859_1", "l1", "ascii",
                          "utf-8", "utf8", "utf_8"})  # fmt: skip
_OPNAMES = {
    0x28: "MARK", 0x2E: "STOP", 0x30: "POP", 0x31: "POP_MARK", 0x32: "DUP", 0x46: "FLOAT", 0x49: "INT",
    0x4A: "BININT", 0x4B: "BININT1", 0x4C: "LONG", 0x4D: "BININT2", 0x4E: "NONE", 0x50: "PERSID",
    0x51: "BINPERSID", 0x52: "REDUCE", 0x53: "STRING", 0x54: "BINSTRING", 0x55: "SHORT_BINSTRING",
    0x56: "UNICODE", 0x58: "BINUNICODE", 0x61: "APPEND", 0x62: "BUILD", 0x63: "GLOBAL", 0x64: "DICT",
    0x7D: "EMPTY_DICT", 0x65: "APPENDS", 0x67: "GET", 0x68: "BINGET", 0x69: "INST", 0x6A: "LONG_BINGET",
    0x6C: "LIST", 0x5D: "EMPTY_LIST", 0x6F: "OBJ", 0x70: "PUT", 0x71: "BINPUT", 0x72: "LONG_BINPUT",
    0x73: "SETITEM", 0x74: "TUPLE", 0x29: "EMPTY_TUPLE", 0x75: "SETITEMS", 0x47: "BINFLOAT", 0x80: "PROTO",
    0x81: "NEWOBJ", 0x82: "EXT1", 0x83: "EXT2", 0x84: "EXT4", 0x85: "TUPLE1", 0x86: "TUPLE2", 0x87: "TUPLE3",
    0x88: "NEWTRUE", 0x89: "NEWFALSE", 0x8A: "LONG1", 0x8B: "LONG4", 0x42: "BINBYTES", 0x43: "SHORT_BINBYTES",
    0x8C: "SHORT_BINUNICODE", 0x8D: "BINUNICODE8", 0x8E: "BINBYTES8", 0x8F: "EMPTY_SET", 0x90: "ADDITEMS",
    0x91: "FROZENSET", 0x92: "NEWOBJ_EX", 0x93: "STACK_GLOBAL", 0x94: "MEMOIZE", 0x95: "FRAME",
    0x96: "BYTEARRAY8", 0x97: "NEXT_BUFFER", 0x98: "READONLY_BUFFER",
}  # fmt: skip


@dataclass(frozen=True)
class PickleCall:
    """A global the pickle imports or calls, with the verdict of the allowlist and the call chain that uses it."""

    module: str
    qualname: str
    verdict: Verdict
    reason: str
    chain: str  # e.g. "getattr(__import__('os'), 'system')('id')", arguments cut short
    offset: int  # byte offset of the opcode that made the call (REDUCE/INST/OBJ/NEWOBJ/BUILD) or imported it


@dataclass(frozen=True)
class PickleAnalysis:
    """What loading a pickle stream would import and call, and how far the stream could be parsed."""

    calls: tuple[PickleCall, ...]  # deduplicated by (module, qualname, verdict), in order of first offset
    end_offset: int  # just after the last STOP parsed, or where parsing stopped when there was none
    n_pickles: int
    n_opcodes: int
    protocol: int | None
    errors: tuple[str, ...]
    limit: str | None  # the ScanLimits field that stopped the analysis, or None

    @property
    def dangerous(self) -> tuple[PickleCall, ...]:
        """Calls of known code-execution or indirection callables."""
        return tuple(c for c in self.calls if c.verdict is Verdict.DANGEROUS)

    @property
    def unknown(self) -> tuple[PickleCall, ...]:
        """Calls of globals that are on neither list."""
        return tuple(c for c in self.calls if c.verdict is Verdict.UNKNOWN)


def analyze_pickle(
    data: bytes | bytearray | memoryview,
    *,
    allowlist: Allowlist,
    max_opcodes: int = 10**8,
    max_memo_entries: int = 10**6,
    deadline: float | None = None,
    max_pickles: int | None = None,
    joblib: bool = False,
) -> PickleAnalysis:
    """Emulate loading ``data`` symbolically and report every global it imports or calls. Never raises.

    ``deadline`` is a ``time.monotonic()`` instant; ``max_pickles`` stops after that many STOPs (legacy torch
    files frame several pickles); ``joblib`` skips the raw array bytes joblib writes after each
    ``NumpyArrayWrapper``.
    """
    machine = _Machine(allowlist, max_opcodes, max_memo_entries, deadline, joblib)
    # The symbolic values hold no reference cycles worth collecting mid-run, and the collector's passes over
    # millions of live nodes would cost more than the analysis itself.
    collecting = gc.isenabled()
    gc.disable()
    try:
        machine.run_top(_as_buffer(data), max_pickles)
    except Exception as exc:  # the last guard of "never raises": report, do not propagate
        machine.errors.append(f"internal error while parsing: {type(exc).__name__}: {exc}")
    finally:
        if collecting:
            gc.enable()
    return machine.result()


def _as_buffer(data: bytes | bytearray | memoryview) -> bytes | memoryview:
    if isinstance(data, bytes):
        return data
    view = memoryview(data)
    if view.ndim == 1 and view.itemsize == 1 and view.format in ("B", "b", "c"):
        return view.cast("B") if view.format != "B" else view
    if view.c_contiguous:
        return view.cast("B")
    return view.tobytes()


class _Stop(Exception):
    """Abandon the current stream (truncated, unknown opcode, too many errors)."""


class _LimitHit(Exception):
    def __init__(self, limit: str) -> None:
        super().__init__(limit)
        self.limit = limit


class _Machine:
    def __init__(
        self, allowlist: Allowlist, max_opcodes: int, max_memo: int, deadline: float | None, joblib: bool
    ) -> None:
        self.allowlist = allowlist
        self.max_opcodes = max_opcodes
        self.max_memo = max_memo
        self.deadline = deadline
        self.joblib = joblib
        self.calls: dict[tuple[str, str, Verdict], list[Any]] = {}
        self.errors: list[str] = []
        self.limit: str | None = None
        self.n_opcodes = 0
        self.n_pickles = 0
        self.protocol: int | None = None
        self.end_offset = 0
        self.depth = 0
        # builtins.getattr is judged by its uses: getattr(SafeClass, 'name') is how protocols < 4 pickle nested
        # names and methods. id(name) -> [name, references, allowlisted uses, offset, reason]
        self.deferred: dict[int, list[Any]] = {}

    # ----------------------------------------------------------------------------------------------- results
    def result(self) -> PickleAnalysis:
        entries = sorted(self.calls.items(), key=lambda kv: kv[1][0])
        calls = tuple(
            PickleCall(module, qualname, verdict, reason, chain, offset)
            for (module, qualname, verdict), (offset, chain, reason, _is_call) in entries
        )
        return PickleAnalysis(
            calls=calls,
            end_offset=self.end_offset,
            n_pickles=self.n_pickles,
            n_opcodes=self.n_opcodes,
            protocol=self.protocol,
            errors=tuple(self.errors),
            limit=self.limit,
        )

    def error(self, message: str) -> None:
        if len(self.errors) < _MAX_ERRORS:
            self.errors.append(message)
            return
        self.errors[-1] = "too many errors; parsing abandoned"
        raise _Stop

    def record(
        self, module: str, qualname: str, verdict: Verdict, reason: str, expr: Any, offset: int, is_call: bool
    ) -> None:
        key = (module, qualname, verdict)
        entry = self.calls.get(key)
        if entry is None:
            if len(self.calls) >= _MAX_CALLS and verdict is _SAFE:
                return
            self.calls[key] = [offset, _chain(expr), reason, is_call]
        elif is_call and not entry[3]:
            entry[1] = _chain(expr)
            entry[2] = reason
            entry[3] = True

    # ----------------------------------------------------------------------------------------------- driving
    def run_top(self, data: bytes | memoryview, max_pickles: int | None) -> None:
        if len(data) == 0:
            self.error("empty pickle stream")
            return
        try:
            self.run(data, 0, len(data), max_pickles=max_pickles, report_at=None, top=True)
        except _LimitHit as hit:
            self.limit = hit.limit
        for ref, refs, safe_uses, offset, reason in self.deferred.values():
            if refs > safe_uses:
                self.record(ref.module, ref.qualname, ref.verdict, reason, ref, offset, False)

    def run(
        self,
        data: bytes | memoryview,
        pos: int,
        end: int,
        *,
        max_pickles: int | None,
        report_at: int | None,
        top: bool = False,
    ) -> int:
        """Parse pickles from ``pos``; returns the offset after the last STOP (or where parsing stopped).

        ``report_at`` replaces every call's offset (for pickles nested in a byte string of the outer stream).
        """
        stack: list[Any] = []
        marks: list[int] = []
        memo: dict[int, Any] = {}
        push = stack.append
        proto = 0
        frame_end = -1
        pickles = 0
        start = pos
        last_stop = -1
        op_pos = pos
        budget = self.max_opcodes - self.n_opcodes
        ops = 0
        next_check = 0
        max_memo = self.max_memo
        at = report_at
        cap = Container.CAP
        deferred = self.deferred
        stopped = False
        stop_at = end  # the end of the current frame while one is open: crossing it is checked for free

        def pop_mark() -> list[Any]:
            if not marks:
                self.error(f"offset {op_pos}: no MARK on the stack")
                return []
            k = marks.pop()
            items = stack[k:]
            del stack[k:]
            return items

        def truncated(what: str) -> _Stop:
            self.error(f"offset {op_pos}: truncated {what}")
            return _Stop()

        while True:
            try:
                while pos < stop_at:
                    ops += 1
                    if ops >= next_check:
                        if ops > budget:
                            ops -= 1
                            raise _LimitHit("max_opcodes")
                        if self.deadline is not None and time.monotonic() > self.deadline:
                            ops -= 1
                            raise _LimitHit("timeout_s")
                        next_check = min(ops + _CHECK_EVERY, budget + 1)
                    op = data[pos]
                    op_pos = pos
                    pos += 1
                    # The hottest opcodes first.
                    if op == 0x94:  # MEMOIZE
                        memo[len(memo)] = stack[-1]
                        if len(memo) > max_memo:
                            raise _LimitHit("max_memo_entries")
                    elif op == 0x71:  # BINPUT
                        if pos >= end:
                            raise truncated("BINPUT")
                        memo[data[pos]] = stack[-1]
                        pos += 1
                        if len(memo) > max_memo:
                            raise _LimitHit("max_memo_entries")
                    elif op == 0x8C:  # SHORT_BINUNICODE
                        if pos >= end:
                            raise truncated("SHORT_BINUNICODE")
                        s = pos + 1
                        pos = s + data[pos]
                        if pos > end:
                            raise truncated("SHORT_BINUNICODE")
                        try:
                            value = str(data[s:pos], "utf-8", "surrogatepass")
                        except UnicodeDecodeError:
                            self.error(f"offset {op_pos}: string that is not UTF-8")
                            value = Opaque("str")
                        push(value)
                        if pos < end and data[pos] == 0x94:  # MEMOIZE follows almost every string: fuse them
                            pos += 1
                            ops += 1
                            memo[len(memo)] = value
                            if len(memo) > max_memo:
                                raise _LimitHit("max_memo_entries")
                    elif op == 0x47:  # BINFLOAT
                        p = pos
                        pos += 8
                        if pos > end:
                            raise truncated("BINFLOAT")
                        push(_F64(data, p)[0])
                    elif op == 0x4B:  # BININT1
                        if pos >= end:
                            raise truncated("BININT1")
                        push(data[pos])
                        pos += 1
                    elif op == 0x7D or op == 0x5D:  # EMPTY_DICT, EMPTY_LIST
                        value = Container("dict" if op == 0x7D else "list")
                        push(value)
                        if pos < end and data[pos] == 0x94:  # fused MEMOIZE
                            pos += 1
                            ops += 1
                            memo[len(memo)] = value
                            if len(memo) > max_memo:
                                raise _LimitHit("max_memo_entries")
                    elif op == 0x28:  # MARK
                        marks.append(len(stack))
                        if pos < stop_at and data[pos] in _ATOMS:
                            count, pos = _skip_atoms(data, pos, stop_at)
                            if count:
                                stack.extend(repeat(_NUMBER, count))
                                ops += count
                    elif op == 0x75:  # SETITEMS
                        if not marks:
                            self.error(f"offset {op_pos}: no MARK on the stack")
                            continue
                        k = marks.pop()
                        target = stack[k - 1]
                        if type(target) is Container and target.kind == "dict" and not (len(stack) - k) & 1:
                            n = (len(stack) - k) >> 1
                            if target.n < cap:
                                target.items.extend(
                                    zip(
                                        stack[k : k + 2 * cap : 2],
                                        stack[k + 1 : k + 2 * cap : 2],
                                        strict=True,
                                    )
                                )
                                del target.items[cap:]
                            if target.n + n > cap:
                                target.note_keys(stack[k + 2 * max(cap - target.n, 0) :: 2])
                            target.n += n
                            del stack[k:]
                        else:
                            items = stack[k:]
                            del stack[k:]
                            self.setitems(stack[-1], items, op_pos if at is None else at)
                    elif op == 0x65:  # APPENDS
                        if not marks:
                            self.error(f"offset {op_pos}: no MARK on the stack")
                            continue
                        k = marks.pop()
                        target = stack[k - 1]
                        if type(target) is Container:
                            if target.n < cap:
                                target.items.extend(stack[k : k + cap - target.n])
                            target.n += len(stack) - k
                            del stack[k:]
                        else:
                            items = stack[k:]
                            del stack[k:]
                            self.extend(target, items, op_pos if at is None else at, "extend")
                    elif op == 0x68:  # BINGET
                        if pos >= end:
                            raise truncated("BINGET")
                        value = memo.get(data[pos], _MISSING)
                        if value is _MISSING:
                            value = self.get(memo, data[pos])
                        elif deferred and type(value) is Name and id(value) in deferred:
                            deferred[id(value)][1] += 1
                        push(value)
                        pos += 1
                    elif op == 0x4D:  # BININT2
                        p = pos
                        pos += 2
                        if pos > end:
                            raise truncated("BININT2")
                        push(_U16(data, p)[0])
                    elif op == 0x4A:  # BININT
                        p = pos
                        pos += 4
                        if pos > end:
                            raise truncated("BININT")
                        push(_I32(data, p)[0])
                    elif op == 0x85:  # TUPLE1
                        stack[-1] = (stack[-1],)
                    elif op == 0x86:  # TUPLE2
                        stack[-2:] = [(stack[-2], stack[-1])]
                    elif op == 0x87:  # TUPLE3
                        stack[-3:] = [(stack[-3], stack[-2], stack[-1])]
                    elif op == 0x29:  # EMPTY_TUPLE
                        push(())
                    elif op == 0x4E:  # NONE
                        push(None)
                    elif op == 0x88 or op == 0x89:  # NEWTRUE, NEWFALSE
                        push(op == 0x88)
                    elif op == 0x58 or op == 0x8D:  # BINUNICODE, BINUNICODE8
                        s = pos + (4 if op == 0x58 else 8)
                        if s > end:
                            raise truncated(_OPNAMES[op])
                        n = _U32(data, pos)[0] if op == 0x58 else _U8(data, pos)[0]
                        pos = s + n
                        if pos > end:
                            raise truncated(_OPNAMES[op])
                        push(self.text(data, s, pos))
                    elif op == 0x43 or op == 0x42 or op == 0x8E or op == 0x96:  # *BINBYTES*, BYTEARRAY8
                        width = 1 if op == 0x43 else 4 if op == 0x42 else 8
                        s = pos + width
                        if s > end:
                            raise truncated(_OPNAMES[op])
                        n = (
                            data[pos]
                            if width == 1
                            else _U32(data, pos)[0]
                            if width == 4
                            else _U8(data, pos)[0]
                        )
                        pos = s + n
                        if pos > end:
                            raise truncated(_OPNAMES[op])
                        push(bytes(data[s:pos]) if n <= _SMALL_BYTES else Text(s, n, "", is_bytes=True))
                    elif op == 0x61:  # APPEND
                        value = stack.pop()
                        self.extend(stack[-1], [value], op_pos if at is None else at, "append")
                    elif op == 0x73:  # SETITEM
                        value = stack.pop()
                        key = stack.pop()
                        self.setitems(stack[-1], [key, value], op_pos if at is None else at)
                    elif op == 0x52:  # REDUCE
                        args = stack.pop()
                        self.n_opcodes += ops  # a call may analyse a nested pickle against the same budget
                        budget -= ops
                        ops = next_check = 0
                        stack[-1] = self.call(data, stack[-1], args, None, op_pos if at is None else at)
                        budget = self.max_opcodes - self.n_opcodes
                    elif op == 0x62:  # BUILD
                        state = stack.pop()
                        self.n_opcodes += ops
                        ops = next_check = 0
                        before = pos
                        pos, replaced = self.build(
                            data, stack[-1], state, op_pos if at is None else at, pos, end
                        )
                        if replaced is not None:
                            stack[-1] = replaced
                            if frame_end <= before:  # joblib closes the frame before writing array bytes
                                frame_end = -1
                                stop_at = end
                        budget = self.max_opcodes - self.n_opcodes
                    elif op == 0x72:  # LONG_BINPUT
                        p = pos
                        pos += 4
                        if pos > end:
                            raise truncated("LONG_BINPUT")
                        memo[_U32(data, p)[0]] = stack[-1]
                        if len(memo) > max_memo:
                            raise _LimitHit("max_memo_entries")
                    elif op == 0x6A:  # LONG_BINGET
                        p = pos
                        pos += 4
                        if pos > end:
                            raise truncated("LONG_BINGET")
                        push(self.get(memo, _U32(data, p)[0]))
                        if deferred and type(stack[-1]) is Name and id(stack[-1]) in deferred:
                            deferred[id(stack[-1])][1] += 1
                    elif op == 0x93:  # STACK_GLOBAL
                        name = stack.pop()
                        module = stack.pop()
                        push(self.stack_global(data, module, name, op_pos if at is None else at, proto))
                    elif op == 0x81:  # NEWOBJ
                        args = stack.pop()
                        stack[-1] = self.call(
                            data, stack[-1], args, None, op_pos if at is None else at, new=True
                        )
                    elif op == 0x92:  # NEWOBJ_EX
                        kwargs = stack.pop()
                        args = stack.pop()
                        stack[-1] = self.call(
                            data, stack[-1], args, kwargs, op_pos if at is None else at, new=True
                        )
                    elif op == 0x74:  # TUPLE
                        push(tuple(pop_mark()))
                    elif op == 0x95:  # FRAME
                        p = pos
                        pos += 8
                        if pos > end:
                            raise truncated("FRAME")
                        length = _U8(data, p)[0]
                        if frame_end > op_pos:
                            self.error(f"offset {op_pos}: FRAME starts before the previous frame ended")
                        if pos + length > end:
                            self.error(
                                f"offset {op_pos}: FRAME length {length} runs past the end of the data"
                            )
                        frame_end = pos + length
                        stop_at = min(frame_end, end)
                        if pos < stop_at and data[pos] in _ATOMS:
                            count, pos = _skip_atoms(data, pos, stop_at)
                            if count:
                                stack.extend(repeat(_NUMBER, count))
                                ops += count
                    elif op == 0x80:  # PROTO
                        if pos >= end:
                            raise truncated("PROTO")
                        proto = data[pos]
                        pos += 1
                        if proto > 5:
                            self.error(f"offset {op_pos}: unsupported pickle protocol {proto}")
                        if top and self.protocol is None:
                            self.protocol = proto
                    elif op == 0x2E:  # STOP
                        pickles += 1
                        last_stop = pos
                        if top:
                            self.n_pickles += 1
                            self.end_offset = pos
                        if frame_end > pos:
                            self.error(
                                f"offset {op_pos}: STOP inside a frame that claims {frame_end - pos} more bytes"
                            )
                        frame_end = -1
                        stop_at = end
                        stack.clear()
                        marks.clear()
                        proto = 0
                        if max_pickles is not None and pickles >= max_pickles:
                            break
                        if pos < end and data[pos] not in _OPNAMES:
                            self.error(f"offset {pos}: garbage after STOP (byte 0x{data[pos]:02x})")
                            break
                    elif op == 0x63 or op == 0x69:  # GLOBAL, INST
                        line1, pos = _line(data, pos, end, truncated, _OPNAMES[op])
                        line2, pos = _line(data, pos, end, truncated, _OPNAMES[op])
                        here = op_pos if at is None else at
                        ref = self.global_(_latin(line1), _latin(line2), here, proto)
                        if op == 0x63:
                            push(ref)
                        else:
                            push(self.call(data, ref, tuple(pop_mark()), None, here))
                    elif op == 0x6F:  # OBJ
                        items = pop_mark()
                        if not items:
                            self.error(f"offset {op_pos}: OBJ without a class")
                            push(Opaque("object"))
                        else:
                            push(
                                self.call(
                                    data, items[0], tuple(items[1:]), None, op_pos if at is None else at
                                )
                            )
                    elif op == 0x30:  # POP
                        if len(stack) > (marks[-1] if marks else 0):
                            stack.pop()
                        elif marks:
                            marks.pop()
                        else:
                            self.error(f"offset {op_pos}: POP on an empty stack")
                    elif op == 0x31:  # POP_MARK
                        pop_mark()
                    elif op == 0x32:  # DUP
                        push(stack[-1])
                        if deferred and type(stack[-1]) is Name and id(stack[-1]) in deferred:
                            deferred[id(stack[-1])][1] += 1
                    elif op == 0x6C:  # LIST
                        push(Container("list", pop_mark()))
                    elif op == 0x64:  # DICT
                        target = Container("dict")
                        self.setitems(target, pop_mark(), op_pos)
                        push(target)
                    elif op == 0x8F:  # EMPTY_SET
                        push(Container("set"))
                    elif op == 0x90:  # ADDITEMS
                        items = pop_mark()
                        self.extend(stack[-1], items, op_pos if at is None else at, "add")
                    elif op == 0x91:  # FROZENSET
                        push(Container("frozenset", pop_mark()))
                    elif op == 0x8A or op == 0x8B:  # LONG1, LONG4
                        s = pos + (1 if op == 0x8A else 4)
                        if s > end:
                            raise truncated(_OPNAMES[op])
                        n = data[pos] if op == 0x8A else _I32(data, pos)[0]
                        if n < 0:
                            self.error(f"offset {op_pos}: LONG4 with a negative length")
                            raise _Stop
                        pos = s + n
                        if pos > end:
                            raise truncated(_OPNAMES[op])
                        push(
                            int.from_bytes(data[s:pos], "little", signed=True)
                            if n <= _MAX_LONG_BYTES
                            else _NUMBER
                        )
                    elif op == 0x70 or op == 0x67:  # PUT, GET
                        line, pos = _line(data, pos, end, truncated, _OPNAMES[op])
                        index = _int_line(line)
                        if index is None:
                            self.error(f"offset {op_pos}: {_OPNAMES[op]} with a bad memo index")
                        elif op == 0x70:
                            memo[index] = stack[-1]
                            if len(memo) > max_memo:
                                raise _LimitHit("max_memo_entries")
                        else:
                            push(self.get(memo, index))
                            if deferred and type(stack[-1]) is Name and id(stack[-1]) in deferred:
                                deferred[id(stack[-1])][1] += 1
                    elif op == 0x49 or op == 0x4C:  # INT, LONG
                        line, pos = _line(data, pos, end, truncated, _OPNAMES[op])
                        if op == 0x49 and line in (b"00", b"01"):
                            push(line == b"01")
                        else:
                            value = _int_line(line.rstrip(b"L") if op == 0x4C else line)
                            if value is None:
                                self.error(f"offset {op_pos}: {_OPNAMES[op]} with a bad number")
                                value = _NUMBER
                            push(value)
                    elif op == 0x46:  # FLOAT
                        line, pos = _line(data, pos, end, truncated, "FLOAT")
                        try:
                            push(float(line))
                        except ValueError:
                            self.error(f"offset {op_pos}: FLOAT with a bad number")
                            push(_NUMBER)
                    elif op == 0x53:  # STRING
                        line, pos = _line(data, pos, end, truncated, "STRING")
                        push(self.quoted_string(line, op_pos))
                    elif op == 0x54 or op == 0x55:  # BINSTRING, SHORT_BINSTRING
                        s = pos + (4 if op == 0x54 else 1)
                        if s > end:
                            raise truncated(_OPNAMES[op])
                        n = _I32(data, pos)[0] if op == 0x54 else data[pos]
                        if n < 0:
                            self.error(f"offset {op_pos}: BINSTRING with a negative length")
                            raise _Stop
                        pos = s + n
                        if pos > end:
                            raise truncated(_OPNAMES[op])
                        push(_latin(data[s:pos]) if n <= _SMALL_TEXT else Text(s, n, _preview(data, s)))
                    elif op == 0x56:  # UNICODE
                        line, pos = _line(data, pos, end, truncated, "UNICODE")
                        try:
                            push(line.decode("raw-unicode-escape"))
                        except UnicodeDecodeError:
                            self.error(f"offset {op_pos}: UNICODE that does not decode")
                            push(Opaque("str"))
                    elif op == 0x50:  # PERSID
                        line, pos = _line(data, pos, end, truncated, "PERSID")
                        push(Opaque("persistent"))
                    elif op == 0x51:  # BINPERSID
                        stack[-1] = _persistent(stack[-1])
                    elif op == 0x82 or op == 0x83 or op == 0x84:  # EXT1, EXT2, EXT4
                        p = pos
                        pos += 1 if op == 0x82 else 2 if op == 0x83 else 4
                        if pos > end:
                            raise truncated(_OPNAMES[op])
                        code = data[p] if op == 0x82 else _U16(data, p)[0] if op == 0x83 else _I32(data, p)[0]
                        push(self.extension(code, op_pos if at is None else at))
                    elif op == 0x97:  # NEXT_BUFFER
                        push(Opaque("out-of-band buffer"))
                    elif op == 0x98:  # READONLY_BUFFER
                        stack[-1]
                    else:
                        if last_stop == op_pos:
                            self.error(f"offset {op_pos}: garbage after STOP (byte 0x{op:02x})")
                        else:
                            self.error(f"offset {op_pos}: unknown opcode 0x{op:02x}")
                        raise _Stop
                if pos < end and 0 <= frame_end <= pos:
                    if pos > frame_end:
                        self.error(f"offset {op_pos}: opcode runs across the end of its FRAME at {frame_end}")
                    frame_end = -1
                    stop_at = end
                    continue
                break
            except _Stop:
                stopped = True
                break
            except _LimitHit:
                self.n_opcodes += ops
                raise
            except (IndexError, KeyError, TypeError, ValueError, OverflowError, struct.error) as exc:
                what = "stack underflow" if isinstance(exc, IndexError) else f"{type(exc).__name__}: {exc}"
                self.error(f"offset {op_pos}: {_OPNAMES.get(data[op_pos], 'opcode')}: {what}")
                if pos <= op_pos:  # the opcode itself could not be read: no safe way on
                    break
        self.n_opcodes += ops
        if pos > end:
            pos = op_pos
        stopped_early = max_pickles is not None and pickles >= max_pickles
        if not stopped and pos >= end and pos != start and last_stop != pos and not stopped_early:
            self.error(f"offset {end}: stream ends without STOP (truncated)")
        if top and pickles == 0:
            self.end_offset = pos
        return last_stop if pickles else pos

    # ----------------------------------------------------------------------------------------------- values
    def text(self, data: bytes | memoryview, s: int, e: int) -> Any:
        if e - s > _SMALL_TEXT:
            return Text(s, e - s, _preview(data, s))
        try:
            return str(data[s:e], "utf-8", "surrogatepass")
        except UnicodeDecodeError:
            self.error(f"offset {s}: string that is not UTF-8")
            return Opaque("str")

    def get(self, memo: dict[int, Any], index: int) -> Any:
        try:
            return memo[index]
        except KeyError:
            self.error(f"memo key {index} read before it was written")
            return Opaque("missing memo entry")

    def quoted_string(self, line: bytes, offset: int) -> Any:
        if len(line) >= 2 and line[0] == line[-1] and line[:1] in (b"'", b'"'):
            try:
                import codecs

                raw = codecs.escape_decode(line[1:-1])[0]
                return _latin(raw)
            except (ValueError, UnicodeDecodeError):
                pass
        self.error(f"offset {offset}: STRING argument is not a quoted string")
        return Opaque("str")

    def name_text(self, data: bytes | memoryview, value: Any) -> str | None:
        if isinstance(value, str):
            return value
        if isinstance(value, Text) and not value.is_bytes and value.length <= _MAX_NAME_BYTES:
            return str(data[value.offset : value.offset + value.length], "utf-8", "replace")
        return None

    # ----------------------------------------------------------------------------------------------- globals
    def global_(self, module: str, qualname: str, offset: int, proto: int) -> Name:
        if proto < 3:  # what Unpickler.find_class does with fix_imports for Python 2 names
            if (module, qualname) in NAME_MAPPING:
                module, qualname = NAME_MAPPING[(module, qualname)]
            elif module in IMPORT_MAPPING:
                module = IMPORT_MAPPING[module]
        verdict, reason = self.allowlist.classify(module, qualname)
        ref = Name(module, qualname, verdict)
        if (module, qualname) in _DEFERRED and verdict is not _SAFE:
            self.deferred[id(ref)] = [ref, 1, 0, offset, reason]
        else:
            self.record(module, qualname, verdict, reason, ref, offset, False)
        return ref

    def stack_global(
        self, data: bytes | memoryview, module: Any, qualname: Any, offset: int, proto: int
    ) -> Any:
        mod = self.name_text(data, module)
        name = self.name_text(data, qualname)
        if mod is not None and name is not None:
            return self.global_(mod, name, offset, max(proto, 4))
        if isinstance(module, Call | Name | Opaque) or isinstance(qualname, Call | Name | Opaque):
            expr = Call(Name("builtins", "STACK_GLOBAL", _DANGEROUS), (module, qualname))
            self.record("<dynamic>", "STACK_GLOBAL", _DANGEROUS, "imports a global whose name is computed at "
                        "load time", expr, offset, True)  # fmt: skip
            return Name("<dynamic>", "<computed global>", _DANGEROUS)
        self.error(f"offset {offset}: STACK_GLOBAL on values that are not strings")
        return Opaque("invalid global")

    def extension(self, code: int, offset: int) -> Name:
        ref = Name("<extension>", str(code), _UNKNOWN)
        self.record("<extension>", str(code), _UNKNOWN, "copyreg extension code: whatever the loading process "
                    "registered under it", f"copyreg extension {code}", offset, False)  # fmt: skip
        return ref

    # ----------------------------------------------------------------------------------------------- calls
    def callee(self, func: Any) -> tuple[str, str, Verdict, str]:
        if isinstance(func, Name):
            if func.module.startswith("<"):
                return func.module, func.qualname, func.verdict, "not resolvable statically"
            return (
                func.module,
                func.qualname,
                func.verdict,
                self.allowlist.classify(func.module, func.qualname)[1],
            )
        if isinstance(func, Call):
            if func.partial_of is not None:
                module, qualname, verdict, reason = self.callee(func.partial_of)
                return module, qualname, verdict.worst(_worst(func)), reason
            if func.resolves_to is not None and func.resolves_to[1]:
                module, qualname = func.resolves_to
                verdict, reason = self.allowlist.classify(module, qualname)
                return (
                    module,
                    qualname,
                    verdict.worst(_worst(func)),
                    f"{reason}; reached by name at load time",
                )
        chain = render(func, max_depth=2, max_str=24, max_items=3)
        return "<dynamic>", chain, _UNKNOWN.worst(_worst(func)), "calls a value computed at load time"

    def call(
        self, data: bytes | memoryview, func: Any, args: Any, kwargs: Any, offset: int, *, new: bool = False
    ) -> Call:
        module, qualname, verdict, reason = self.callee(func)
        node = Call(func, args, kwargs, verdict=verdict, method="__new__" if new else None)
        node.cls = (module, qualname)
        if not new:
            special = _SPECIAL.get((module, qualname))
            if special is not None:
                reason = special(self, data, node, args if isinstance(args, tuple) else (), offset) or reason
        self.record(module, qualname, node.verdict, reason, node, offset, True)
        return node

    def build(
        self, data: bytes | memoryview, obj: Any, state: Any, offset: int, pos: int, end: int
    ) -> tuple[int, Any]:
        """BUILD: ``obj.__setstate__(state)`` or attribute assignment. Returns the next offset and what replaces
        ``obj`` on the stack (joblib's array wrapper becomes an array), or None."""
        cls: tuple[str, str] = ("<object>", "<object>")
        if isinstance(obj, Name):
            cls = (obj.module, obj.qualname)
            verdict = obj.verdict.worst(_UNKNOWN)
            expr = Call(obj, (state,), verdict=verdict, method="__setstate__")
            self.record(
                *cls, verdict, "BUILD sets attributes on a class or function object", expr, offset, True
            )
        elif isinstance(obj, Call):
            cls = obj.cls
            if obj.cls_verdict is not _SAFE:
                expr = Call(obj, (state,), verdict=obj.cls_verdict, method="__setstate__")
                reason = "BUILD runs __setstate__ (or sets attributes) of a class that is not allowlisted"
                self.record(*cls, obj.cls_verdict, reason, expr, offset, True)
            obj.state = state
        for key in _dunder_keys(state):
            expr = Call(obj, (state,), verdict=_DANGEROUS, method="__setstate__")
            self.record(cls[0], f"{cls[1]}.{key}", _DANGEROUS, f"BUILD assigns the special attribute {key}",
                        expr, offset, True)  # fmt: skip
        if self.joblib and isinstance(obj, Call) and cls in _JOBLIB_WRAPPERS:
            return self.skip_joblib_array(data, state, offset, pos, end), _ARRAY
        return pos, None

    def skip_joblib_array(self, data: bytes | memoryview, state: Any, offset: int, pos: int, end: int) -> int:
        """Step over the array joblib wrote after a NumpyArrayWrapper: raw bytes, or a whole pickle for objects."""
        if not (isinstance(state, Container) and state.kind == "dict"):
            self.error(f"offset {offset}: joblib array wrapper without a state dict")
            raise _Stop
        shape = state.get("shape")
        info = _dtype_info(state.get("dtype"))
        if not (isinstance(shape, tuple) and all(type(d) is int and d >= 0 for d in shape)) or info is None:
            self.error(f"offset {offset}: joblib array wrapper whose shape or dtype cannot be read")
            raise _Stop
        itemsize, hasobject = info
        if hasobject:
            if self.depth >= _MAX_NESTING:
                self.error(f"offset {offset}: pickles nested too deeply")
                raise _Stop
            self.depth += 1
            try:
                return self.run(data, pos, end, max_pickles=1, report_at=None)
            finally:
                self.depth -= 1
        if state.get("numpy_array_alignment_bytes") is not None:
            if pos >= end:
                self.error(f"offset {pos}: truncated joblib array padding")
                raise _Stop
            pos += 1 + data[pos]
        count = 1
        for dim in shape:
            count *= dim
        pos += count * itemsize
        if pos > end:
            self.error(f"offset {offset}: joblib array data runs past the end of the stream")
            raise _Stop
        return pos

    def extend(self, target: Any, items: list[Any], offset: int, method: str) -> None:
        if type(target) is Container:
            target.n += len(items)
            room = Container.CAP - len(target.items)
            if room > 0:
                target.items.extend(items[:room])
        else:
            self.method_call(target, method, items, offset)

    def setitems(self, target: Any, items: list[Any], offset: int) -> None:
        if len(items) % 2:
            self.error(f"offset {offset}: odd number of items for SETITEMS")
            items = items[:-1]
        if type(target) is Container and target.kind == "dict":
            keys = items[0::2]
            room = Container.CAP - len(target.items)
            if room > 0:
                target.items.extend(list(zip(keys, items[1::2], strict=True))[:room])
            target.note_keys(keys[max(room, 0) :])
            target.n += len(keys)
        else:
            self.method_call(target, "__setitem__", items, offset)

    def method_call(self, target: Any, method: str, items: list[Any], offset: int) -> None:
        """APPEND(S)/SETITEM(S)/ADDITEMS on something that is not a plain container calls one of its methods."""
        if isinstance(target, Call) and target.cls_verdict is not _SAFE:
            expr = Call(target, tuple(items), verdict=target.cls_verdict, method=method)
            self.record(*target.cls, target.cls_verdict, f"calls {method} of a class that is not allowlisted",
                        expr, offset, True)  # fmt: skip
        elif isinstance(target, Name):
            verdict = target.verdict.worst(_UNKNOWN)
            expr = Call(target, tuple(items), verdict=verdict, method=method)
            self.record(target.module, target.qualname, verdict, f"calls {method} on a class or function object",
                        expr, offset, True)  # fmt: skip

    def nested(self, payload: bytes | memoryview, offset: int, max_pickles: int | None) -> None:
        if self.depth >= _MAX_NESTING:
            self.error(f"offset {offset}: pickles nested too deeply")
            return
        self.depth += 1
        before = len(self.errors)
        try:
            self.run(payload, 0, len(payload), max_pickles=max_pickles, report_at=offset)
        except _Stop:
            pass
        finally:
            self.depth -= 1
        for i in range(before, len(self.errors)):
            self.errors[i] = f"in the pickle nested at offset {offset}: {self.errors[i]}"


# ----------------------------------------------------------------------------------------------- special calls
def _import(
    m: _Machine, data: bytes | memoryview, node: Call, args: tuple[Any, ...], offset: int
) -> str | None:
    if args and isinstance(args[0], str):
        node.resolves_to = (args[0], "")
    return None


def _getattr(
    m: _Machine, data: bytes | memoryview, node: Call, args: tuple[Any, ...], offset: int
) -> str | None:
    if len(args) != 2 or not isinstance(args[1], str):
        return None
    base = args[0]
    where: tuple[str, str] | None = None
    if isinstance(base, Name) and not base.module.startswith("<"):
        where = (base.module, base.qualname)
    elif isinstance(base, Call) and base.resolves_to is not None:
        where = base.resolves_to
    if where is None:
        return None
    module, qualname = where
    node.resolves_to = (module, f"{qualname}.{args[1]}" if qualname else args[1])
    verdict, reason = m.allowlist.classify(*node.resolves_to)
    m.record(*node.resolves_to, verdict, f"{reason}; reached through getattr", node, offset, False)
    use = m.deferred.get(id(node.func))
    if verdict is _SAFE and isinstance(base, Name) and base.verdict is _SAFE and use is not None:
        # getattr(SafeClass, 'attr') is the protocol 2/3 spelling of the allowlisted global SafeClass.attr
        use[2] += 1
        node.verdict = node.cls_verdict = _SAFE
        return "reaches an allowlisted attribute of an allowlisted global"
    return None


def _partial(
    m: _Machine, data: bytes | memoryview, node: Call, args: tuple[Any, ...], offset: int
) -> str | None:
    if args:
        node.partial_of = args[0]
        node.verdict = node.verdict.worst(_worst(args[0]))


def _reconstructor(
    m: _Machine, data: bytes | memoryview, node: Call, args: tuple[Any, ...], offset: int
) -> str | None:
    cls = args[0] if args else None
    if isinstance(cls, Name):
        node.cls = (cls.module, cls.qualname)
        node.cls_verdict = cls.verdict
    else:
        node.cls = ("<dynamic>", "<computed class>")
        node.cls_verdict = _UNKNOWN.worst(_worst(cls))


def _codecs_encode(
    m: _Machine, data: bytes | memoryview, node: Call, args: tuple[Any, ...], offset: int
) -> str | None:
    encoding = args[1] if len(args) > 1 else "utf-8"
    if not (isinstance(encoding, str) and encoding.lower() in _TEXT_CODECS):
        node.verdict = node.verdict.worst(_UNKNOWN)
        m.record(
            "_codecs", "encode", _UNKNOWN, "encodes with a codec that is not a text codec", node, offset, True
        )


def _load_from_bytes(
    m: _Machine, data: bytes | memoryview, node: Call, args: tuple[Any, ...], offset: int
) -> str | None:
    """``torch.storage._load_from_bytes(b)`` is ``torch.load(BytesIO(b), weights_only=False)``: it is safe only
    because the nested legacy torch stream is analysed here like the outer one."""
    payload = _materialize(data, args[0]) if len(args) == 1 else None
    if payload is None:
        node.verdict = _DANGEROUS
        m.record("torch.storage", "_load_from_bytes", _DANGEROUS, "torch.load of bytes that are not a literal in "
                 "the stream", node, offset, True)  # fmt: skip
        return
    if bytes(payload[:1]) != b"\x80":
        node.verdict = _DANGEROUS
        m.record("torch.storage", "_load_from_bytes", _DANGEROUS, "torch.load of an embedded payload that is not "
                 "a legacy torch pickle (zip or tar checkpoint)", node, offset, True)  # fmt: skip
        return
    m.nested(
        payload, offset, max_pickles=5
    )  # legacy torch.save: magic, version, sys info, object, storage keys


_DEFERRED = frozenset({("builtins", "getattr")})
_IMPORTERS = (("builtins", "__import__"), ("importlib", "import_module"), ("importlib", "__import__"),
              ("importlib._bootstrap", "_gcd_import"))  # fmt: skip
_SPECIAL: dict[tuple[str, str], Callable[[_Machine, Any, Call, tuple[Any, ...], int], str | None]] = {
    **dict.fromkeys(_IMPORTERS, _import),
    ("builtins", "getattr"): _getattr,
    ("functools", "partial"): _partial,
    ("copyreg", "_reconstructor"): _reconstructor,
    ("copyreg", "__newobj__"): _reconstructor,
    ("copyreg", "__newobj_ex__"): _reconstructor,
    ("_codecs", "encode"): _codecs_encode,
    ("torch.storage", "_load_from_bytes"): _load_from_bytes,
}


# ----------------------------------------------------------------------------------------------- helpers
def _persistent(pid: Any) -> Any:
    """What a persistent id loads as. Legacy ``torch.save`` refers to module classes as ``('module', cls, file,
    source)`` and loads the class itself; anything else is what the loader's ``persistent_load`` makes of it."""
    if isinstance(pid, tuple) and len(pid) >= 2 and pid[0] == "module" and isinstance(pid[1], Name):
        return pid[1]
    return Opaque("persistent")


def _chain(expr: Any) -> str:
    if isinstance(expr, str):
        return expr
    return render(expr)


def _worst(value: Any, depth: int = 6) -> Verdict:
    if isinstance(value, Name | Call):
        return value.verdict
    if depth <= 0:
        return _SAFE
    items: Any
    if isinstance(value, tuple):
        items = value
    elif isinstance(value, Container):
        items = value.items if value.kind != "dict" else [x for pair in value.items for x in pair]
    else:
        return _SAFE
    verdict = _SAFE
    for item in items:
        verdict = verdict.worst(_worst(item, depth - 1))
        if verdict is _DANGEROUS:
            break
    return verdict


def _dunder_keys(state: Any) -> list[str]:
    found: list[str] = []
    parts = state if isinstance(state, tuple) and len(state) == 2 else (state,)
    for part in parts:
        if isinstance(part, Container) and part.kind == "dict":
            found.extend(part.special_keys())
    return found


def _skip_atoms(data: bytes | memoryview, pos: int, end: int) -> tuple[int, int]:
    """Consume a run of fixed-width number opcodes at ``pos``: (how many, where the run ends)."""
    count = 0
    uniform = _UNIFORM.get(data[pos])
    if uniform is not None:
        width, pattern = uniform
        run = pattern.match(data, pos, end)
        if run is not None and run.end() - pos >= 16 * width:
            count = (run.end() - pos) // width
            pos = run.end()
    mixed = _RUN.match(data, pos, end)
    if mixed is not None:
        count += len(_ATOM.findall(data, pos, mixed.end()))
        pos = mixed.end()
    return count, pos


def _line(
    data: bytes | memoryview, p: int, end: int, truncated: Callable[[str], _Stop], what: str
) -> tuple[bytes, int]:
    found = _NL.search(data, p, end)
    if found is None:
        raise truncated(what)
    e = found.start()
    return bytes(data[p:e]), e + 1


def _latin(raw: bytes | memoryview) -> str:
    try:
        return str(raw, "utf-8")
    except UnicodeDecodeError:
        return str(raw, "latin-1")


def _int_line(line: bytes) -> int | None:
    try:
        return int(line)
    except ValueError:
        return None


def _preview(data: bytes | memoryview, s: int) -> str:
    return str(data[s : s + 64], "utf-8", "replace")


def _materialize(data: bytes | memoryview, value: Any) -> bytes | memoryview | None:
    """The bytes a literal argument denotes: a bytes constant, or protocol 2's ``_codecs.encode(text, 'latin1')``."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, Text) and value.is_bytes:
        return memoryview(data)[value.offset : value.offset + value.length]
    if (
        isinstance(value, Call)
        and isinstance(value.func, Name)
        and (value.func.module, value.func.qualname)
        == (
            "_codecs",
            "encode",
        )
    ):
        args = value.args if isinstance(value.args, tuple) else ()
        if len(args) == 2 and isinstance(args[1], str) and args[1].lower() in _TEXT_CODECS:
            text = args[0]
            if isinstance(text, Text) and not text.is_bytes:
                text = str(data[text.offset : text.offset + text.length], "utf-8", "surrogatepass")
            if isinstance(text, str):
                try:
                    return text.encode(args[1])
                except UnicodeEncodeError:
                    return None
    return None


def _dtype_info(node: Any) -> tuple[int, bool] | None:
    """Item size and whether it holds objects, for a ``numpy.dtype(code, False, True)`` call with its BUILD state."""
    if not (
        isinstance(node, Call)
        and isinstance(node.args, tuple)
        and node.args
        and isinstance(node.args[0], str)
    ):
        return None
    code = _DTYPE_CODE.fullmatch(node.args[0])
    if code is None:
        return None
    letter, digits = code.groups()
    state = node.state if isinstance(node.state, tuple) else ()
    elsize = state[5] if len(state) > 5 and type(state[5]) is int else -1
    flags = state[7] if len(state) > 7 and type(state[7]) is int else 0
    hasobject = letter == "O" or bool(flags & 1)
    if elsize > 0:
        return elsize, hasobject
    if digits:
        return int(digits), hasobject
    size = _DTYPE_SIZES.get(letter)
    return (size, hasobject) if size is not None else None
