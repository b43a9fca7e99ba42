"""TARS values <-> JSON-compatible Python values, by IDL type (for ``k8stars call`` and iVersion 5 JSON calls).

Structs are objects keyed by field name; ``map<string, V>`` an object; other maps a list of ``[key, value]``
pairs; ``vector<byte>`` a base64 string; enums their integer value.
"""

from __future__ import annotations

import base64
import binascii
import json
import reprlib
from typing import Any

from k8stars.tars.codec import Kind, Struct, TarsType
from k8stars.tars.errors import DecodeError, EncodeError

_shown = reprlib.Repr()  # a bad value in an error text: short, however big or deep the value
_shown.maxlevel, _shown.maxstring, _shown.maxother, _shown.maxlist, _shown.maxdict = 3, 60, 60, 5, 5


def loads_object(body: bytes) -> dict[str, Any]:
    """The JSON object of an iVersion 5 call body; DecodeError when it is not UTF-8 JSON, not an object, or nests
    deeper than the parser's recursion allows (json would raise RecursionError, which no caller expects)."""
    try:
        doc = json.loads(body.decode("utf-8")) if body else {}
    except RecursionError:
        raise DecodeError("a JSON call body nested too deep") from None
    except ValueError as e:  # UnicodeDecodeError and JSONDecodeError
        raise DecodeError(f"a JSON call body that is not UTF-8 JSON: {e}") from None
    if not isinstance(doc, dict):
        raise DecodeError("a JSON call body must be an object")
    return doc


def to_json(t: TarsType, value: Any) -> Any:
    k = t.kind
    if k is Kind.BYTES:
        return base64.b64encode(bytes(value)).decode()
    if k is Kind.ENUM:
        return int(value)
    if k is Kind.VECTOR:
        assert t.elem is not None
        return [to_json(t.elem, v) for v in value]
    if k is Kind.MAP:
        assert t.key is not None and t.value is not None
        if t.key.kind is Kind.STRING:
            return {key: to_json(t.value, v) for key, v in value.items()}
        return [[to_json(t.key, key), to_json(t.value, v)] for key, v in value.items()]
    if k is Kind.STRUCT:
        return struct_to_json(value)
    return value


def struct_to_json(obj: Struct) -> dict[str, Any]:
    return {f.name: to_json(f.type, getattr(obj, f.name)) for f in type(obj).__tars_fields__}


def from_json(t: TarsType, value: Any, where: str = "value") -> Any:
    """The Python value for JSON ``value`` of type ``t``; EncodeError names the place of a mismatch."""
    k = t.kind
    try:
        if k is Kind.BOOL:
            if not isinstance(value, bool):
                raise TypeError("a boolean")
            return value
        if k in (Kind.BYTE, Kind.SHORT, Kind.INT, Kind.LONG, Kind.UBYTE, Kind.USHORT, Kind.UINT, Kind.ENUM):
            if isinstance(value, bool) or not isinstance(value, int | str):
                raise TypeError("an integer")
            try:
                n = int(value)  # strings allowed: JSON numbers lose precision beyond 2**53
            except ValueError:
                raise TypeError("an integer") from None
            if k is Kind.ENUM and t.cls is not None:
                try:
                    return t.cls(n)
                except ValueError:
                    return n
            return n
        if k in (Kind.FLOAT, Kind.DOUBLE):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError("a number")
            return float(value)
        if k is Kind.STRING:
            if not isinstance(value, str):
                raise TypeError("a string")
            return value
        if k is Kind.BYTES:
            if not isinstance(value, str):
                raise TypeError("a base64 string")
            return base64.b64decode(value, validate=True)
        if k is Kind.VECTOR:
            assert t.elem is not None
            if not isinstance(value, list):
                raise TypeError("a list")
            return [from_json(t.elem, v, f"{where}[{i}]") for i, v in enumerate(value)]
        if k is Kind.MAP:
            return _map_from_json(t, value, where)
        if k is Kind.STRUCT:
            assert t.cls is not None
            return struct_from_json(t.cls, value, where)
    except (TypeError, ValueError, binascii.Error) as e:
        raise EncodeError(f"{where}: expected {e} for {t.idl_name()}, got {_shown.repr(value)}") from None
    raise EncodeError(f"{where}: unsupported type {t.idl_name()}")


def _map_from_json(t: TarsType, value: Any, where: str) -> dict[Any, Any]:
    assert t.key is not None and t.value is not None
    if isinstance(value, dict):
        pairs = list(value.items())
    elif isinstance(value, list) and all(isinstance(p, list) and len(p) == 2 for p in value):
        pairs = [(p[0], p[1]) for p in value]
    else:
        raise TypeError("an object or a list of [key, value] pairs")
    return {from_json(t.key, k, f"{where}.key"): from_json(t.value, v, f"{where}[{k!r}]") for k, v in pairs}


def struct_from_json(cls: type, value: Any, where: str = "value") -> Any:
    if not isinstance(value, dict):
        raise EncodeError(f"{where}: expected an object for {cls.__name__}, got {_shown.repr(value)}")
    fields = {f.name: f for f in cls.__tars_fields__}  # type: ignore[attr-defined]
    unknown = set(value) - set(fields)
    if unknown:
        raise EncodeError(f"{where}: {cls.__name__} has no field {_shown.repr(sorted(unknown))}")
    kwargs = {name: from_json(f.type, value[name], f"{where}.{name}") for name, f in fields.items() if name in value}
    return cls(**kwargs)
