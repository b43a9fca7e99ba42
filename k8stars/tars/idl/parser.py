"""A parser for the whole .tars IDL language (the grammar of tars.y), with errors that name file, line and column."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from k8stars.tars.errors import IdlError
from k8stars.tars.idl import ast

KEYWORDS = frozenset(
    "void struct bool byte short int double float long string vector map key routekey module interface out "
    "require optional false true enum const unsigned".split()
)
_SIMPLE_TYPES = ("bool", "byte", "short", "int", "long", "float", "double", "string")

_TOKEN_RE = re.compile(
    r"""
    (?P<ws>[ \t\r\f\v]+|\n)
  | (?P<comment>//[^\n]*|/\*.*?\*/)
  | (?P<include>\#include\b)
  | (?P<float>(?:\d+\.\d*|\.\d+)(?:[eE][+-]?\d+)?[fF]?|\d+[eE][+-]?\d+[fF]?|\d+[fF])
  | (?P<int>0[xX][0-9a-fA-F]+|\d+)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<scope>::)
  | (?P<punct>[{}()<>,;=\[\]:*+-])
    """,
    re.VERBOSE | re.DOTALL,
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "a": "\a", "b": "\b", "f": "\f",
            "v": "\v", "0": "\0", "?": "?"}  # fmt: skip


@dataclass(frozen=True)
class Token:
    kind: str  # "include" | "float" | "int" | "ident" | "string" | "punct" | "eof"
    text: str
    line: int
    column: int


def tokenize(text: str, file: str) -> list[Token]:
    tokens: list[Token] = []
    pos, line, line_start = 0, 1, 0
    n = len(text)
    while pos < n:
        m = _TOKEN_RE.match(text, pos)
        if m is None:
            what = "unterminated string" if text[pos] == '"' else f"unexpected character {text[pos]!r}"
            raise IdlError(what, file, line, pos - line_start + 1)
        kind = m.lastgroup
        assert kind is not None
        tok = m.group()
        if kind == "comment" and tok.startswith("/*") and not tok.endswith("*/"):
            raise IdlError("unterminated comment", file, line, pos - line_start + 1)
        if kind not in ("ws", "comment"):
            tokens.append(Token("punct" if kind == "scope" else kind, tok, line, pos - line_start + 1))
        newlines = tok.count("\n")
        if newlines:
            line += newlines
            line_start = pos + tok.rindex("\n") + 1
        pos = m.end()
    tokens.append(Token("eof", "", line, pos - line_start + 1))
    return tokens


def unescape(literal: str) -> str:
    """The value of a double-quoted IDL string literal (C escapes)."""
    body = literal[1:-1]
    out: list[str] = []
    i = 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        nxt = body[i + 1]
        if nxt == "x":
            m = re.match(r"[0-9a-fA-F]{1,2}", body[i + 2 :])
            if not m:
                raise ValueError("\\x needs hex digits")
            out.append(chr(int(m.group(), 16)))
            i += 2 + len(m.group())
        elif nxt in "01234567":
            m = re.match(r"[0-7]{1,3}", body[i + 1 :])
            assert m is not None
            out.append(chr(int(m.group(), 8)))
            i += 1 + len(m.group())
        elif nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
            i += 2
        else:
            raise ValueError(f"unknown escape \\{nxt}")
    return "".join(out)


class Parser:
    def __init__(self, text: str, file: str) -> None:
        self.file = file
        self.tokens = tokenize(text, file)
        self.i = 0

    # -- token helpers ---------------------------------------------------------------------------------------
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def pos(self, tok: Token | None = None) -> ast.Pos:
        t = tok or self.tok
        return ast.Pos(self.file, t.line, t.column)

    def error(self, message: str, tok: Token | None = None) -> IdlError:
        t = tok or self.tok
        return IdlError(message, self.file, t.line, t.column)

    def next(self) -> Token:
        t = self.tok
        if t.kind != "eof":
            self.i += 1
        return t

    def peek_is(self, text: str) -> bool:
        return self.tok.text == text and self.tok.kind in ("punct", "ident")

    def accept(self, text: str) -> bool:
        if self.peek_is(text):
            self.i += 1
            return True
        return False

    def expect(self, text: str, context: str = "") -> Token:
        if not self.peek_is(text):
            where = f" {context}" if context else ""
            raise self.error(f"expected '{text}'{where}, found {self.describe()}")
        return self.next()

    def describe(self, tok: Token | None = None) -> str:
        t = tok or self.tok
        return "end of file" if t.kind == "eof" else f"'{t.text}'"

    def ident(self, what: str) -> Token:
        t = self.tok
        if t.kind != "ident" or t.text in KEYWORDS:
            raise self.error(f"expected {what}, found {self.describe()}")
        return self.next()

    def scoped_name(self, what: str) -> str:
        parts = []
        if self.accept("::"):
            parts.append("")
        parts.append(self.ident(what).text)
        while self.accept("::"):
            parts.append(self.ident(what).text)
        return "::".join(parts).lstrip(":")

    # -- grammar -------------------------------------------------------------------------------------------------
    def parse_file(self) -> ast.IdlFile:
        includes: list[str] = []
        while self.tok.kind == "include":
            self.next()
            if self.tok.kind != "string":
                raise self.error(f"expected a quoted file name after #include, found {self.describe()}")
            includes.append(unescape(self.next().text))
        modules: list[ast.Module] = []
        pending_keys: list[tuple[str, list[str], Token]] = []
        while self.tok.kind != "eof":
            if self.tok.kind == "include":
                raise self.error("#include must come before the first definition")
            if self.peek_is("module"):
                modules.append(self.parse_module(pending_keys))
            elif self.peek_is("key"):
                raise self.error("key[...] must be inside a module")
            else:
                raise self.error(f"expected 'module' or '#include', found {self.describe()}")
        self.apply_keys(modules, pending_keys)
        return ast.IdlFile(self.file, includes, modules)

    def parse_module(self, pending_keys: list[tuple[str, list[str], Token]]) -> ast.Module:
        start = self.expect("module")
        name = self.ident("a module name")
        self.expect("{", "after the module name")
        defs: list[ast.Definition] = []
        while not self.peek_is("}"):
            if self.tok.kind == "eof":
                raise self.error(f"module {name.text} is not closed: expected '}}'")
            word = self.tok.text
            if word == "struct":
                defs.append(self.parse_struct())
            elif word == "interface":
                defs.append(self.parse_interface())
            elif word == "enum":
                defs.append(self.parse_enum())
            elif word == "const":
                defs.append(self.parse_const())
            elif word == "key":
                pending_keys.append(self.parse_key(name.text))
            elif word == "module":
                raise self.error("modules cannot be nested")
            else:
                raise self.error(f"expected 'struct', 'interface', 'enum', 'const' or 'key', found {self.describe()}")
            self.expect(";", "after a definition")
        self.next()
        self.expect(";", f"after module {name.text}")
        return ast.Module(name.text, defs, self.pos(start))

    def parse_key(self, module: str) -> tuple[str, list[str], Token]:
        start = self.expect("key")
        self.expect("[")
        struct_name = self.scoped_name("a struct name")
        names: list[str] = []
        while self.accept(","):
            names.append(self.ident("a field name").text)
        if not names:
            raise self.error("key[...] needs at least one field")
        self.expect("]", "to close key[...]")
        if "::" not in struct_name:
            struct_name = f"{module}::{struct_name}"
        return struct_name, names, start

    def apply_keys(self, modules: list[ast.Module], keys: list[tuple[str, list[str], Token]]) -> None:
        structs = {f"{m.name}::{d.name}": d for m in modules for d in m.definitions if isinstance(d, ast.Struct)}
        for name, fields, tok in keys:
            st = structs.get(name)
            if st is None:
                raise self.error(f"key[...] names unknown struct {name}", tok)
            known = {f.name for f in st.fields}
            for f in fields:
                if f not in known:
                    raise self.error(f"key[...] names unknown field {f} of {name}", tok)
            st.key = fields

    def parse_struct(self) -> ast.Struct:
        start = self.expect("struct")
        name = self.ident("a struct name")
        self.expect("{", "after the struct name")
        fields: list[ast.StructField] = []
        while not self.peek_is("}"):
            fields.append(self.parse_member())
            self.expect(";", "after a struct member")
        self.next()
        if not fields:
            raise self.error(f"struct {name.text} has no members", name)
        tags: dict[int, str] = {}
        names: set[str] = set()
        for f in fields:
            if f.tag in tags:
                raise IdlError(f"tag {f.tag} of {f.name} is already used by {tags[f.tag]}", *_pos(f.pos))
            if f.name in names:
                raise IdlError(f"member {f.name} is declared twice", *_pos(f.pos))
            tags[f.tag] = f.name
            names.add(f.name)
        return ast.Struct(name.text, fields, self.pos(start))

    def parse_member(self) -> ast.StructField:
        start = self.tok
        if start.kind != "int":
            raise self.error(f"expected a tag number, found {self.describe()}")
        tag = _int_value(self.next().text)
        if not 0 <= tag <= 255:
            raise self.error(f"tag {tag} is out of range 0..255", start)
        if self.accept("require"):
            required = True
        elif self.accept("optional"):
            required = False
        else:
            raise self.error(f"expected 'require' or 'optional', found {self.describe()}")
        type_ = self.parse_type()
        if self.accept(":"):  # legacy bit-width form "type:N"
            self.expect_int()
        self.accept("*")  # legacy "byte *name"
        name = self.ident("a member name")
        if self.accept("["):  # legacy fixed array "type name[N]"
            self.expect_int()
            self.expect("]")
        default = None
        if self.accept("="):
            default = self.parse_literal()
        return ast.StructField(tag, required, type_, name.text, default, self.pos(start))

    def expect_int(self) -> int:
        if self.tok.kind != "int":
            raise self.error(f"expected a number, found {self.describe()}")
        return _int_value(self.next().text)

    def parse_type(self) -> ast.TypeRef:
        start = self.tok
        p = self.pos(start)
        if self.accept("unsigned"):
            t = self.tok
            if t.text not in ("byte", "short", "int"):
                raise self.error(f"expected 'byte', 'short' or 'int' after 'unsigned', found {self.describe()}")
            self.next()
            return ast.TypeRef(f"unsigned {t.text}", pos=p)
        if self.tok.kind == "ident" and self.tok.text in _SIMPLE_TYPES:
            return ast.TypeRef(self.next().text, pos=p)
        if self.accept("vector"):
            self.expect("<", "after vector")
            elem = self.parse_type()
            self.expect(">", "to close vector<...>")
            return ast.TypeRef("vector", (elem,), p)
        if self.accept("map"):
            self.expect("<", "after map")
            key = self.parse_type()
            self.expect(",", "between the key and value types of map<...>")
            value = self.parse_type()
            self.expect(">", "to close map<...>")
            return ast.TypeRef("map", (key, value), p)
        if (self.tok.kind == "ident" and self.tok.text not in KEYWORDS) or self.peek_is("::"):
            return ast.TypeRef(self.scoped_name("a type name"), pos=p)
        raise self.error(f"expected a type, found {self.describe()}")

    def parse_literal(self) -> ast.Literal:
        t = self.tok
        p = self.pos(t)
        sign = ""
        if t.kind == "punct" and t.text in "+-":
            sign = self.next().text
            t = self.tok
            if t.kind not in ("int", "float"):
                raise self.error(f"expected a number after '{sign}', found {self.describe()}")
        if t.kind == "int":
            self.next()
            text = t.text
            value = _int_value(text)
            return ast.Literal("int", -value if sign == "-" else value, p)
        if t.kind == "float":
            self.next()
            value_f = float(t.text.rstrip("fF"))
            return ast.Literal("float", -value_f if sign == "-" else value_f, p)
        if t.kind == "string":
            self.next()
            try:
                return ast.Literal("string", unescape(t.text), p)
            except ValueError as e:
                raise self.error(f"bad string literal: {e}", t) from None
        if t.text in ("true", "false"):
            self.next()
            return ast.Literal("bool", t.text == "true", p)
        if t.kind == "ident" or self.peek_is("::"):
            return ast.Literal("name", self.scoped_name("a value"), p)
        raise self.error(f"expected a value, found {self.describe()}")

    def parse_enum(self) -> ast.Enum:
        start = self.expect("enum")
        name = self.ident("an enum name")
        self.expect("{", "after the enum name")
        members: list[ast.Enumerator] = []
        values: dict[str, int] = {}
        nxt = 0
        while not self.peek_is("}"):
            mtok = self.ident("an enumerator name")
            if mtok.text in values:
                raise self.error(f"enumerator {mtok.text} is declared twice", mtok)
            if self.accept("="):
                lit = self.parse_literal()
                if lit.kind == "int":
                    nxt = int(lit.value)
                elif lit.kind == "name":
                    ref = str(lit.value).split("::")[-1]
                    if ref not in values:
                        raise self.error(f"unknown enumerator {lit.value}", mtok)
                    nxt = values[ref]
                else:
                    raise self.error("an enumerator value must be an integer or an enumerator", mtok)
            values[mtok.text] = nxt
            members.append(ast.Enumerator(mtok.text, nxt, self.pos(mtok)))
            nxt += 1
            if not self.accept(","):
                break
        self.expect("}", f"to close enum {name.text}")
        if not members:
            raise self.error(f"enum {name.text} has no members", name)
        return ast.Enum(name.text, members, self.pos(start))

    def parse_const(self) -> ast.Const:
        start = self.expect("const")
        type_ = self.parse_type()
        if type_.name in ("vector", "map"):
            raise self.error("a const must have a builtin type", start)
        name = self.ident("a const name")
        self.expect("=", f"after const {name.text}")
        value = self.parse_literal()
        return ast.Const(name.text, type_, value, self.pos(start))

    def parse_interface(self) -> ast.Interface:
        start = self.expect("interface")
        name = self.ident("an interface name")
        self.expect("{", "after the interface name")
        ops: list[ast.Operation] = []
        seen: set[str] = set()
        while not self.peek_is("}"):
            op = self.parse_operation()
            if op.name in seen:
                raise IdlError(f"operation {op.name} is declared twice", *_pos(op.pos))
            seen.add(op.name)
            ops.append(op)
            self.expect(";", "after an operation")
        self.next()
        return ast.Interface(name.text, ops, self.pos(start))

    def parse_operation(self) -> ast.Operation:
        start = self.tok
        ret = None if self.accept("void") else self.parse_type()
        name = self.ident("an operation name")
        self.expect("(", f"after operation {name.text}")
        params: list[ast.Param] = []
        if not self.peek_is(")"):
            while True:
                ptok = self.tok
                out = self.accept("out")
                routekey = not out and self.accept("routekey")
                ptype = self.parse_type()
                pname = self.ident("a parameter name")
                if pname.text == name.text:
                    raise self.error(f"parameter {pname.text} has the name of its operation", pname)
                if any(p.name == pname.text for p in params):
                    raise self.error(f"parameter {pname.text} is declared twice", pname)
                params.append(ast.Param(pname.text, ptype, out, routekey, self.pos(ptok)))
                if not self.accept(","):
                    break
        self.expect(")", f"to close the parameters of {name.text}")
        if len(params) > 255:
            raise self.error(f"operation {name.text} has more than 255 parameters", name)
        return ast.Operation(name.text, ret, params, self.pos(start))


def _int_value(text: str) -> int:
    """Decimal, 0x hex, or C-style leading-zero octal."""
    if text[:2].lower() == "0x":
        return int(text, 16)
    if len(text) > 1 and text[0] == "0" and text.isdigit() and "8" not in text and "9" not in text:
        return int(text, 8)
    return int(text)


def _pos(p: ast.Pos) -> tuple[str, int, int]:
    return p.file, p.line, p.column


def parse(text: str, file: str = "<string>") -> ast.IdlFile:
    """Parse one .tars file's text (includes are recorded, not read)."""
    return Parser(text, file).parse_file()


def parse_file(path: str | Path) -> ast.IdlFile:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise IdlError(f"cannot read: {e.strerror}", str(p), 0, 0) from None
    except UnicodeDecodeError as e:
        raise IdlError(f"not UTF-8: {e.reason}", str(p), 0, 0) from None
    return parse(text, str(p))
