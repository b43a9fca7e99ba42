"""Writing TARS fields: `TarsWriter` and the per-kind writers."""

from __future__ import annotations

import struct as _struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from k8stars.tars.errors import EncodeError

from .schema import (
    _INT_RANGES,
    W_DOUBLE,
    W_FLOAT,
    W_INT1,
    W_INT2,
    W_INT4,
    W_INT8,
    W_LIST,
    W_MAP,
    W_SIMPLE_LIST,
    W_STRING1,
    W_STRING4,
    W_STRUCT_BEGIN,
    W_STRUCT_END,
    W_ZERO,
    Field,
    Kind,
    Struct,
    TarsType,
)

_pack_h = _struct.Struct(">h").pack
_pack_i = _struct.Struct(">i").pack
_pack_q = _struct.Struct(">q").pack
_pack_I = _struct.Struct(">I").pack
_pack_f = _struct.Struct(">f").pack
_pack_d = _struct.Struct(">d").pack
_pack_into_I = _struct.Struct(">I").pack_into


class TarsWriter:
    """Appends TARS fields to a buffer. ``skip_defaults`` follows tars2cpp: optional fields equal to their
    default and empty optional containers are left out (bools are always written)."""

    __slots__ = ("buf", "skip_defaults")

    def __init__(self, skip_defaults: bool = True) -> None:
        self.buf = bytearray()
        self.skip_defaults = skip_defaults

    def getvalue(self) -> bytes:
        return bytes(self.buf)

    def write_head(self, tag: int, wire: int) -> None:
        if tag < 15:
            self.buf.append(tag << 4 | wire)
        elif tag <= 255:
            self.buf.append(0xF0 | wire)
            self.buf.append(tag)
        else:
            raise EncodeError(f"tag {tag} is out of range 0..255")

    def write_int(self, tag: int, v: int) -> None:
        """Any integer, narrowed to the smallest wire width (no range check against an IDL type)."""
        buf = self.buf
        if v == 0:
            self.write_head(tag, W_ZERO)
        elif -128 <= v <= 127:
            self.write_head(tag, W_INT1)
            buf.append(v & 0xFF)
        elif -32768 <= v <= 32767:
            self.write_head(tag, W_INT2)
            buf += _pack_h(v)
        elif -2147483648 <= v <= 2147483647:
            self.write_head(tag, W_INT4)
            buf += _pack_i(v)
        else:
            self.write_head(tag, W_INT8)
            try:
                buf += _pack_q(v)
            except _struct.error:
                raise EncodeError(f"integer {v} does not fit in 64 bits") from None

    def write_float(self, tag: int, v: float) -> None:
        self.write_head(tag, W_FLOAT)
        try:
            self.buf += _pack_f(v)
        except (OverflowError, _struct.error):
            raise EncodeError(f"{v!r} does not fit a 32-bit float") from None

    def write_double(self, tag: int, v: float) -> None:
        self.write_head(tag, W_DOUBLE)
        self.buf += _pack_d(v)

    def write_string(self, tag: int, v: str | bytes | bytearray) -> None:
        data = v.encode("utf-8", "surrogateescape") if isinstance(v, str) else bytes(v)
        n = len(data)
        if n <= 255:
            self.write_head(tag, W_STRING1)
            self.buf.append(n)
        else:
            self.write_head(tag, W_STRING4)
            self.buf += _pack_I(n)
        self.buf += data

    def write_bytes(self, tag: int, v: bytes | bytearray | memoryview) -> None:
        self.write_head(tag, W_SIMPLE_LIST)
        self.buf.append(0)  # inner head: int1, tag 0
        self.write_int(0, len(v))
        self.buf += v

    def write_struct_begin(self, tag: int) -> None:
        self.write_head(tag, W_STRUCT_BEGIN)

    def write_struct_end(self) -> None:
        self.buf.append(W_STRUCT_END)

    def write(self, tag: int, t: TarsType, v: Any) -> None:
        """Write ``v`` as a field of IDL type ``t``."""
        _WRITERS[t.kind](self, tag, t, v)

    def write_fields(self, fields: Iterable[Field], values: Sequence[Any]) -> None:
        """A bare field sequence (a struct body without begin/end, or a parameter list)."""
        skip = self.skip_defaults
        for f, v in zip(fields, values, strict=True):
            if skip and not f.required and _is_default(f, v):
                continue
            try:
                _WRITERS[f.type.kind](self, f.tag, f.type, v)
            except EncodeError as e:
                raise EncodeError(f"{f.name}: {e}") from None

    def write_struct_body(self, obj: Struct) -> None:
        fields = type(obj).__tars_fields__
        self.write_fields(fields, [getattr(obj, f.name) for f in fields])


def _is_default(f: Field, v: Any) -> bool:
    k = f.type.kind
    if k is Kind.BOOL:
        return False
    if k in (Kind.VECTOR, Kind.MAP, Kind.BYTES):
        return not v
    if k is Kind.STRUCT:
        return False
    if f.default is not None:
        return bool(v == f.default)
    return bool(v == f.type.default())


def _w_int(w: TarsWriter, tag: int, t: TarsType, v: Any) -> None:
    if not isinstance(v, int):
        raise EncodeError(f"expected an integer for {t.idl_name()}, got {type(v).__name__}")
    lo, hi = _INT_RANGES[t.kind]
    if not lo <= v <= hi:
        raise EncodeError(f"{v} is out of range for {t.idl_name()} ({lo}..{hi})")
    w.write_int(tag, int(v))


def _w_float(w: TarsWriter, tag: int, t: TarsType, v: Any) -> None:
    if not isinstance(v, int | float):
        raise EncodeError(f"expected a number for float, got {type(v).__name__}")
    w.write_float(tag, float(v))


def _w_double(w: TarsWriter, tag: int, t: TarsType, v: Any) -> None:
    if not isinstance(v, int | float):
        raise EncodeError(f"expected a number for double, got {type(v).__name__}")
    w.write_double(tag, float(v))


def _w_string(w: TarsWriter, tag: int, t: TarsType, v: Any) -> None:
    if not isinstance(v, str | bytes | bytearray):
        raise EncodeError(f"expected a string, got {type(v).__name__}")
    w.write_string(tag, v)


def _w_bytes(w: TarsWriter, tag: int, t: TarsType, v: Any) -> None:
    if isinstance(v, list):
        try:
            v = bytes(b & 0xFF for b in v)
        except TypeError:
            raise EncodeError("expected bytes or a list of small integers for vector<byte>") from None
    if not isinstance(v, bytes | bytearray | memoryview):
        raise EncodeError(f"expected bytes for vector<byte>, got {type(v).__name__}")
    w.write_bytes(tag, v)


def _w_vector(w: TarsWriter, tag: int, t: TarsType, v: Any) -> None:
    if not isinstance(v, list | tuple):
        raise EncodeError(f"expected a list for {t.idl_name()}, got {type(v).__name__}")
    elem = t.elem
    assert elem is not None
    write = _WRITERS[elem.kind]
    w.write_head(tag, W_LIST)
    w.write_int(0, len(v))
    for i, item in enumerate(v):
        try:
            write(w, 0, elem, item)
        except EncodeError as e:
            raise EncodeError(f"[{i}]: {e}") from None


def _w_map(w: TarsWriter, tag: int, t: TarsType, v: Any) -> None:
    if not isinstance(v, Mapping):
        raise EncodeError(f"expected a dict for {t.idl_name()}, got {type(v).__name__}")
    kt, vt = t.key, t.value
    assert kt is not None and vt is not None
    wk, wv = _WRITERS[kt.kind], _WRITERS[vt.kind]
    w.write_head(tag, W_MAP)
    w.write_int(0, len(v))
    for key, val in v.items():
        try:
            wk(w, 0, kt, key)
            wv(w, 1, vt, val)
        except EncodeError as e:
            raise EncodeError(f"[{key!r}]: {e}") from None


def _w_struct(w: TarsWriter, tag: int, t: TarsType, v: Any) -> None:
    if not isinstance(v, t.cls or Struct) or not isinstance(v, Struct):
        raise EncodeError(f"expected {t.idl_name()}, got {type(v).__name__}")
    w.write_head(tag, W_STRUCT_BEGIN)
    w.write_struct_body(v)
    w.buf.append(W_STRUCT_END)


_WRITERS: dict[Kind, Callable[[TarsWriter, int, TarsType, Any], None]] = {
    Kind.BOOL: _w_int,
    Kind.BYTE: _w_int,
    Kind.SHORT: _w_int,
    Kind.INT: _w_int,
    Kind.LONG: _w_int,
    Kind.UBYTE: _w_int,
    Kind.USHORT: _w_int,
    Kind.UINT: _w_int,
    Kind.ENUM: _w_int,
    Kind.FLOAT: _w_float,
    Kind.DOUBLE: _w_double,
    Kind.STRING: _w_string,
    Kind.BYTES: _w_bytes,
    Kind.VECTOR: _w_vector,
    Kind.MAP: _w_map,
    Kind.STRUCT: _w_struct,
}
