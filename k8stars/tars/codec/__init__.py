"""The TARS binary encoding ("JCE"): types (schema.py), a writer (writer.py), a reader (reader.py), and here struct
(de)serialisation and the choice of implementation.

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
import importlib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from k8stars.tars.errors import DecodeError, EncodeError

from .reader import TarsReader, tag_index
from .schema import _INT_RANGES as _INT_RANGES  # the IDL compiler checks constants against them
from .schema import (
    BOOL,
    BYTE,
    BYTES,
    DOUBLE,
    FLOAT,
    INT,
    LONG,
    MAX_DEPTH,
    SHORT,
    STRING,
    UBYTE,
    UINT,
    USHORT,
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
    enum_of,
    map_of,
    struct_of,
    vector_of,
)
from .writer import TarsWriter, _pack_into_I

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

__all__ = [
    "BOOL",
    "BYTE",
    "BYTES",
    "DOUBLE",
    "FLOAT",
    "INT",
    "LONG",
    "MAX_DEPTH",
    "SHORT",
    "STRING",
    "UBYTE",
    "UINT",
    "USHORT",
    "WIRE_NAMES",
    "W_DOUBLE",
    "W_FLOAT",
    "W_INT1",
    "W_INT2",
    "W_INT4",
    "W_INT8",
    "W_LIST",
    "W_MAP",
    "W_SIMPLE_LIST",
    "W_STRING1",
    "W_STRING4",
    "W_STRUCT_BEGIN",
    "W_STRUCT_END",
    "W_ZERO",
    "Backend",
    "Field",
    "Kind",
    "Struct",
    "TarsReader",
    "TarsType",
    "TarsWriter",
    "available_backends",
    "backend",
    "decode",
    "decode_fields",
    "decode_value",
    "encode",
    "encode_fields",
    "encode_value",
    "enum_of",
    "get_backend",
    "map_of",
    "struct_of",
    "tag_index",
    "use_backend",
    "vector_of",
]
