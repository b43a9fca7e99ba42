"""Reading TARS fields: `TarsReader` and the per-kind readers; every malformed input raises `DecodeError`."""

from __future__ import annotations

import struct as _struct
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from k8stars.tars.errors import DecodeError

from .schema import (
    _INT_MAX_WIRE,
    MAX_DEPTH,
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
    WIRE_NAMES,
    Field,
    Kind,
    S,
    Struct,
    TarsType,
)

_unpack_b = _struct.Struct(">b").unpack_from
_unpack_h = _struct.Struct(">h").unpack_from
_unpack_i = _struct.Struct(">i").unpack_from
_unpack_q = _struct.Struct(">q").unpack_from
_unpack_I = _struct.Struct(">I").unpack_from
_unpack_f = _struct.Struct(">f").unpack_from
_unpack_d = _struct.Struct(">d").unpack_from


class TarsReader:
    """Reads TARS fields from a bytes-like object. Every malformed input raises :class:`DecodeError`."""

    __slots__ = ("data", "depth", "end", "pos")

    def __init__(self, data: bytes | bytearray | memoryview, pos: int = 0, end: int | None = None) -> None:
        self.data = bytes(data) if not isinstance(data, bytes) else data
        self.pos = pos
        self.end = len(self.data) if end is None else end
        self.depth = 0

    def at_end(self) -> bool:
        return self.pos >= self.end

    def _need(self, n: int, what: str) -> None:
        if n < 0 or self.pos + n > self.end:
            raise DecodeError(
                f"truncated input: {what} needs {n} bytes at offset {self.pos}, {self.end - self.pos} left"
            )

    def read_head(self) -> tuple[int, int]:
        """(tag, wire type) of the next field."""
        if self.pos >= self.end:
            raise DecodeError(f"truncated input: expected a field head at offset {self.pos}")
        b = self.data[self.pos]
        wire = b & 0x0F
        tag = b >> 4
        self.pos += 1
        if tag == 15:
            if self.pos >= self.end:
                raise DecodeError(f"truncated input: expected a tag byte at offset {self.pos}")
            tag = self.data[self.pos]
            self.pos += 1
        if wire > W_SIMPLE_LIST:
            raise DecodeError(f"invalid wire type {wire} at offset {self.pos - 1}")
        return tag, wire

    def read_int_payload(self, wire: int) -> int:
        data, pos = self.data, self.pos
        if wire == W_ZERO:
            return 0
        if wire == W_INT1:
            self._need(1, "int1")
            self.pos = pos + 1
            v: int = _unpack_b(data, pos)[0]
            return v
        if wire == W_INT2:
            self._need(2, "int2")
            self.pos = pos + 2
            v = _unpack_h(data, pos)[0]
            return v
        if wire == W_INT4:
            self._need(4, "int4")
            self.pos = pos + 4
            v = _unpack_i(data, pos)[0]
            return v
        if wire == W_INT8:
            self._need(8, "int8")
            self.pos = pos + 8
            v = _unpack_q(data, pos)[0]
            return v
        raise DecodeError(f"type mismatch: expected an integer, got {WIRE_NAMES[wire]} at offset {pos}")

    def read_size(self, what: str, min_bytes_each: int) -> int:
        """A container size (an int field at tag 0), checked against the bytes left."""
        _, wire = self.read_head()
        n = self.read_int_payload(wire)
        if n < 0:
            raise DecodeError(f"negative {what} size {n} at offset {self.pos}")
        if n * min_bytes_each > self.end - self.pos:
            raise DecodeError(f"{what} size {n} exceeds the {self.end - self.pos} bytes left at offset {self.pos}")
        return n

    def read_string_payload(self, wire: int) -> bytes:
        if wire == W_STRING1:
            self._need(1, "string length")
            n = self.data[self.pos]
            self.pos += 1
        elif wire == W_STRING4:
            self._need(4, "string length")
            n = _unpack_I(self.data, self.pos)[0]
            self.pos += 4
        else:
            raise DecodeError(f"type mismatch: expected a string, got {WIRE_NAMES[wire]} at offset {self.pos}")
        self._need(n, "string")
        s = self.data[self.pos : self.pos + n]
        self.pos += n
        return s

    def read_simple_list_payload(self) -> bytes:
        self._need(1, "simple list")
        if self.data[self.pos] != 0:
            raise DecodeError(f"simple list inner head must be 0x00, got {self.data[self.pos]:#04x}")
        self.pos += 1
        n = self.read_size("simple list", 1)
        s = self.data[self.pos : self.pos + n]
        self.pos += n
        return s

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise DecodeError(f"nesting deeper than {MAX_DEPTH} at offset {self.pos}")

    def skip_field(self, wire: int) -> None:
        """Skip the payload of a field whose head was just read (any type, nested ones too)."""
        if wire <= W_DOUBLE:
            n = (1, 2, 4, 8, 4, 8)[wire]
            self._need(n, WIRE_NAMES[wire])
            self.pos += n
        elif wire in (W_STRING1, W_STRING4):
            self.read_string_payload(wire)
        elif wire == W_MAP:
            self.enter()
            for _ in range(self.read_size("map", 2) * 2):
                self.skip_field(self.read_head()[1])
            self.depth -= 1
        elif wire == W_LIST:
            self.enter()
            for _ in range(self.read_size("list", 1)):
                self.skip_field(self.read_head()[1])
            self.depth -= 1
        elif wire == W_STRUCT_BEGIN:
            self.enter()
            self.skip_to_struct_end()
            self.depth -= 1
        elif wire == W_SIMPLE_LIST:
            self.read_simple_list_payload()
        # W_STRUCT_END and W_ZERO carry no payload

    def skip_to_struct_end(self) -> None:
        while True:
            _, wire = self.read_head()
            if wire == W_STRUCT_END:
                return
            self.skip_field(wire)

    def read(self, t: TarsType, wire: int) -> Any:
        """The payload of a field of IDL type ``t`` whose head (with wire type ``wire``) was just read."""
        return _READERS[t.kind](self, t, wire)

    def read_fields(self, fields: Sequence[Field], nested: bool, by_tag: Mapping[int, int] | None = None) -> list[Any]:
        """Values of ``fields`` (in their order) from a struct body; stops at StructEnd if ``nested``, else at the
        end of input. Unknown tags are skipped; absent optional fields get defaults; absent required ones fail."""
        if by_tag is None:
            by_tag = {f.tag: i for i, f in enumerate(fields)}
        values: list[Any] = [_MISSING] * len(fields)
        data, end = self.data, self.end
        while self.pos < end:
            b = data[self.pos]
            if b == W_STRUCT_END and nested:
                self.pos += 1
                break
            tag, wire = self.read_head()
            if wire == W_STRUCT_END:
                if nested:
                    break
                raise DecodeError(f"unexpected struct end at offset {self.pos - 1}")
            slot = by_tag.get(tag)
            if slot is None:
                self.skip_field(wire)
                continue
            f = fields[slot]
            try:
                values[slot] = _READERS[f.type.kind](self, f.type, wire)
            except DecodeError as e:
                raise DecodeError(f"{f.name} (tag {f.tag}): {e}") from None
        else:
            if nested:
                raise DecodeError("truncated input: struct has no end")
        for i, v in enumerate(values):
            if v is _MISSING:
                f = fields[i]
                if f.required:
                    raise DecodeError(f"required field {f.name} (tag {f.tag}) is missing")
                values[i] = f.default_value()
        return values

    def read_struct_body(self, cls: type[S], nested: bool) -> S:
        return cls(*self.read_fields(cls.__tars_fields__, nested, tag_index(cls)))


_MISSING: Any = object()


def tag_index(cls: type[Struct]) -> dict[int, int]:
    """tag -> position in ``__tars_fields__``, computed once per struct class."""
    index: dict[int, int] | None = cls.__dict__.get("__tars_index__")
    if index is None:
        index = {f.tag: i for i, f in enumerate(cls.__tars_fields__)}
        type.__setattr__(cls, "__tars_index__", index)
    return index


def _r_int(r: TarsReader, t: TarsType, wire: int) -> Any:
    if wire != W_ZERO and wire > _INT_MAX_WIRE[t.kind]:
        raise DecodeError(f"type mismatch: {t.idl_name()} cannot be read from {WIRE_NAMES[wire]}")
    v = r.read_int_payload(wire)
    if t.kind is Kind.BOOL:
        return v != 0
    if t.kind is Kind.ENUM:
        try:
            return t.cls(v)  # type: ignore[misc]
        except ValueError:
            return v  # unknown enumerators stay plain ints (a newer peer may know more)
    return v


def _r_float(r: TarsReader, t: TarsType, wire: int) -> Any:
    if wire == W_ZERO:
        return 0.0
    if wire == W_FLOAT:
        r._need(4, "float")
        r.pos += 4
        return _unpack_f(r.data, r.pos - 4)[0]
    if wire == W_DOUBLE and t.kind is Kind.DOUBLE:
        r._need(8, "double")
        r.pos += 8
        return _unpack_d(r.data, r.pos - 8)[0]
    raise DecodeError(f"type mismatch: {t.idl_name()} cannot be read from {WIRE_NAMES[wire]}")


def _r_string(r: TarsReader, t: TarsType, wire: int) -> Any:
    return r.read_string_payload(wire).decode("utf-8", "surrogateescape")


def _r_bytes(r: TarsReader, t: TarsType, wire: int) -> Any:
    if wire == W_SIMPLE_LIST:
        return r.read_simple_list_payload()
    if wire == W_LIST:  # some writers send vector<byte> as a list of int1
        out = bytearray()
        for _ in range(r.read_size("list", 1)):
            _, w = r.read_head()
            if w not in (W_ZERO, W_INT1):
                raise DecodeError(f"type mismatch: byte cannot be read from {WIRE_NAMES[w]}")
            out.append(r.read_int_payload(w) & 0xFF)
        return bytes(out)
    raise DecodeError(f"type mismatch: vector<byte> cannot be read from {WIRE_NAMES[wire]}")


def _r_vector(r: TarsReader, t: TarsType, wire: int) -> Any:
    if wire != W_LIST:
        raise DecodeError(f"type mismatch: {t.idl_name()} cannot be read from {WIRE_NAMES[wire]}")
    elem = t.elem
    assert elem is not None
    read = _READERS[elem.kind]
    r.enter()
    n = r.read_size("list", 1)
    out = []
    for i in range(n):
        _, w = r.read_head()
        try:
            out.append(read(r, elem, w))
        except DecodeError as e:
            raise DecodeError(f"[{i}]: {e}") from None
    r.depth -= 1
    return out


def _r_map(r: TarsReader, t: TarsType, wire: int) -> Any:
    if wire != W_MAP:
        raise DecodeError(f"type mismatch: {t.idl_name()} cannot be read from {WIRE_NAMES[wire]}")
    kt, vt = t.key, t.value
    assert kt is not None and vt is not None
    rk, rv = _READERS[kt.kind], _READERS[vt.kind]
    r.enter()
    n = r.read_size("map", 2)
    out = {}
    for _ in range(n):
        _, w = r.read_head()
        key = rk(r, kt, w)
        _, w = r.read_head()
        try:
            out[key] = rv(r, vt, w)
        except DecodeError as e:
            raise DecodeError(f"[{key!r}]: {e}") from None
        except TypeError:
            raise DecodeError(f"map key of type {kt.idl_name()} is not hashable") from None
    r.depth -= 1
    return out


def _r_struct(r: TarsReader, t: TarsType, wire: int) -> Any:
    if wire != W_STRUCT_BEGIN:
        raise DecodeError(f"type mismatch: {t.idl_name()} cannot be read from {WIRE_NAMES[wire]}")
    r.enter()
    obj: Struct = r.read_struct_body(t.cls, nested=True)  # type: ignore[arg-type]
    r.depth -= 1
    return obj


_READERS: dict[Kind, Callable[[TarsReader, TarsType, int], Any]] = {
    Kind.BOOL: _r_int,
    Kind.BYTE: _r_int,
    Kind.SHORT: _r_int,
    Kind.INT: _r_int,
    Kind.LONG: _r_int,
    Kind.UBYTE: _r_int,
    Kind.USHORT: _r_int,
    Kind.UINT: _r_int,
    Kind.ENUM: _r_int,
    Kind.FLOAT: _r_float,
    Kind.DOUBLE: _r_float,
    Kind.STRING: _r_string,
    Kind.BYTES: _r_bytes,
    Kind.VECTOR: _r_vector,
    Kind.MAP: _r_map,
    Kind.STRUCT: _r_struct,
}
