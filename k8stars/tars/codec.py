"""The TARS binary encoding ("JCE"): types, a writer, a reader, and struct (de)serialisation.

Every value is a field: a head (tag and wire type) then a payload, big-endian. Integers are always written in the
smallest width, zero as a bare head. Structs are written with fields in ascending tag order; readers skip unknown
tags, which is what gives TARS its forward and backward compatibility.

Types are described by :class:`TarsType` objects (``INT``, ``vector_of(STRING)``, ``struct_of(EndpointF)`` ...)
and structs by a tuple of :class:`Field` in ``__tars_fields__``. Generated code (``k8stars tars2py``) fills those in.

The code below is the reference implementation. When the C accelerator ``k8stars.tars._speedups`` was built at
install time, the module-level functions (``encode``, ``decode``, ``encode_fields``, ``decode_fields``,
``encode_value``, ``decode_value``) are routed through it: same bytes, same values, same errors, many times faster.
``K8STARS_PURE_PYTHON=1`` in the environment keeps everything in Python; :func:`use_backend` switches at run time
and :func:`get_backend` hands out either implementation (the tests compare the two).
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
import os
import struct as _struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from k8stars.tars.errors import DecodeError, EncodeError

# Wire type codes (low nibble of a head).
W_INT1, W_INT2, W_INT4, W_INT8 = 0, 1, 2, 3
W_FLOAT, W_DOUBLE = 4, 5
W_STRING1, W_STRING4 = 6, 7
W_MAP, W_LIST = 8, 9
W_STRUCT_BEGIN, W_STRUCT_END = 10, 11
W_ZERO, W_SIMPLE_LIST = 12, 13

WIRE_NAMES = (
    "int1", "int2", "int4", "int8", "float", "double", "string1", "string4",
    "map", "list", "struct-begin", "struct-end", "zero", "simple-list",
)  # fmt: skip

MAX_DEPTH = 100  # nesting of structs/lists/maps a reader accepts; real IDL stays far below

_pack_h = _struct.Struct(">h").pack
_pack_i = _struct.Struct(">i").pack
_pack_q = _struct.Struct(">q").pack
_pack_I = _struct.Struct(">I").pack
_pack_f = _struct.Struct(">f").pack
_pack_d = _struct.Struct(">d").pack
_unpack_b = _struct.Struct(">b").unpack_from
_unpack_h = _struct.Struct(">h").unpack_from
_unpack_i = _struct.Struct(">i").unpack_from
_unpack_q = _struct.Struct(">q").unpack_from
_unpack_I = _struct.Struct(">I").unpack_from
_pack_into_I = _struct.Struct(">I").pack_into
_unpack_f = _struct.Struct(">f").unpack_from
_unpack_d = _struct.Struct(">d").unpack_from


class Kind(enum.IntEnum):
    """The IDL type of a value (what the program sees), as opposed to its wire type code."""

    BOOL = 0
    BYTE = 1
    SHORT = 2
    INT = 3
    LONG = 4
    UBYTE = 5  # unsigned types travel as the next wider signed type
    USHORT = 6
    UINT = 7
    FLOAT = 8
    DOUBLE = 9
    STRING = 10
    BYTES = 11  # vector<byte>
    VECTOR = 12
    MAP = 13
    STRUCT = 14
    ENUM = 15


_INT_RANGES = {
    Kind.BOOL: (0, 1),
    Kind.BYTE: (-(2**7), 2**7 - 1),
    Kind.SHORT: (-(2**15), 2**15 - 1),
    Kind.INT: (-(2**31), 2**31 - 1),
    Kind.LONG: (-(2**63), 2**63 - 1),
    Kind.UBYTE: (0, 2**8 - 1),
    Kind.USHORT: (0, 2**16 - 1),
    Kind.UINT: (0, 2**32 - 1),
    Kind.ENUM: (-(2**31), 2**31 - 1),
}
# The widest wire code each integer kind accepts on read.
_INT_MAX_WIRE = {
    Kind.BOOL: W_INT1,
    Kind.BYTE: W_INT1,
    Kind.SHORT: W_INT2,
    Kind.UBYTE: W_INT2,
    Kind.INT: W_INT4,
    Kind.USHORT: W_INT4,
    Kind.ENUM: W_INT4,
    Kind.LONG: W_INT8,
    Kind.UINT: W_INT8,
}

_IDL_NAMES = {
    Kind.BOOL: "bool",
    Kind.BYTE: "byte",
    Kind.SHORT: "short",
    Kind.INT: "int",
    Kind.LONG: "long",
    Kind.UBYTE: "unsigned byte",
    Kind.USHORT: "unsigned short",
    Kind.UINT: "unsigned int",
    Kind.FLOAT: "float",
    Kind.DOUBLE: "double",
    Kind.STRING: "string",
    Kind.BYTES: "vector<byte>",
}
# Names used by TUP v2 (UniAttribute with type names) and by TarsGo/TarsJava for the same types.
_TUP_NAMES = {
    Kind.BOOL: "bool",
    Kind.BYTE: "char",
    Kind.SHORT: "short",
    Kind.INT: "int32",
    Kind.LONG: "int64",
    Kind.UBYTE: "short",
    Kind.USHORT: "int32",
    Kind.UINT: "int64",
    Kind.FLOAT: "float",
    Kind.DOUBLE: "double",
    Kind.STRING: "string",
    Kind.BYTES: "list<char>",
}


class TarsType:
    """An IDL type: a kind plus, for containers, structs and enums, what they hold.

    Instances are immutable and compare by structure; use the module constants and ``vector_of`` / ``map_of`` /
    ``struct_of`` / ``enum_of`` to make them.
    """

    __slots__ = ("cls", "elem", "key", "kind", "value")

    def __init__(
        self,
        kind: Kind,
        elem: TarsType | None = None,
        key: TarsType | None = None,
        value: TarsType | None = None,
        cls: type | None = None,
    ) -> None:
        self.kind, self.elem, self.key, self.value, self.cls = kind, elem, key, value, cls

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TarsType):
            return NotImplemented
        return (self.kind, self.elem, self.key, self.value, self.cls) == (
            other.kind,
            other.elem,
            other.key,
            other.value,
            other.cls,
        )

    def __hash__(self) -> int:
        return hash((self.kind, self.elem, self.key, self.value, self.cls))

    def __repr__(self) -> str:
        return f"TarsType({self.idl_name()})"

    def idl_name(self) -> str:
        """The type as written in a .tars file."""
        if self.kind in _IDL_NAMES:
            return _IDL_NAMES[self.kind]
        if self.kind is Kind.VECTOR:
            assert self.elem is not None
            return f"vector<{self.elem.idl_name()}>"
        if self.kind is Kind.MAP:
            assert self.key is not None and self.value is not None
            return f"map<{self.key.idl_name()}, {self.value.idl_name()}>"
        assert self.cls is not None
        return str(getattr(self.cls, "__tars_name__", self.cls.__name__))

    def tup_name(self) -> str:
        """The type name TUP v2 (UniAttribute with types) writes for this type."""
        if self.kind in _TUP_NAMES:
            return _TUP_NAMES[self.kind]
        if self.kind is Kind.VECTOR:
            assert self.elem is not None
            return f"list<{self.elem.tup_name()}>"
        if self.kind is Kind.MAP:
            assert self.key is not None and self.value is not None
            return f"map<{self.key.tup_name()},{self.value.tup_name()}>"
        if self.kind is Kind.ENUM:
            return "int32"
        return self.idl_name()

    def default(self) -> Any:
        """The value of a field of this type that has no IDL default."""
        k = self.kind
        if k is Kind.BOOL:
            return False
        if k in (Kind.FLOAT, Kind.DOUBLE):
            return 0.0
        if k is Kind.STRING:
            return ""
        if k is Kind.BYTES:
            return b""
        if k is Kind.VECTOR:
            return []
        if k is Kind.MAP:
            return {}
        if k is Kind.STRUCT:
            assert self.cls is not None
            return self.cls()
        if k is Kind.ENUM:
            assert self.cls is not None
            members = list(self.cls)  # type: ignore[call-overload]
            return members[0] if members else 0
        return 0


BOOL = TarsType(Kind.BOOL)
BYTE = TarsType(Kind.BYTE)
SHORT = TarsType(Kind.SHORT)
INT = TarsType(Kind.INT)
LONG = TarsType(Kind.LONG)
UBYTE = TarsType(Kind.UBYTE)
USHORT = TarsType(Kind.USHORT)
UINT = TarsType(Kind.UINT)
FLOAT = TarsType(Kind.FLOAT)
DOUBLE = TarsType(Kind.DOUBLE)
STRING = TarsType(Kind.STRING)
BYTES = TarsType(Kind.BYTES)


def vector_of(elem: TarsType) -> TarsType:
    """``vector<elem>``; ``vector<byte>`` is the BYTES type (a SimpleList on the wire)."""
    if elem.kind is Kind.BYTE:
        return BYTES
    return TarsType(Kind.VECTOR, elem=elem)


def map_of(key: TarsType, value: TarsType) -> TarsType:
    return TarsType(Kind.MAP, key=key, value=value)


def struct_of(cls: type) -> TarsType:
    return TarsType(Kind.STRUCT, cls=cls)


def enum_of(cls: type) -> TarsType:
    return TarsType(Kind.ENUM, cls=cls)


@dataclass(frozen=True, slots=True)
class Field:
    """One member of a struct, or one parameter of an operation."""

    tag: int
    name: str
    type: TarsType
    required: bool = False
    default: Any = None  # None means the type's own default

    def default_value(self) -> Any:
        if self.default is None:
            return self.type.default()
        if isinstance(self.default, list | dict):
            return type(self.default)(self.default)
        return self.default


class Struct:
    """Base of generated structs (which are also dataclasses with fields in tag order)."""

    __slots__ = ()
    __tars_name__: ClassVar[str] = ""
    __tars_fields__: ClassVar[tuple[Field, ...]] = ()


S = TypeVar("S", bound=Struct)

# --------------------------------------------------------------------------------------------------------------
# Writing


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

# --------------------------------------------------------------------------------------------------------------
# Reading


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

# --------------------------------------------------------------------------------------------------------------
# The small public API


def encode(obj: Struct, *, skip_defaults: bool = True) -> bytes:
    """A struct as a bare field sequence (what ``writeTo`` produces in TarsCpp/TarsGo)."""
    w = TarsWriter(skip_defaults)
    w.write_struct_body(obj)
    return w.getvalue()


def decode(cls: type[S], data: bytes | bytearray | memoryview) -> S:
    """A struct from a bare field sequence; raises DecodeError on malformed input."""
    return TarsReader(data).read_struct_body(cls, nested=False)


def encode_fields(fields: Sequence[Field], values: Sequence[Any], *, skip_defaults: bool = True) -> bytes:
    """A parameter list (or any bare field sequence) from values in the order of ``fields``."""
    w = TarsWriter(skip_defaults)
    w.write_fields(fields, values)
    return w.getvalue()


def decode_fields(fields: Sequence[Field], data: bytes | bytearray | memoryview) -> list[Any]:
    """Values of ``fields`` (in their order) from a bare field sequence."""
    return TarsReader(data).read_fields(fields, nested=False)


def encode_value(t: TarsType, value: Any, tag: int = 0, *, skip_defaults: bool = True) -> bytes:
    """One value as a single field (what TUP stores per parameter)."""
    w = TarsWriter(skip_defaults)
    w.write(tag, t, value)
    return w.getvalue()


def decode_value(t: TarsType, data: bytes | bytearray | memoryview, tag: int = 0) -> Any:
    """The field with ``tag`` from ``data`` as type ``t``; DecodeError if it is absent."""
    return TarsReader(data).read_fields((Field(tag, "value", t, True),), nested=False)[0]


def _encode_framed(obj: Struct, *, skip_defaults: bool = True) -> bytes:
    """``encode(obj)`` behind a 4-byte big-endian length that counts itself (a whole RPC frame)."""
    w = TarsWriter(skip_defaults)
    w.buf += b"\0\0\0\0"
    w.write_struct_body(obj)
    _pack_into_I(w.buf, 0, len(w.buf))
    return bytes(w.buf)


# --------------------------------------------------------------------------------------------------------------
# Backends: the pure-Python functions above and, when it was built, the C accelerator


@dataclass(frozen=True)
class Backend:
    """One implementation of the module-level codec functions (same signatures as those)."""

    name: str
    encode: Callable[..., bytes]
    decode: Callable[..., Any]
    encode_fields: Callable[..., bytes]
    decode_fields: Callable[..., list[Any]]
    encode_value: Callable[..., bytes]
    decode_value: Callable[..., Any]
    encode_framed: Callable[..., bytes]


def _plain_init(cls: type) -> bool:
    """Whether ``cls(*values)`` only stores each value in the attribute named after its field, in the order of
    ``__tars_fields__``: a dataclass-generated ``__init__`` without ``__post_init__``, ``InitVar``, ``init=False`` or
    keyword-only fields, or a custom ``__setattr__``. The accelerator then fills the slots without calling it."""
    params = cls.__dict__.get("__dataclass_params__")
    code = getattr(cls.__dict__.get("__init__"), "__code__", None)
    if params is None or not params.init or code is None or code.co_filename != "<string>":
        return False
    if hasattr(cls, "__post_init__") or (
        not params.frozen and getattr(cls, "__setattr__", None) is not object.__setattr__
    ):
        return False
    names = tuple(f.name for f in getattr(cls, "__tars_fields__", ()))
    return (
        code.co_argcount == len(names) + 1
        and code.co_kwonlyargcount == 0
        and code.co_varnames[1 : len(names) + 1] == names
        and tuple(f.name for f in dataclasses.fields(cls)) == names
    )


def _load_speedups() -> Backend | None:
    if os.environ.get("K8STARS_PURE_PYTHON", "").strip().lower() in ("1", "true", "yes", "on"):
        return None
    try:
        mod: Any = importlib.import_module("k8stars.tars._speedups")
    except ImportError:
        return None
    mod.configure(
        decode_error=DecodeError,
        encode_error=EncodeError,
        struct=Struct,
        mapping=Mapping,
        field=Field,
        plain_init=_plain_init,
        max_depth=MAX_DEPTH,
    )
    return Backend(
        "c",
        mod.encode,
        mod.decode,
        mod.encode_fields,
        mod.decode_fields,
        mod.encode_value,
        mod.decode_value,
        mod.encode_framed,
    )


_BACKENDS: dict[str, Backend] = {
    "python": Backend(
        "python", encode, decode, encode_fields, decode_fields, encode_value, decode_value, _encode_framed
    )
}
_C_BACKEND = _load_speedups()
if _C_BACKEND is not None:
    _BACKENDS["c"] = _C_BACKEND
_backend = "python"


def available_backends() -> tuple[str, ...]:
    """``("python", "c")`` when the accelerator is there (and not disabled by ``K8STARS_PURE_PYTHON=1``)."""
    return tuple(_BACKENDS)


def get_backend(name: str | None = None) -> Backend:
    """The implementation called ``name`` ("python" or "c"), by default the one in use."""
    try:
        return _BACKENDS[name or _backend]
    except KeyError:
        raise ValueError(f"no codec backend {name!r}; have {', '.join(_BACKENDS)}") from None


def backend() -> str:
    """The name of the implementation the module-level functions use."""
    return _backend


def use_backend(name: str) -> None:
    """Route ``encode``, ``decode``, ``encode_fields``, ``decode_fields``, ``encode_value``, ``decode_value`` (and
    the packet functions) through the implementation called ``name``. Modules that imported those functions by name
    keep the ones they got."""
    global _backend, encode, decode, encode_fields, decode_fields, encode_value, decode_value, _encode_framed
    b = get_backend(name)
    encode, decode, encode_fields, decode_fields = b.encode, b.decode, b.encode_fields, b.decode_fields
    encode_value, decode_value, _encode_framed = b.encode_value, b.decode_value, b.encode_framed
    _backend = b.name


use_backend("c" if _C_BACKEND is not None else "python")
