"""A pickle assembler: byte strings for single opcodes, so that evasive streams are written exactly as meant.

Nothing here unpickles anything. Names follow ``pickletools`` (``MARK``, ``REDUCE``, ``STACK_GLOBAL``...).
"""

from __future__ import annotations

import struct

__all__ = [
    "BUILD",
    "DICT",
    "EMPTY_DICT",
    "EMPTY_TUPLE",
    "MARK",
    "MEMOIZE",
    "NEWOBJ",
    "NONE",
    "OBJ",
    "POP",
    "REDUCE",
    "SETITEM",
    "STACK_GLOBAL",
    "STOP",
    "TUPLE",
    "TUPLE1",
    "TUPLE2",
    "binget",
    "binint",
    "binput",
    "call",
    "frame",
    "global_op",
    "inst",
    "proto",
    "stack_global",
    "text_string",
    "text_unicode",
    "unicode",
    "wrap",
]

MARK = b"("
STOP = b"."
POP = b"0"
NONE = b"N"
REDUCE = b"R"
BUILD = b"b"
OBJ = b"o"
NEWOBJ = b"\x81"
DICT = b"d"
SETITEM = b"s"
TUPLE = b"t"
TUPLE1 = b"\x85"
TUPLE2 = b"\x86"
EMPTY_TUPLE = b")"
EMPTY_DICT = b"}"
STACK_GLOBAL = b"\x93"
MEMOIZE = b"\x94"


def proto(version: int) -> bytes:
    return b"\x80" + bytes([version])


def frame(length: int) -> bytes:
    """A FRAME opcode announcing ``length`` bytes, true or not."""
    return b"\x95" + struct.pack("<Q", length)


def unicode(text: str) -> bytes:
    """SHORT_BINUNICODE or BINUNICODE, whichever fits."""
    data = text.encode()
    if len(data) < 256:
        return b"\x8c" + bytes([len(data)]) + data
    return b"X" + struct.pack("<I", len(data)) + data


def text_unicode(text: str) -> bytes:
    """Protocol 0 UNICODE (raw-unicode-escape, newline terminated)."""
    return b"V" + text.encode("raw-unicode-escape") + b"\n"


def text_string(text: str) -> bytes:
    """Protocol 0 STRING (a quoted repr)."""
    return b"S" + repr(text).encode() + b"\n"


def binint(value: int) -> bytes:
    return b"J" + struct.pack("<i", value)


def binput(index: int) -> bytes:
    return b"q" + bytes([index])


def binget(index: int) -> bytes:
    return b"h" + bytes([index])


def global_op(module: str, name: str) -> bytes:
    """Protocol 0-3 GLOBAL: ``c module\\n name\\n``."""
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def stack_global(module: str, name: str) -> bytes:
    """Protocol 4+ STACK_GLOBAL with both names pushed as strings."""
    return unicode(module) + unicode(name) + STACK_GLOBAL


def inst(module: str, name: str) -> bytes:
    """Protocol 0 INST (the arguments must follow a MARK pushed before)."""
    return b"i" + module.encode() + b"\n" + name.encode() + b"\n"


def call(callable_: bytes, *args: bytes) -> bytes:
    """``callable_(*args)`` with MARK ... TUPLE REDUCE."""
    return callable_ + MARK + b"".join(args) + TUPLE + REDUCE


def wrap(body: bytes, protocol: int = 2) -> bytes:
    """A whole pickle: PROTO (for protocol >= 2), ``body`` and STOP."""
    return (proto(protocol) if protocol >= 2 else b"") + body + STOP
