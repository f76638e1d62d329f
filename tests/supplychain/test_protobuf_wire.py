from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from garrison.supplychain.protobuf_wire import (
    I32,
    I64,
    LEN,
    VARINT,
    WireFormatError,
    encode_field,
    encode_varint,
    iter_fields,
    parse_message,
    read_varint,
)


def test_varint_round_trip_edges() -> None:
    for value in (0, 1, 127, 128, 300, 2**32, 2**63, 2**64 - 1):
        encoded = encode_varint(value)
        assert read_varint(memoryview(encoded), 0) == (value, len(encoded))
    assert encode_varint(300) == b"\xac\x02"


def test_encode_varint_refuses_out_of_range() -> None:
    with pytest.raises(ValueError, match="value"):
        encode_varint(-1)


def test_parse_message_reads_every_wire_type() -> None:
    data = (
        encode_field(1, 150)
        + encode_field(2, "testing")
        + encode_field(3, 7, wire_type=I64)
        + encode_field(4, 9, wire_type=I32)
        + encode_field(2, b"again")
    )
    fields = list(iter_fields(data))
    assert [(n, w) for n, w, _ in fields] == [(1, VARINT), (2, LEN), (3, I64), (4, I32), (2, LEN)]
    message = parse_message(data)
    assert message.ints(1) == [150]
    assert message.strings(2) == ["testing", "again"]
    assert message.string(2) == "again"  # the last one wins, as in protobuf
    assert message.ints(3) == [7] and message.ints(4) == [9]
    assert 5 not in message and message.values(5) == []


def test_nested_messages_merge_like_protobuf() -> None:
    inner_a = encode_field(1, "a")
    inner_b = encode_field(2, "b")
    outer = encode_field(7, inner_a) + encode_field(7, inner_b)
    merged = parse_message(outer).message(7)
    assert merged is not None
    assert merged.string(1) == "a" and merged.string(2) == "b"
    assert parse_message(outer).message(8) is None


def test_packed_repeated_ints() -> None:
    packed = encode_field(3, encode_varint(1) + encode_varint(300) + encode_varint(5))
    assert parse_message(packed).ints(3) == [1, 300, 5]


def test_groups_are_skipped() -> None:
    start, end = encode_varint(5 << 3 | 3), encode_varint(5 << 3 | 4)
    data = encode_field(1, 1) + start + encode_field(2, "inside") + end + encode_field(3, "after")
    message = parse_message(data)
    assert message.ints(1) == [1] and message.string(3) == "after" and 2 not in message


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"\x08", "truncated varint"),
        (b"\x08" + b"\xff" * 11, "longer than 10 bytes"),
        (b"\x12\x05abc", "runs past the end"),
        (b"\x19\x00\x00", "truncated 64-bit"),
        (b"\x1d\x00", "truncated 32-bit"),
        (b"\x0e", "invalid wire type"),
        (b"\x00\x00", "invalid field number 0"),
        (b"\x2b" * 40, "nested deeper"),
        (b"\x2b\x08\x01", "unterminated group"),
        (b"\x2b\x34", "mismatched end of group"),
    ],
)
def test_malformed_bytes_raise_wire_format_error(data: bytes, match: str) -> None:
    with pytest.raises(WireFormatError, match=match) as info:
        parse_message(data)
    assert info.value.offset >= 0


def test_field_count_is_bounded() -> None:
    with pytest.raises(WireFormatError, match="more than 3 fields"):
        parse_message(encode_field(1, 1) * 4, max_fields=3)


def test_invalid_utf8_is_replaced_not_raised() -> None:
    assert parse_message(encode_field(1, b"\xff\xfeok")).string(1).endswith("ok")


_field_values = st.one_of(
    st.integers(min_value=0, max_value=2**64 - 1),
    st.binary(max_size=40),
    st.floats(width=32, allow_nan=False),
)


@given(st.lists(st.tuples(st.integers(min_value=1, max_value=2**29 - 1), _field_values), max_size=20))
def test_round_trip(fields: list[tuple[int, int | bytes | float]]) -> None:
    data = b"".join(encode_field(n, v) for n, v in fields)
    decoded = list(iter_fields(data))
    assert [n for n, _, _ in decoded] == [n for n, _ in fields]
    for (_, wire, value), (_, original) in zip(decoded, fields, strict=True):
        if isinstance(original, bytes):
            assert wire == LEN and bytes(value) == original  # type: ignore[arg-type]
        elif isinstance(original, float):
            assert wire == I32 and struct.unpack("<f", struct.pack("<I", value))[0] == pytest.approx(original)
        else:
            assert wire == VARINT and value == original


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_parse_or_raise_wire_format_error(data: bytes) -> None:
    try:
        message = parse_message(data)
        for number in range(1, 20):
            for value in message.blobs(number):
                with contextlib.suppress(WireFormatError):
                    parse_message(value)
            message.strings(number)
    except WireFormatError:
        pass
