"""What an IDL interface looks like at run time: its operations, their parameters and results.

For ``ret op(p1, out p2, ...)`` parameters are tagged 1..N by position, ``in`` and ``out`` together; the return value
has tag 0. A request body holds the ``in`` parameters, a response body the return value and the ``out`` ones.
Results: an operation without ``out`` parameters returns its value (``None`` for void); one with ``out`` parameters
returns a named tuple ``(ret, out1, ...)`` (no ``ret`` for void).
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from k8stars.tars.codec import Field, TarsType, decode_fields, encode_fields


@dataclass(frozen=True)
class Param:
    tag: int
    name: str
    type: TarsType
    out: bool = False
    routekey: bool = False


@dataclass(frozen=True)
class Operation:
    name: str
    ret: TarsType | None
    params: tuple[Param, ...]
    result_type: type | None = None  # a NamedTuple for operations with out parameters; made if not given
    in_fields: tuple[Field, ...] = field(init=False, repr=False, compare=False)
    out_fields: tuple[Field, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        ins = tuple(Field(p.tag, p.name, p.type, True) for p in self.params if not p.out)
        outs = tuple(Field(p.tag, p.name, p.type, True) for p in self.params if p.out)
        if self.ret is not None:
            outs = (Field(0, "ret", self.ret, True), *outs)
        object.__setattr__(self, "in_fields", ins)
        object.__setattr__(self, "out_fields", outs)
        if self.result_type is None and any(p.out for p in self.params):
            result = namedtuple(f"{self.name}_result", [f.name for f in outs])  # type: ignore[misc]
            object.__setattr__(self, "result_type", result)

    def encode_args(self, args: Sequence[Any]) -> bytes:
        return encode_fields(self.in_fields, args)

    def decode_args(self, data: bytes) -> list[Any]:
        return decode_fields(self.in_fields, data)

    def encode_result(self, result: Any) -> bytes:
        """The response body for what a servant method returned (see the module doc for its shape)."""
        if self.result_type is None:
            values: Sequence[Any] = () if self.ret is None else (result,)
        else:
            if not isinstance(result, tuple) or len(result) != len(self.out_fields):
                names = ", ".join(f.name for f in self.out_fields)
                raise TypeError(f"{self.name} must return a tuple ({names}), got {result!r}")
            values = result
        return encode_fields(self.out_fields, values)

    def decode_result(self, data: bytes) -> Any:
        values = decode_fields(self.out_fields, data)
        if self.result_type is not None:
            return self.result_type(*values)
        return values[0] if self.ret is not None else None

    def args_from_mapping(self, named: Mapping[str, Any]) -> list[Any]:
        """In-parameters by IDL name (for JSON callers); missing ones get their type's default."""
        known = {f.name for f in self.in_fields}
        unknown = set(named) - known
        if unknown:
            raise KeyError(f"{self.name} has no parameter {', '.join(sorted(unknown))}")
        return [named[f.name] if f.name in named else f.type.default() for f in self.in_fields]


@dataclass(frozen=True)
class Interface:
    """An IDL interface: ``module`` and ``name`` as in the .tars file, operations by name."""

    module: str
    name: str
    operations: Mapping[str, Operation]

    def __getitem__(self, name: str) -> Operation:
        return self.operations[name]
