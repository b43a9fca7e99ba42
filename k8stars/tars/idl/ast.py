"""The syntax tree of a .tars file, as the parser produces it (names not yet resolved)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Pos:
    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


# Builtin type names; unsigned ones are spelled "unsigned int" etc.
BUILTINS = (
    "bool", "byte", "short", "int", "long", "float", "double", "string",
    "unsigned byte", "unsigned short", "unsigned int",
)  # fmt: skip


@dataclass(frozen=True)
class TypeRef:
    """``name`` is a builtin, ``vector``, ``map`` or a (possibly scoped, ``A::B``) user type name."""

    name: str
    args: tuple[TypeRef, ...] = ()
    pos: Pos | None = field(default=None, compare=False)

    @property
    def is_builtin(self) -> bool:
        return self.name in BUILTINS

    def __str__(self) -> str:
        if self.args:
            return f"{self.name}<{', '.join(str(a) for a in self.args)}>"
        return self.name


@dataclass(frozen=True)
class Literal:
    """A default or const value: int, float, str, bool, or an enumerator name (``kind == "name"``)."""

    kind: str  # "int" | "float" | "string" | "bool" | "name"
    value: int | float | str | bool
    pos: Pos | None = field(default=None, compare=False)


@dataclass
class StructField:
    tag: int
    required: bool
    type: TypeRef
    name: str
    default: Literal | None
    pos: Pos


@dataclass
class Struct:
    name: str
    fields: list[StructField]
    pos: Pos
    key: list[str] | None = None


@dataclass
class Enumerator:
    name: str
    value: int
    pos: Pos


@dataclass
class Enum:
    name: str
    members: list[Enumerator]
    pos: Pos


@dataclass
class Const:
    name: str
    type: TypeRef
    value: Literal
    pos: Pos


@dataclass
class Param:
    name: str
    type: TypeRef
    out: bool
    routekey: bool
    pos: Pos


@dataclass
class Operation:
    name: str
    ret: TypeRef | None
    params: list[Param]
    pos: Pos


@dataclass
class Interface:
    name: str
    operations: list[Operation]
    pos: Pos


Definition = Struct | Enum | Const | Interface


@dataclass
class Module:
    name: str
    definitions: list[Definition]
    pos: Pos


@dataclass
class IdlFile:
    path: str
    includes: list[str]  # as written in #include
    modules: list[Module]
