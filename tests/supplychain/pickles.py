"""Hand-built pickle opcode streams for the scanner's tests: the technique families attackers ship, with harmless
payloads only (os.getcwd, print, creating an empty marker file)."""

from __future__ import annotations

import struct


def proto(n: int = 4) -> bytes:
    return b"\x80" + bytes([n])


def frame(length: int) -> bytes:
    return b"\x95" + struct.pack("<Q", length)


def text(s: str) -> bytes:
    raw = s.encode()
    if len(raw) < 256:
        return b"\x8c" + bytes([len(raw)]) + raw
    return b"X" + struct.pack("<I", len(raw)) + raw


def binunicode(s: str) -> bytes:
    raw = s.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def global_(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def stack_global(module: str, name: str) -> bytes:
    return text(module) + text(name) + b"\x93"


def inst(module: str, name: str) -> bytes:
    return b"i" + module.encode() + b"\n" + name.encode() + b"\n"


MARK = b"("
STOP = b"."
REDUCE = b"R"
BUILD = b"b"
TUPLE = b"t"
TUPLE1 = b"\x85"
TUPLE2 = b"\x86"
EMPTY_TUPLE = b")"
EMPTY_DICT = b"}"
EMPTY_LIST = b"]"
SETITEM = b"s"
SETITEMS = b"u"
NEWOBJ = b"\x81"
NEWOBJ_EX = b"\x92"
OBJ = b"o"
POP = b"0"
MEMOIZE = b"\x94"
NONE = b"N"
BINPERSID = b"Q"


def binput(i: int) -> bytes:
    return b"q" + bytes([i])


def binget(i: int) -> bytes:
    return b"h" + bytes([i])


def long_binget(i: int) -> bytes:
    return b"j" + struct.pack("<I", i)


def put(i: int) -> bytes:
    return b"p" + str(i).encode() + b"\n"


def get(i: int) -> bytes:
    return b"g" + str(i).encode() + b"\n"


def ext1(code: int) -> bytes:
    return b"\x82" + bytes([code])


def binbytes(data: bytes) -> bytes:
    return b"B" + struct.pack("<I", len(data)) + data


def call(module: str, name: str, *args: str, protocol: int = 4) -> bytes:
    """``module.name(*args)`` with string arguments, as one complete pickle."""
    head = proto(protocol) + (stack_global(module, name) if protocol >= 4 else global_(module, name))
    return head + MARK + b"".join(text(a) for a in args) + TUPLE + REDUCE + STOP


def getattr_import(module: str, attr: str, *args: str) -> bytes:
    """``getattr(__import__(module), attr)(*args)``: builtins-only indirection."""
    return (
        proto(4)
        + stack_global("builtins", "getattr")
        + stack_global("builtins", "__import__")
        + text(module)
        + TUPLE1
        + REDUCE
        + text(attr)
        + TUPLE2
        + REDUCE
        + MARK
        + b"".join(text(a) for a in args)
        + TUPLE
        + REDUCE
        + STOP
    )


def memo_aliased(module: str, name: str) -> bytes:
    """The global's module and name are memoized early and fetched back for STACK_GLOBAL."""
    return (
        proto(4)
        + text(module)
        + MEMOIZE
        + POP
        + text(name)
        + MEMOIZE
        + POP
        + text("decoy")
        + POP
        + binget(0)
        + binget(1)
        + b"\x93"
        + EMPTY_TUPLE
        + REDUCE
        + STOP
    )


def build_setstate(module: str, name: str) -> bytes:
    """An allowlisted object whose ``__setstate__`` is replaced through BUILD's setattr form, then called."""
    return (
        proto(4)
        + stack_global("collections", "OrderedDict")
        + EMPTY_TUPLE
        + REDUCE
        + NONE
        + EMPTY_DICT
        + text("__setstate__")
        + stack_global(module, name)
        + SETITEM
        + TUPLE2
        + BUILD
        + EMPTY_TUPLE
        + BUILD
        + STOP
    )


def obj_then_pop(module: str, name: str) -> bytes:
    """OBJ calls the class, POP discards the result, and a harmless value is what ``pickle.load`` returns."""
    return proto(2) + MARK + global_(module, name) + OBJ + POP + NONE + STOP


def inst_call(module: str, name: str) -> bytes:
    """Protocol 0 INST: ``module.name()`` with the text opcodes only."""
    return MARK + inst(module, name) + STOP


def newobj_ex(module: str, name: str) -> bytes:
    return proto(4) + stack_global(module, name) + EMPTY_TUPLE + EMPTY_DICT + NEWOBJ_EX + STOP


def protocol0_global(module: str, name: str) -> bytes:
    """Protocol 0: GLOBAL with text lines, arguments as a STRING, REDUCE."""
    return global_(module, name) + b"(S'x'\ntR."


def dotted(module: str, dotted_name: str) -> bytes:
    """STACK_GLOBAL with a dotted name resolved segment by segment, e.g. ('builtins', 'getattr')."""
    return proto(4) + stack_global(module, dotted_name) + EMPTY_TUPLE + REDUCE + STOP


def frame_lie(module: str, name: str) -> bytes:
    """A FRAME that claims far more bytes than the stream has; the payload is inside it."""
    body = stack_global(module, name) + EMPTY_TUPLE + REDUCE + STOP
    return proto(4) + frame(len(body) + 1000) + body


def ext_code(code: int = 7) -> bytes:
    return proto(2) + ext1(code) + EMPTY_TUPLE + REDUCE + STOP


def marshal_function() -> bytes:
    """``types.FunctionType(marshal.loads(b'...'), {})()`` with a code object that would only return None."""
    return (
        proto(4)
        + stack_global("types", "FunctionType")
        + stack_global("marshal", "loads")
        + binbytes(b"\xe3" + b"\x00" * 16)
        + TUPLE1
        + REDUCE
        + EMPTY_DICT
        + TUPLE2
        + REDUCE
        + EMPTY_TUPLE
        + REDUCE
        + STOP
    )


def partial_gadget(module: str, name: str) -> bytes:
    """``functools.partial(module.name)()``: an allowlisted wrapper over a dangerous callable."""
    return (
        proto(4)
        + stack_global("functools", "partial")
        + stack_global(module, name)
        + TUPLE1
        + REDUCE
        + EMPTY_TUPLE
        + REDUCE
        + STOP
    )


def operator_gadget() -> bytes:
    """``operator.attrgetter('getcwd')(__import__('os'))()``."""
    return (
        proto(4)
        + stack_global("operator", "attrgetter")
        + text("getcwd")
        + TUPLE1
        + REDUCE
        + stack_global("builtins", "__import__")
        + text("os")
        + TUPLE1
        + REDUCE
        + TUPLE1
        + REDUCE
        + EMPTY_TUPLE
        + REDUCE
        + STOP
    )


def benign_list() -> bytes:
    return proto(4) + EMPTY_LIST + MEMOIZE + MARK + b"K\x01K\x02" + b"e" + STOP


def marker_payload(path: str) -> bytes:
    """``builtins.open(path, 'w')``: would create an empty marker file if it ever ran."""
    return call("builtins", "open", path, "w", protocol=2)
