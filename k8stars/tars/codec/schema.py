"""The TARS type system: wire type codes, IDL kinds, `TarsType`, `Field` and the `Struct` base."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

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
