"""The codec against the byte examples of the reference note (verified with @tars/stream) and its own rules."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pytest

from k8stars.tars import codec as c
from k8stars.tars.errors import DecodeError, EncodeError
from k8stars.tars.idl.compiler import load_runtime


def field_bytes(tag: int, t: c.TarsType, value: Any) -> str:
    return c.encode_value(t, value, tag).hex(" ").upper()


@pytest.mark.parametrize(
    ("tag", "t", "value", "expected"),
    [
        (1, c.INT, 0, "1C"),
        (2, c.INT, 300, "21 01 2C"),
        (3, c.INT, -1, "30 FF"),
        (4, c.INT, 70000, "42 00 01 11 70"),
        (5, c.LONG, 5000000000, "53 00 00 00 01 2A 05 F2 00"),
        (0, c.BOOL, True, "00 01"),
        (1, c.FLOAT, 1.5, "14 3F C0 00 00"),
        (20, c.STRING, "hi", "F6 14 02 68 69"),
        (15, c.INT, 1, "F0 0F 01"),
        (200, c.STRING, "x", "F6 C8 01 78"),
        (9, c.map_of(c.STRING, c.STRING), {"a": "b"}, "98 00 01 06 01 61 16 01 62"),
        (3, c.vector_of(c.INT), [1, 1000], "39 00 02 00 01 01 03 E8"),
        (7, c.BYTES, b"\x01\x02\x03", "7D 00 00 03 01 02 03"),
        (9, c.map_of(c.STRING, c.STRING), {}, "98 0C"),
        (0, c.BOOL, False, "0C"),
        (6, c.UBYTE, 200, "61 00 C8"),
        (6, c.UINT, 2**32 - 1, "63 00 00 00 00 FF FF FF FF"),
        (7, c.BYTES, b"", "7D 00 0C"),
        (255, c.INT, 7, "F0 FF 07"),
    ],
)
def test_reference_fields(tag: int, t: c.TarsType, value: Any, expected: str) -> None:
    assert field_bytes(tag, t, value) == expected
    assert c.decode_value(t, bytes.fromhex(expected.replace(" ", "")), tag) == value


def test_string4_above_255_bytes() -> None:
    s = "é" * 200  # 400 bytes of UTF-8
    data = c.encode_value(c.STRING, s, 1)
    assert data[:5] == bytes([0x17, 0, 0, 1, 0x90])
    assert c.decode_value(c.STRING, data, 1) == s


NESTED_IDL = """
module Doc {
  struct TestInfo { 1 require int ii = 34; 2 optional string s = "abc"; };
  struct TestInfo2 { 1 require TestInfo t; 2 require int a = 12345; };
};
"""


@pytest.fixture(scope="module")
def doc(tmp_path_factory: pytest.TempPathFactory) -> Any:
    p = tmp_path_factory.mktemp("idl") / "Doc.tars"
    p.write_text(NESTED_IDL)
    return load_runtime([p])


def test_nested_struct_writer_policies(doc: Any) -> None:
    t2 = doc["Doc::TestInfo2"]()
    assert t2.t.ii == 34 and t2.t.s == "abc" and t2.a == 12345
    assert c.encode(t2).hex(" ").upper() == "1A 10 22 0B 21 30 39"  # tars2cpp --check-default style
    assert c.encode(t2, skip_defaults=False).hex(" ").upper() == "1A 10 22 26 03 61 62 63 0B 21 30 39"
    for hexs in ("1A 10 22 0B 21 30 39", "1A 10 22 26 03 61 62 63 0B 21 30 39"):
        assert c.decode(doc["Doc::TestInfo2"], bytes.fromhex(hexs.replace(" ", ""))) == t2


def test_unknown_fields_are_skipped(doc: Any) -> None:
    # TestInfo with extra tags 3 (string), 4 (nested struct), 5 (map) a newer peer might send
    data = bytes.fromhex("1A 10 22 26 01 7A 36 02 6E 6F 4A 06 01 71 0B 58 0C 0B 21 30 39".replace(" ", ""))
    t2 = c.decode(doc["Doc::TestInfo2"], data)
    assert (t2.t.ii, t2.t.s, t2.a) == (34, "z", 12345)


def test_required_field_missing(doc: Any) -> None:
    with pytest.raises(DecodeError, match="required field a"):
        c.decode(doc["Doc::TestInfo2"], bytes.fromhex("1A 10 22 0B".replace(" ", "")))


def test_narrow_codes_accepted_wide_rejected() -> None:
    assert c.decode_value(c.LONG, bytes.fromhex("0001"), 0) == 1
    assert c.decode_value(c.INT, bytes.fromhex("0C"), 0) == 0
    with pytest.raises(DecodeError, match="type mismatch"):
        c.decode_value(c.SHORT, bytes.fromhex("0200000001"), 0)
    with pytest.raises(DecodeError, match="type mismatch"):
        c.decode_value(c.STRING, bytes.fromhex("0001"), 0)


def test_floats() -> None:
    assert c.decode_value(c.DOUBLE, c.encode_value(c.FLOAT, 0.25)) == 0.25  # float widened into double
    assert c.decode_value(c.FLOAT, bytes.fromhex("0C")) == 0.0  # @tars/stream writes 0.0 as ZeroTag
    assert math.isnan(c.decode_value(c.DOUBLE, c.encode_value(c.DOUBLE, math.nan)))
    with pytest.raises(EncodeError):
        c.encode_value(c.FLOAT, 1e300)


@pytest.mark.parametrize(
    ("t", "value"),
    [(c.BYTE, 128), (c.SHORT, -32769), (c.INT, 2**31), (c.UBYTE, -1), (c.UINT, 2**32), (c.LONG, 2**63)],
)
def test_encode_range_errors(t: c.TarsType, value: int) -> None:
    with pytest.raises(EncodeError, match="out of range"):
        c.encode_value(t, value)


def test_encode_type_errors_name_the_field(doc: Any) -> None:
    t2 = doc["Doc::TestInfo2"](a="x")
    with pytest.raises(EncodeError, match=r"^a: expected an integer"):
        c.encode(t2)


def test_bytes_from_list_of_int1() -> None:
    assert c.decode_value(c.BYTES, bytes.fromhex("0900020001 0002".replace(" ", ""))) == b"\x01\x02"


def test_invalid_utf8_survives_a_round_trip() -> None:
    raw = bytes.fromhex("0602FFFE")
    s = c.decode_value(c.STRING, raw)
    assert c.encode_value(c.STRING, s) == raw


@dataclass
class _Case:
    hexs: str
    match: str


@pytest.mark.parametrize(
    "case",
    [
        _Case("", "truncated"),
        _Case("02 00 00", "truncated"),
        _Case("0E", "invalid wire type"),
        _Case("0F", "invalid wire type"),
        _Case("F2", "truncated input: expected a tag byte"),
        _Case("07 7F FF FF FF 61", "truncated"),
        _Case("09 02 80 00 00 00", "negative list size"),
        _Case("09 02 7F FF FF FF 00 00", "exceeds"),
        _Case("0D 01 00 01", "inner head"),
        _Case("0D 00 02 7F FF FF FF", "exceeds"),
        _Case("08 00 05 0C", "exceeds"),
        _Case("0A 0C", "truncated"),
    ],
    ids=lambda case: case.hexs or "empty",
)
def test_hostile_input(case: _Case) -> None:
    data = bytes.fromhex(case.hexs.replace(" ", ""))
    with pytest.raises(DecodeError, match=case.match):
        c.decode_value(c.vector_of(c.INT), data) if case.hexs.startswith("09") else _decode_any(data)


def _decode_any(data: bytes) -> None:
    """Skip every field (what a reader does with unknown tags), then require a field that is not there."""
    r = c.TarsReader(data)
    while not r.at_end():
        _, wire = r.read_head()
        r.skip_field(wire)
    raise DecodeError("truncated: nothing failed")


def test_deep_nesting_is_bounded() -> None:
    depth = 10_000
    data = bytes([0x09, 0x00, 0x01]) * depth  # list of list of list ...
    with pytest.raises(DecodeError, match="nesting deeper"):
        _decode_any(data)
    nested: c.TarsType = c.INT
    for _ in range(c.MAX_DEPTH + 5):
        nested = c.vector_of(nested)
    with pytest.raises(DecodeError, match="nesting deeper"):
        c.decode_value(nested, data)


def test_huge_declared_sizes_allocate_nothing() -> None:
    # A 10-byte frame claiming 2**31-1 map entries must fail before building anything.
    with pytest.raises(DecodeError, match="exceeds"):
        c.decode_value(c.map_of(c.INT, c.INT), bytes.fromhex("08 02 7F FF FF FF".replace(" ", "")))
