"""Semantic layer of the IDL compiler: reads files with their includes, resolves names, checks the rules of the
language, and turns the result into run-time types (for ``k8stars call --idl``) or Python source (``tars2py``)."""

from __future__ import annotations

import dataclasses
import enum
import keyword
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from k8stars.tars import codec
from k8stars.tars.errors import IdlError
from k8stars.tars.idl import ast
from k8stars.tars.idl.parser import parse_file
from k8stars.tars.interface import Interface, Operation, Param

_INT_TYPES = {"byte", "short", "int", "long", "unsigned byte", "unsigned short", "unsigned int"}
_BUILTIN_TYPES = {
    "bool": codec.BOOL,
    "byte": codec.BYTE,
    "short": codec.SHORT,
    "int": codec.INT,
    "long": codec.LONG,
    "unsigned byte": codec.UBYTE,
    "unsigned short": codec.USHORT,
    "unsigned int": codec.UINT,
    "float": codec.FLOAT,
    "double": codec.DOUBLE,
    "string": codec.STRING,
}


def py_name(name: str) -> str:
    """An IDL identifier as a Python identifier (Python keywords get a trailing underscore)."""
    return f"{name}_" if keyword.iskeyword(name) or name in ("None", "True", "False") else name


@dataclass
class Symbol:
    module: str
    definition: ast.Struct | ast.Enum | ast.Const | ast.Interface
    file: ast.IdlFile

    @property
    def qualified(self) -> str:
        return f"{self.module}::{self.definition.name}"


@dataclass
class Program:
    """Every file reachable from the inputs (dependencies first) and every definition by ``module::name``."""

    files: list[ast.IdlFile] = field(default_factory=list)
    symbols: dict[str, Symbol] = field(default_factory=dict)
    inputs: list[str] = field(default_factory=list)
    included: dict[str, list[ast.IdlFile]] = field(default_factory=dict)  # file path -> files it includes

    def file_symbols(self, f: ast.IdlFile) -> list[Symbol]:
        return [s for s in self.symbols.values() if s.file is f]

    # -- name resolution -------------------------------------------------------------------------------------
    def lookup(self, name: str, module: str, pos: ast.Pos | None, visible: set[str]) -> Symbol:
        candidates = [name] if "::" in name else [f"{module}::{name}"]
        for cand in candidates:
            sym = self.symbols.get(cand)
            if sym is not None and sym.file.path in visible:
                return sym
        where = (pos.file, pos.line, pos.column) if pos else ("<idl>", 0, 0)
        hint = "" if "::" in name else f" in module {module} (use Module::{name} for another module)"
        raise IdlError(f"unknown type {name}{hint}", *where)

    def resolve_type(self, t: ast.TypeRef, module: str, visible: set[str]) -> ast.TypeRef | Symbol:
        if t.is_builtin or t.name in ("vector", "map"):
            return t
        sym = self.lookup(t.name, module, t.pos, visible)
        if isinstance(sym.definition, ast.Const | ast.Interface):
            where = (t.pos.file, t.pos.line, t.pos.column) if t.pos else ("<idl>", 0, 0)
            raise IdlError(f"{t.name} is not a type", *where)
        return sym


def load(paths: Sequence[str | Path], include_dirs: Sequence[str | Path] = ()) -> Program:
    """Parse ``paths`` and, transitively, their #include files (relative to the including file, then the
    include directories), each file once; then check every definition."""
    program = Program()
    seen: dict[str, ast.IdlFile] = {}
    stack: list[str] = []

    def visit(path: Path) -> ast.IdlFile:
        key = str(path.resolve())
        if key in seen:
            return seen[key]
        if key in stack:
            raise IdlError("circular #include", str(path), 0, 0)
        stack.append(key)
        f = parse_file(path)
        program.included[f.path] = [visit(_find_include(inc, path, include_dirs)) for inc in f.includes]
        stack.pop()
        seen[key] = f
        program.files.append(f)
        _add_symbols(program, f)
        return f

    for p in paths:
        program.inputs.append(visit(Path(p)).path)
    for f in program.files:
        _check_file(program, f)
    return program


def _find_include(name: str, including: Path, include_dirs: Sequence[str | Path]) -> Path:
    for base in (including.parent, *map(Path, include_dirs)):
        cand = base / name
        if cand.is_file():
            return cand
    raise IdlError(f'cannot find #include "{name}"', str(including), 0, 0)


def _add_symbols(program: Program, f: ast.IdlFile) -> None:
    for m in f.modules:
        for d in m.definitions:
            q = f"{m.name}::{d.name}"
            if q in program.symbols:
                other = program.symbols[q].definition.pos
                raise IdlError(f"{q} is already defined at {other}", d.pos.file, d.pos.line, d.pos.column)
            program.symbols[q] = Symbol(m.name, d, f)
            if d.name.startswith("tars") and m.name != "tars":
                raise IdlError(f"identifier {d.name} starts with the reserved word 'tars'", *_where(d.pos))


def visible_files(program: Program, f: ast.IdlFile) -> set[str]:
    """The file itself and everything it includes, transitively."""
    out: set[str] = set()
    todo = [f]
    while todo:
        cur = todo.pop()
        if cur.path not in out:
            out.add(cur.path)
            todo.extend(program.included.get(cur.path, ()))
    return out


def _where(p: ast.Pos | None) -> tuple[str, int, int]:
    return (p.file, p.line, p.column) if p else ("<idl>", 0, 0)


def _check_file(program: Program, f: ast.IdlFile) -> None:
    visible = visible_files(program, f)
    for m in f.modules:
        for d in m.definitions:
            if isinstance(d, ast.Struct):
                for sf in d.fields:
                    _check_type(program, sf.type, m.name, visible)
                    if sf.default is not None:
                        _check_default(program, sf.type, sf.default, m.name, visible)
            elif isinstance(d, ast.Const):
                if not d.type.is_builtin:
                    raise IdlError(f"const {d.name} must have a builtin type", *_where(d.pos))
                _check_default(program, d.type, d.value, m.name, visible)
            elif isinstance(d, ast.Interface):
                for op in d.operations:
                    if op.ret is not None:
                        _check_type(program, op.ret, m.name, visible)
                    for p in op.params:
                        _check_type(program, p.type, m.name, visible)


def _check_type(program: Program, t: ast.TypeRef, module: str, visible: set[str]) -> None:
    program.resolve_type(t, module, visible)
    for a in t.args:
        _check_type(program, a, module, visible)


def _check_default(program: Program, t: ast.TypeRef, lit: ast.Literal, module: str, visible: set[str]) -> None:
    where = _where(lit.pos)
    if t.name == "bool":
        ok = lit.kind == "bool"
    elif t.name == "string":
        ok = lit.kind == "string"
    elif t.name in _INT_TYPES:
        ok = lit.kind == "int" or (lit.kind == "name" and _const_int(program, str(lit.value), module, visible))
        if ok and lit.kind == "int":
            lo, hi = codec._INT_RANGES[_BUILTIN_TYPES[t.name].kind]
            if not lo <= int(lit.value) <= hi:
                raise IdlError(f"default {lit.value} is out of range for {t.name}", *where)
    elif t.name in ("float", "double"):
        ok = lit.kind in ("int", "float")
    elif t.name in ("vector", "map"):
        raise IdlError(f"a {t.name} cannot have a default value", *where)
    else:
        target = program.resolve_type(t, module, visible)
        if isinstance(target, Symbol) and isinstance(target.definition, ast.Enum):
            ok = lit.kind == "int" or (
                lit.kind == "name" and _enumerator(target.definition, str(lit.value)) is not None
            )
        else:
            raise IdlError(f"a struct member of type {t.name} cannot have a default value", *where)
    if not ok:
        raise IdlError(f"default value {lit.value!r} does not fit type {t}", *where)


def _enumerator(e: ast.Enum, name: str) -> ast.Enumerator | None:
    short = name.split("::")[-1]
    return next((m for m in e.members if m.name == short), None)


def _const_int(program: Program, name: str, module: str, visible: set[str]) -> bool:
    sym = program.symbols.get(name if "::" in name else f"{module}::{name}")
    return sym is not None and isinstance(sym.definition, ast.Const) and sym.definition.value.kind == "int"


def literal_value(program: Program, lit: ast.Literal, module: str) -> int | float | str | bool:
    """The Python value of a literal; enumerator and const names become their values."""
    if lit.kind != "name":
        return lit.value
    name = str(lit.value)
    parts = name.split("::")
    for sym in program.symbols.values():
        d = sym.definition
        if isinstance(d, ast.Enum) and (len(parts) == 1 or parts[-2] in (d.name, sym.module)):
            e = _enumerator(d, name)
            if e is not None:
                return e.value
        if isinstance(d, ast.Const) and d.name == parts[-1]:
            return literal_value(program, d.value, sym.module)
    raise IdlError(f"unknown value {name}", *_where(lit.pos))


# --------------------------------------------------------------------------------------------------------------
# Run-time types, built straight from the program (no generated source needed)


class Runtime:
    """Python classes for every definition of a program: structs, enums, consts, interfaces."""

    def __init__(self, program: Program) -> None:
        self.program = program
        self.objects: dict[str, Any] = {}
        for f in program.files:
            for sym in program.file_symbols(f):
                self.objects[sym.qualified] = self._build(sym)

    def __getitem__(self, qualified: str) -> Any:
        return self.objects[qualified]

    def interfaces(self) -> dict[str, Interface]:
        return {q: o for q, o in self.objects.items() if isinstance(o, Interface)}

    def tars_type(self, t: ast.TypeRef, module: str, visible: set[str]) -> codec.TarsType:
        if t.is_builtin:
            return _BUILTIN_TYPES[t.name]
        if t.name == "vector":
            return codec.vector_of(self.tars_type(t.args[0], module, visible))
        if t.name == "map":
            return codec.map_of(self.tars_type(t.args[0], module, visible), self.tars_type(t.args[1], module, visible))
        sym = self.program.resolve_type(t, module, visible)
        assert isinstance(sym, Symbol)
        cls = self.objects[sym.qualified]
        return codec.enum_of(cls) if isinstance(sym.definition, ast.Enum) else codec.struct_of(cls)

    def _build(self, sym: Symbol) -> Any:
        d, module = sym.definition, sym.module
        visible = visible_files(self.program, sym.file)
        if isinstance(d, ast.Enum):
            return enum.IntEnum(d.name, [(m.name, m.value) for m in d.members])
        if isinstance(d, ast.Const):
            return literal_value(self.program, d.value, module)
        if isinstance(d, ast.Struct):
            return self._build_struct(d, module, visible)
        ops = {}
        for op in d.operations:
            ret = None if op.ret is None else self.tars_type(op.ret, module, visible)
            params = tuple(
                Param(i + 1, py_name(p.name), self.tars_type(p.type, module, visible), p.out, p.routekey)
                for i, p in enumerate(op.params)
            )
            ops[op.name] = Operation(op.name, ret, params)
        return Interface(module, d.name, ops)

    def _build_struct(self, d: ast.Struct, module: str, visible: set[str]) -> type:
        fields: list[codec.Field] = []
        specs: list[tuple[str, type, Any]] = []
        for sf in sorted(d.fields, key=lambda x: x.tag):
            t = self.tars_type(sf.type, module, visible)
            default = None
            if sf.default is not None:
                default = literal_value(self.program, sf.default, module)
                if t.kind is codec.Kind.ENUM:
                    default = _enum_member(t.cls, default)
                elif t.kind in (codec.Kind.FLOAT, codec.Kind.DOUBLE):
                    default = float(default)
            f = codec.Field(sf.tag, py_name(sf.name), t, sf.required, default)
            fields.append(f)
            compare = d.key is None or sf.name in d.key
            specs.append((f.name, object, dataclasses.field(default_factory=f.default_value, compare=compare)))
        cls = dataclasses.make_dataclass(
            d.name,
            specs,
            bases=(codec.Struct,),
            namespace={"__tars_name__": f"{module}.{d.name}", "__tars_fields__": tuple(fields)},
            slots=True,
            unsafe_hash=True,
            order=d.key is not None,
        )
        return cls


def _enum_member(cls: Any, value: Any) -> Any:
    try:
        return cls(value)
    except ValueError:
        return value


def load_runtime(paths: Iterable[str | Path], include_dirs: Sequence[str | Path] = ()) -> Runtime:
    """Parse and check IDL files and build their run-time types."""
    return Runtime(load(list(paths), include_dirs))
