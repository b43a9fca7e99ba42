"""The C accelerator (k8stars.tars._speedups) against the pure-Python codec, its reference.

* The codec, packet and fuzz test cases run again here under every available backend (``backend`` fixture).
* Differential property tests: random types, values, structs and bytes give identical bytes, identical decoded
  values and identical errors (class and message) from both backends; so do bad values given to the writers.
* The accelerator's own concerns: per-class plans are cached and refreshed, instances are built the way the class
  would build them, nothing leaks, and ``K8STARS_PURE_PYTHON=1`` turns it off.

``K8STARS_PURE_PYTHON=1 python -m pytest tests/tars`` runs everything in pure Python (the C-only tests skip).
"""

from __future__ import annotations

import dataclasses
import functools
import gc
import importlib.util
import itertools
import math
import os
import struct as _struct
import subprocess
import sys
import tempfile
import tracemalloc
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar, cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from k8stars.tars import codec as c
from k8stars.tars import packet
from k8stars.tars.errors import DecodeError
from k8stars.tars.idl.compiler import load_runtime
from k8stars.tars.interface import Operation, Param
from k8stars.tars.protocol.endpointf import EndpointF
from k8stars.tars.protocol.notifyf import NOTIFYLEVEL, ReportInfo, ReportType
from k8stars.tars.protocol.requestf import RequestPacket, ResponsePacket
from k8stars.tars.protocol.statf import StatMicMsgBody, StatMicMsgHead

HERE = Path(__file__).resolve().parent
BACKENDS = c.available_backends()
HAVE_C = "c" in BACKENDS
PY = c.get_backend("python")
C = c.get_backend("c") if HAVE_C else PY
needs_c = pytest.mark.skipif(not HAVE_C, reason="k8stars.tars._speedups is not built (or K8STARS_PURE_PYTHON=1)")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """Routes the module-level codec functions (and the packet functions) through one backend."""
    previous = c.backend()
    c.use_backend(request.param)
    try:
        yield request.param
    finally:
        c.use_backend(previous)


# --------------------------------------------------------------------------------------------------------------
# The existing test cases, collected again here under every backend


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_k8stars_speedups_rerun_{name}", HERE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _under_backends(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def rerun(*args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    rerun.pytestmark = [*getattr(fn, "pytestmark", []), pytest.mark.usefixtures("backend")]  # type: ignore[attr-defined]
    return rerun


def _collect_again(*names: str) -> None:
    for name in names:
        module = _load(name)
        for attr, obj in vars(module).items():
            if attr.startswith("test_") and callable(obj):
                globals()[f"test_{name.removeprefix('test_')}__{attr.removeprefix('test_')}"] = _under_backends(obj)
            elif hasattr(obj, "_fixture_function_marker") or type(obj).__name__ == "FixtureFunctionDefinition":
                globals()[attr] = obj  # fixtures those tests use (e.g. test_codec's ``doc``)


_collect_again("test_codec", "test_packets", "test_fuzz")


# --------------------------------------------------------------------------------------------------------------
# Types and structs for the differential tests

DIFF_IDL = """
module Diff {
  enum Color { RED = 1, GREEN = 2, BLUE = 10 };
  struct Inner { 0 require int a; 1 optional string s = "abc"; 2 optional vector<byte> raw; };
  struct All {
    0 require bool b; 1 optional byte by = 3; 2 optional short sh; 3 require int i; 4 optional long l = -5;
    5 optional unsigned byte ub; 6 optional unsigned short us; 7 optional unsigned int ui;
    8 optional float f = 1.5; 9 optional double d; 10 optional string s; 11 optional vector<byte> bs;
    12 optional vector<int> vi; 13 optional map<string, Inner> m; 14 optional Inner inner;
    15 optional Color col = GREEN; 16 require Color col2; 20 optional map<Inner, vector<string>> sk;
    30 optional bool flag = true; 200 optional vector<Inner> vs; 255 optional map<long, double> md;
  };
  struct Flat {
    0 require string host; 1 optional int port = 7; 2 optional float f = 1.5; 3 optional double d;
    4 optional vector<byte> raw; 5 optional map<string, string> ctx; 6 require short sh; 7 optional long big = -5;
    8 optional unsigned int u; 9 optional string name = "abc"; 15 optional byte tiny; 200 optional unsigned short us;
  };
};
"""


def load_runtime_from_text(text: str) -> Any:
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "X.tars"
        p.write_text(text)
        return load_runtime([p])


RT = load_runtime_from_text(DIFF_IDL)
Color, Inner, All = RT["Diff::Color"], RT["Diff::Inner"], RT["Diff::All"]
Flat = RT["Diff::Flat"]  # numbers, strings, bytes and maps only: the accelerator's one-pass writer and reader


def make_tree_class() -> Any:
    """A self-recursive struct (``struct Tree { 0 optional string name; 1 optional vector<Tree> kids; }``)."""

    @dataclasses.dataclass(slots=True)
    class Tree(c.Struct):
        __tars_name__: ClassVar[str] = "test.Tree"
        name: str = ""
        kids: list[Any] = dataclasses.field(default_factory=list)

    Tree.__tars_fields__ = (c.Field(0, "name", c.STRING), c.Field(1, "kids", c.vector_of(c.struct_of(Tree))))
    return Tree


Tree = make_tree_class()


@dataclasses.dataclass(slots=True)
class PostInit(c.Struct):
    """A slotted dataclass with __post_init__: must be built through its constructor."""

    __tars_name__: ClassVar[str] = "test.PostInit"
    a: int = 0
    seen: list[int] = dataclasses.field(default_factory=list)

    def __post_init__(self) -> None:
        self.seen.append(self.a)


PostInit.__tars_fields__ = (c.Field(0, "a", c.INT, True), c.Field(1, "seen", c.vector_of(c.INT)))


class Manual(c.Struct):
    """A hand-written struct (no dataclass, positional __init__ that transforms its input, a __dict__)."""

    __tars_name__: ClassVar[str] = "test.Manual"
    __slots__ = ("__dict__", "x", "y")

    def __init__(self, x: int = 0, y: str = "") -> None:
        self.x, self.y = x, y.upper()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Manual) and (self.x, self.y) == (other.x, other.y)

    __hash__ = None  # type: ignore[assignment]


Manual.__tars_fields__ = (c.Field(1, "x", c.LONG, True), c.Field(2, "y", c.STRING))


@dataclasses.dataclass
class Plain(c.Struct):
    """A dataclass without slots (attributes live in __dict__)."""

    __tars_name__: ClassVar[str] = "test.Plain"
    a: int = 7
    b: str = "x"


Plain.__tars_fields__ = (c.Field(0, "a", c.INT, False, 7), c.Field(3, "b", c.STRING, False, "x"))


class Child(Inner):  # type: ignore[misc, valid-type]
    """A subclass of a generated struct: written with its own class's fields."""

    __slots__ = ()


STRUCTS = [Inner, All, Flat, Tree, EndpointF, RequestPacket, ResponsePacket, StatMicMsgHead, StatMicMsgBody, ReportInfo,
           PostInit, Manual, Plain]  # fmt: skip
SCALARS: dict[c.TarsType, st.SearchStrategy[Any]] = {
    c.BOOL: st.booleans(),
    c.BYTE: st.integers(-128, 127),
    c.SHORT: st.integers(-(2**15), 2**15 - 1),
    c.INT: st.integers(-(2**31), 2**31 - 1),
    c.LONG: st.integers(-(2**63), 2**63 - 1),
    c.UBYTE: st.integers(0, 255),
    c.USHORT: st.integers(0, 2**16 - 1),
    c.UINT: st.integers(0, 2**32 - 1),
    c.FLOAT: st.floats(width=32, allow_nan=False),
    c.DOUBLE: st.floats(allow_nan=False),
    c.STRING: st.text(max_size=40) | st.sampled_from(["", "é" * 200, "x" * 300]),
    c.BYTES: st.binary(max_size=40) | st.just(b"\xff" * 300),
    c.enum_of(Color): st.sampled_from(list(Color)),
    c.enum_of(NOTIFYLEVEL): st.sampled_from(list(NOTIFYLEVEL)),
}
KEYS = [c.INT, c.LONG, c.STRING, c.BOOL, c.struct_of(Inner), c.struct_of(StatMicMsgHead)]


def values_of(t: c.TarsType, depth: int = 0) -> st.SearchStrategy[Any]:
    """Valid values of ``t``."""
    if t in SCALARS:
        return SCALARS[t]
    if t.kind is c.Kind.ENUM:
        assert t.cls is not None
        return st.sampled_from(list(cast(Any, t.cls)))
    if t.kind is c.Kind.VECTOR:
        assert t.elem is not None
        return st.lists(values_of(t.elem, depth + 1), max_size=4)
    if t.kind is c.Kind.MAP:
        assert t.key is not None and t.value is not None
        return st.dictionaries(values_of(t.key, depth + 1), values_of(t.value, depth + 1), max_size=4)
    assert t.kind is c.Kind.STRUCT and t.cls is not None
    return structs_of(t.cls, depth)


def structs_of(cls: type, depth: int = 0) -> st.SearchStrategy[Any]:
    fields = cls.__tars_fields__  # type: ignore[attr-defined]
    if depth > 3:  # recursive structs (Tree): stop with empty containers
        kw = {f.name: st.just(f.default_value()) for f in fields}
    else:
        kw = {f.name: values_of(f.type, depth + 1) for f in fields}
    if cls is Manual:
        return st.builds(Manual, x=st.integers(-(2**63), 2**63 - 1), y=st.text(max_size=5))
    if cls is PostInit:
        return st.builds(PostInit, a=st.integers(-(2**31), 2**31 - 1))
    return st.builds(cls, **kw)


leaf_types = st.sampled_from([*SCALARS, *(c.struct_of(s) for s in STRUCTS)])
types: st.SearchStrategy[c.TarsType] = st.recursive(
    leaf_types,
    lambda inner: st.one_of(
        inner.map(c.vector_of),
        st.tuples(st.sampled_from(KEYS), inner).map(lambda kv: c.map_of(*kv)),
    ),
    max_leaves=4,
)

junk: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | st.sampled_from([1e300, -1e40, 3.4e38, 10**400, math.inf])
    | st.text(max_size=5)
    | st.binary(max_size=5)
    | st.builds(bytearray, st.binary(max_size=5))
    | st.sampled_from([Color.RED, NOTIFYLEVEL.NOTIFYERROR, Inner(), EndpointF(), object()]),
    lambda inner: st.lists(inner, max_size=3) | st.tuples(inner) | st.dictionaries(st.integers() | st.text(), inner,
                                                                                        max_size=3),
    max_leaves=5,
)  # fmt: skip


def outcome(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[str, Any]:
    """("ok", result) or ("error", (class name, message)) - what a backend did."""
    try:
        return "ok", fn(*args, **kwargs)
    except Exception as e:  # the point is to compare whatever is raised
        return "error", (type(e).__name__, str(e))


def canon(x: Any) -> Any:
    """A structural, type-exact form of a decoded value: floats by their bits (NaN == NaN, 0.0 != -0.0), ints with
    their class (bool, enum member), containers in their order, structs by class and fields."""
    if isinstance(x, float):
        return "float", _struct.pack(">d", x)
    if isinstance(x, int | str | bytes):
        return type(x).__name__, x
    if isinstance(x, list | tuple):
        return type(x).__name__, [canon(v) for v in x]
    if isinstance(x, dict):
        return "dict", [(canon(k), canon(v)) for k, v in x.items()]
    if isinstance(x, c.Struct):
        return type(x).__qualname__, [canon(getattr(x, f.name, None)) for f in type(x).__tars_fields__]
    return repr(x)


def same(a: tuple[str, Any], b: tuple[str, Any]) -> None:
    assert a[0] == b[0], (a, b)
    assert canon(a[1]) == canon(b[1]), (a, b)


# --------------------------------------------------------------------------------------------------------------
# Differential tests

DIFF = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def typed_values(draw: st.DrawFn) -> tuple[c.TarsType, Any, int]:
    t = draw(types)
    return t, draw(values_of(t)), draw(st.integers(0, 255))


@needs_c
@DIFF
@given(typed_values(), st.booleans())
def test_values_same_bytes_same_values(tv: tuple[c.TarsType, Any, int], skip: bool) -> None:
    t, value, tag = tv
    data = PY.encode_value(t, value, tag, skip_defaults=skip)
    assert C.encode_value(t, value, tag, skip_defaults=skip) == data
    back = C.decode_value(t, data, tag)
    assert back == PY.decode_value(t, data, tag)
    if "PostInit" not in t.idl_name():  # its __post_init__ appends to what it is given
        assert back == value


@needs_c
@DIFF
@given(st.sampled_from(STRUCTS).flatmap(structs_of), st.booleans())
def test_structs_same_bytes_same_values(obj: Any, skip: bool) -> None:
    data = PY.encode(obj, skip_defaults=skip)
    assert C.encode(obj, skip_defaults=skip) == data
    assert C.encode_framed(obj, skip_defaults=skip) == PY.encode_framed(obj, skip_defaults=skip)
    back_c, back_py = C.decode(type(obj), data), PY.decode(type(obj), data)
    assert back_c == back_py
    assert back_c == obj or type(obj) is PostInit
    assert type(back_c) is type(obj)


@needs_c
@DIFF
@given(types, junk, st.integers(0, 255), st.booleans())
def test_bad_values_same_errors(t: c.TarsType, value: Any, tag: int, skip: bool) -> None:
    same(outcome(C.encode_value, t, value, tag, skip_defaults=skip),
         outcome(PY.encode_value, t, value, tag, skip_defaults=skip))  # fmt: skip


@needs_c
@DIFF
@given(st.sampled_from(STRUCTS), st.data(), st.booleans())
def test_bad_struct_fields_same_errors(cls: type, data: st.DataObject, skip: bool) -> None:
    obj = data.draw(structs_of(cls))
    for f in cls.__tars_fields__[: data.draw(st.integers(1, 3))]:  # type: ignore[attr-defined]
        if data.draw(st.booleans()):
            try:
                setattr(obj, f.name, data.draw(junk))
            except AttributeError:
                pass
    same(outcome(C.encode, obj, skip_defaults=skip), outcome(PY.encode, obj, skip_defaults=skip))


OP = Operation("op", c.INT, (Param(1, "a", c.STRING), Param(2, "b", c.vector_of(c.struct_of(Inner))),
                             Param(3, "c", c.map_of(c.INT, c.DOUBLE)), Param(4, "d", c.BOOL, out=True)))  # fmt: skip
EP_LIST = c.vector_of(c.struct_of(EndpointF))
FLAT_LIST = c.vector_of(c.struct_of(Flat))
INNER_KEYED = c.map_of(c.struct_of(Inner), c.vector_of(c.STRING))
BYTES_LIST = c.vector_of(c.BYTES)
LIST_KEYED = c.map_of(c.vector_of(c.INT), c.INT)
COLOR = c.enum_of(Color)
DECODE_TARGETS: list[tuple[str, Callable[[Any, bytes], Any]]] = [
    *((f"decode {s.__name__}", lambda b, data, s=s: b.decode(s, data)) for s in STRUCTS),
    ("vector<EndpointF>", lambda b, data: b.decode_value(EP_LIST, data)),
    ("vector<Flat>", lambda b, data: b.decode_value(FLAT_LIST, data)),
    ("map<Inner,vector<string>>@3", lambda b, data: b.decode_value(INNER_KEYED, data, 3)),
    ("vector<vector<byte>>", lambda b, data: b.decode_value(BYTES_LIST, data)),
    ("map<vector<int>,int>", lambda b, data: b.decode_value(LIST_KEYED, data)),
    ("Color@1", lambda b, data: b.decode_value(COLOR, data, 1)),
    ("fields", lambda b, data: b.decode_fields(OP.in_fields, data)),
]


def _samples() -> list[bytes]:
    out = [
        PY.encode(All(b=True, i=5, col2=Color.BLUE, m={"k": Inner(a=1)}, vs=[Inner(a=2, raw=b"r")], md={1: 2.5}),
                  skip_defaults=False),
        PY.encode(Tree(name="r", kids=[Tree(name="a", kids=[Tree()]), Tree(name="b")])),
        PY.encode_value(c.vector_of(c.struct_of(EndpointF)), [EndpointF(host="h", port=1), EndpointF(nodeName="n")]),
        PY.encode_value(c.map_of(c.struct_of(Inner), c.vector_of(c.STRING)), {Inner(a=1): ["x", "y"]}, 3),
        PY.encode_fields(OP.in_fields, ["s", [Inner(a=3, s="q")], {1: 0.5, 2: -1.0}]),
        packet.frame(b"")[4:] + PY.encode(RequestPacket(iVersion=1, iRequestId=9, sServantName="a.b.c", sFuncName="f",
                                                        sBuffer=b"\x16\x01x", context={"k": "v"})),
        bytes.fromhex("1A10220B213039"),
        PY.encode_value(FLAT_LIST, [Flat(host="h", f=-0.5, d=2.0, raw=b"\x00r", ctx={"a": "b"}, sh=-300, big=2**40,
                                         u=2**32 - 1, name="é", tiny=-1, us=65535), Flat(host="")],
                        skip_defaults=False),
    ]  # fmt: skip
    return out


SAMPLES = _samples()


@st.composite
def hostile(draw: st.DrawFn) -> bytes:
    """Random bytes, or a valid encoding with a few bytes changed, cut short or extended."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=120))
    data = bytearray(draw(st.sampled_from(SAMPLES)))
    for _ in range(draw(st.integers(0, 4))):
        if data:
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    cut = draw(st.integers(0, len(data)))
    return bytes(data[: cut if draw(st.booleans()) else len(data)]) + draw(st.binary(max_size=4))


@needs_c
@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hostile())
def test_hostile_bytes_same_outcome(data: bytes) -> None:
    for _, fn in DECODE_TARGETS:
        same(outcome(fn, C, data), outcome(fn, PY, data))


@needs_c
@pytest.mark.parametrize("data", SAMPLES, ids=range(len(SAMPLES)))
def test_every_truncation_and_single_byte_change(data: bytes) -> None:
    """Exhaustive on the samples: every prefix, and every position set to a few telling values."""
    variants = [data[:i] for i in range(len(data))]
    for i in range(len(data)):
        for b in (0x00, 0x0B, 0x0C, 0x0E, 0x0F, 0x7F, 0x80, 0xF0, 0xFF, data[i] ^ 0x01):
            variants.append(data[:i] + bytes([b]) + data[i + 1 :])
    for v in variants:
        for _, fn in DECODE_TARGETS:
            same(outcome(fn, C, v), outcome(fn, PY, v))


HOSTILE_CASES = [
    ("", "required field"),
    ("02 00 00", "truncated"),
    ("0E", "invalid wire type"),
    ("0F", "invalid wire type"),
    ("F2", "truncated input: expected a tag byte"),
    ("07 7F FF FF FF 61", "truncated"),
    ("09 02 80 00 00 00", "negative list size"),
    ("09 02 7F FF FF FF 00 00", "exceeds"),
    ("09 03 7F FF FF FF FF FF FF FF", "exceeds"),
    ("0D 01 00 01", "inner head"),
    ("0D 00 02 7F FF FF FF", "exceeds"),
    ("08 00 05 0C", "exceeds"),
    ("08 02 7F FF FF FF", "exceeds"),
    ("0A 0C", "truncated"),
    ("0B", "unexpected struct end"),
    ("06 05 61", "truncated"),
    ("00 01 16 00", "type mismatch"),
    ("0A 1C 0B", "required field"),
    (("09 00 01" * 150), "nesting deeper"),
    (("0A" * 150), "nesting deeper"),
    (("08 00 01 0A" * 150), "nesting deeper"),
]


@needs_c
@pytest.mark.parametrize(("hexs", "match"), HOSTILE_CASES, ids=[h[:20] or "empty" for h, _ in HOSTILE_CASES])
def test_hostile_cases_same_messages(hexs: str, match: str) -> None:
    data = bytes.fromhex(hexs.replace(" ", ""))
    seen = set()
    for _, fn in DECODE_TARGETS:
        a, b = outcome(fn, C, data), outcome(fn, PY, data)
        same(a, b)
        if a[0] == "error":
            seen.add(a[1][1])
    nested = c.INT
    for _ in range(c.MAX_DEPTH + 5):
        nested = c.vector_of(nested)
    for t in (c.INT, c.STRING, c.struct_of(Inner), c.vector_of(c.INT), c.map_of(c.INT, c.INT), nested):
        a, b = outcome(C.decode_value, t, data), outcome(PY.decode_value, t, data)
        same(a, b)
        if a[0] == "error":
            assert a[1][0] == "DecodeError"
            seen.add(a[1][1])
    assert any(match in m for m in seen), seen


# --------------------------------------------------------------------------------------------------------------
# Writer corner cases, compared one by one


# one class for the mapping proxy case: a new class per call would grow object's subclass table, which the leak
# test would then count
_ATTRS = type("X", (), {"a": 1})

WRITER_CASES: list[tuple[str, Callable[[c.Backend], Any]]] = [
    ("tag 256", lambda b: b.encode_value(c.INT, 1, 256)),
    ("tag -1", lambda b: b.encode_value(c.INT, 1, -1)),
    ("tag -1 bad value first", lambda b: b.encode_value(c.INT, "x", -1)),
    ("tag 'a'", lambda b: b.encode_value(c.STRING, "x", "a")),
    ("tag True", lambda b: b.encode_value(c.STRING, "x", True)),
    ("field tag 300", lambda b: b.encode_fields((c.Field(300, "p", c.INT, True),), [1])),
    ("field tag 300 skipped", lambda b: b.encode_fields((c.Field(300, "p", c.INT),), [0])),
    ("too few values", lambda b: b.encode_fields(OP.in_fields, ["s", []])),
    ("too many values", lambda b: b.encode_fields(OP.in_fields, ["s", [], {}, 1])),
    ("bad value before short list", lambda b: b.encode_fields(OP.in_fields, [1])),
    ("values from a generator", lambda b: b.encode_fields(OP.in_fields, (v for v in ["s", [], {1: 2}]))),
    ("fields as a list", lambda b: b.encode_fields(list(OP.in_fields), ["s", [], {}])),
    ("not iterable", lambda b: b.encode_fields(OP.in_fields, 5)),
    ("float overflow", lambda b: b.encode_value(c.FLOAT, 1e39)),
    ("float from huge int", lambda b: b.encode_value(c.DOUBLE, 10**400)),
    ("float max", lambda b: b.encode_value(c.FLOAT, 3.4028234663852886e38)),
    ("nan", lambda b: b.encode_value(c.DOUBLE, math.nan)),
    ("-0.0", lambda b: b.encode_value(c.FLOAT, -0.0)),
    ("int subclass", lambda b: b.encode_value(c.INT, ReportType.REPORT)),
    ("bool as int", lambda b: b.encode_value(c.INT, True)),
    ("enum range", lambda b: b.encode_value(c.enum_of(Color), 2**31)),
    ("bytes from list", lambda b: b.encode_value(c.BYTES, [1, -1, 256, True, 2**70])),
    ("bytes from bad list", lambda b: b.encode_value(c.BYTES, [1, "x"])),
    ("bytes from tuple", lambda b: b.encode_value(c.BYTES, (1, 2))),
    ("bytes from memoryview", lambda b: b.encode_value(c.BYTES, memoryview(b"abc"))),
    ("bytes from bytearray", lambda b: b.encode_value(c.BYTES, bytearray(b"abc"))),
    ("string from bytes", lambda b: b.encode_value(c.STRING, b"\xff\x00")),
    ("string from bytearray", lambda b: b.encode_value(c.STRING, bytearray(300))),
    ("surrogateescape", lambda b: b.encode_value(c.STRING, "a\udcff")),
    ("lone surrogate", lambda b: b.encode_value(c.STRING, "a\ud800")),
    ("ordered dict", lambda b: b.encode_value(c.map_of(c.INT, c.INT), OrderedDict([(2, 1), (1, 2)]))),
    ("mapping proxy", lambda b: b.encode_value(c.map_of(c.STRING, c.INT), _ATTRS.__dict__)),
    ("map bad value", lambda b: b.encode_value(c.map_of(c.STRING, c.INT), {"a": 1, "b": "x"})),
    ("map bad key", lambda b: b.encode_value(c.map_of(c.STRING, c.INT), {1: 1})),
    ("vector bad item", lambda b: b.encode_value(c.vector_of(c.vector_of(c.SHORT)), [[1], [2, 70000]])),
    ("struct wrong class", lambda b: b.encode_value(c.struct_of(Inner), EndpointF())),
    ("struct subclass", lambda b: b.encode_value(c.struct_of(Inner), Child(a=4, s="z"))),
    ("struct not Struct", lambda b: b.encode_value(c.struct_of(Inner), 5)),
    ("struct of None", lambda b: b.encode_value(c.TarsType(c.Kind.STRUCT), Inner(a=1))),
    ("missing attribute", lambda b: b.encode(Manual.__new__(Manual))),
    ("unset slot", lambda b: b.encode(object.__new__(Inner))),
    ("nested error path", lambda b: b.encode(All(b=True, i=1, col2=1, m={"k": Inner(a="x")}))),
    ("required bool default", lambda b: b.encode(All(b=False, i=0, col2=Color.RED, flag=True))),
    ("optional equal by ==", lambda b: b.encode(All(b=True, i=0, col2=1, by=3.0, l=-5.0, f=1.5))),
    ("not a struct", lambda b: b.encode(5)),
    ("decode not a class", lambda b: b.decode(None, b"")),
    ("decode bytearray", lambda b: b.decode(Inner, bytearray(b"\x00\x05"))),
    ("decode memoryview", lambda b: b.decode(Inner, memoryview(b"\x0c\x16\x01q"))),
    ("decode list of ints", lambda b: b.decode(Inner, [0x0C])),
    ("decode str", lambda b: b.decode(Inner, "abc")),
    ("decode enum unknown", lambda b: b.decode_value(c.enum_of(Color), b"\x10\x07", 1)),
    ("decode bool 5", lambda b: b.decode_value(c.BOOL, b"\x00\x05")),
    ("decode value tag 300", lambda b: b.decode_value(c.INT, b"\x0c", 300)),
    ("decode value tag True", lambda b: b.decode_value(c.INT, b"\x10\x07", True)),
    ("duplicate tags", lambda b: b.decode_value(c.INT, b"\x00\x01\x00\x02")),
    ("trailing unknown", lambda b: b.decode(Inner, b"\x00\x01\xf6\x63\x01z\x59\x0c")),
    ("float widened", lambda b: b.decode_value(c.DOUBLE, b"\x04\x3f\xc0\x00\x00")),
    ("double into float", lambda b: b.decode_value(c.FLOAT, b"\x05" + bytes(8))),
    ("unhashable key", lambda b: b.decode_value(c.map_of(c.vector_of(c.INT), c.INT), b"\x08\x00\x01\x09\x0c\x1c")),
    ("struct without cls", lambda b: b.decode_value(c.TarsType(c.Kind.STRUCT), b"\x0a\x0b")),
]  # fmt: skip


@needs_c
@pytest.mark.parametrize("case", WRITER_CASES, ids=[name for name, _ in WRITER_CASES])
def test_corner_cases_same_outcome(case: tuple[str, Callable[[c.Backend], Any]]) -> None:
    _, fn = case
    same(outcome(fn, C), outcome(fn, PY))


ARGUMENT_CASES: list[tuple[str, Callable[[c.Backend], Any]]] = [
    ("encode(obj=)", lambda b: b.encode(obj=Inner(a=1))),
    ("encode skip positional", lambda b: b.encode(Inner(), True)),
    ("encode unknown keyword", lambda b: b.encode(Inner(), skip=True)),
    ("encode no argument", lambda b: b.encode()),
    ("decode missing data", lambda b: b.decode(Inner)),
    ("decode by keyword", lambda b: b.decode(cls=Inner, data=b"\x00\x01")),
    ("decode data twice", lambda b: b.decode(Inner, b"", data=b"")),
    ("encode_value 4 positional", lambda b: b.encode_value(c.INT, 1, 3, True)),
    ("encode_value keywords", lambda b: b.encode_value(c.INT, value=1, tag=3, skip_defaults=False)),
    ("decode_value tag keyword", lambda b: b.decode_value(c.INT, b"\x30\x01", tag=3)),
    ("decode_value too many", lambda b: b.decode_value(c.INT, b"", 0, 1)),
    ("encode_fields keywords", lambda b: b.encode_fields(fields=OP.in_fields, values=["", [], {}], skip_defaults=0)),
    ("decode_fields keywords", lambda b: b.decode_fields(data=b"", fields=OP.out_fields)),
]


@needs_c
@pytest.mark.parametrize("case", ARGUMENT_CASES, ids=[name for name, _ in ARGUMENT_CASES])
def test_same_signatures(case: tuple[str, Callable[[c.Backend], Any]]) -> None:
    a, b = outcome(case[1], C), outcome(case[1], PY)
    if a[0] == "error" and a[1][0] == "TypeError":  # argument errors: same class, wording of C vs Python calls
        assert b[0] == "error" and b[1][0] == "TypeError", (a, b)
    else:
        same(a, b)


def test_claimed_sizes_allocate_nothing_up_front(backend: str) -> None:
    """A list claiming a million elements (with a million bytes left) that breaks after ten: memory follows what was
    read, not what was claimed."""
    data = b"\x09\x02" + (10**6).to_bytes(4, "big") + b"\x0c" * 10 + b"\x0e" * (10**6)
    tracemalloc.start()
    try:
        with pytest.raises(DecodeError, match="invalid wire type"):
            c.decode_value(c.vector_of(c.INT), data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024, peak


def test_string_decoding_keeps_invalid_utf8(backend: str) -> None:
    raw = bytes.fromhex("0603FF61FE")
    s = c.decode_value(c.STRING, raw)
    assert s == "\udcffa\udcfe" and c.encode_value(c.STRING, s) == raw


# --------------------------------------------------------------------------------------------------------------
# Plans, construction, leaks, the switch


@needs_c
def test_struct_plans_are_cached_on_the_class() -> None:
    ep = EndpointF(host="h", port=1)
    C.encode(ep)
    plan = EndpointF.__dict__["__tars_ctable__"]
    assert "slot get" in repr(plan) and "slot init" in repr(plan)
    assert "one pass" in repr(plan)  # numbers, strings, bytes and maps: the one-pass writer and reader (Flat too)
    C.encode(All(b=True, i=1, col2=Color.RED))
    assert "one pass" not in repr(All.__dict__["__tars_ctable__"])
    C.decode(EndpointF, C.encode(ep))
    assert EndpointF.__dict__["__tars_ctable__"] is plan  # reused, not rebuilt
    C.encode(Manual(1, "a"))
    manual = repr(Manual.__dict__["__tars_ctable__"])
    assert "slot init" not in manual  # a hand-written __init__ is always called
    C.encode(PostInit(1))
    assert "slot init" not in repr(PostInit.__dict__["__tars_ctable__"])


@needs_c
def test_reassigned_fields_are_recompiled() -> None:
    @dataclasses.dataclass(slots=True)
    class S(c.Struct):
        a: int = 0
        b: str = ""

    S.__tars_fields__ = (c.Field(0, "a", c.INT, True), c.Field(1, "b", c.STRING, True))
    assert C.encode(S(1, "x")) == PY.encode(S(1, "x")) == bytes.fromhex("0001160178")
    S.__tars_fields__ = (c.Field(5, "a", c.INT, True), c.Field(6, "b", c.STRING, True))
    assert C.encode(S(1, "x")) == PY.encode(S(1, "x"))
    assert C.decode(S, PY.encode(S(2, "y"))) == S(2, "y")


@needs_c
def test_constructors_run_when_they_must() -> None:
    p = C.decode(PostInit, PY.encode(PostInit(5)))
    assert p.a == 5 and p.seen == [5, 5]  # __post_init__ ran (once) on the decoded list
    m = C.decode(Manual, PY.encode(Manual(3, "abc")))
    assert (m.x, m.y) == (3, "ABC")
    assert C.decode(Plain, b"") == Plain() and C.decode(Plain, b"\x00\x02\x36\x01q") == Plain(2, "q")


def _exercise(rounds: int) -> None:
    eps = [EndpointF(host="127.0.0.1", port=10000 + i, timeout=60000, istcp=1, setId="s" * i) for i in range(20)]
    t = c.vector_of(c.struct_of(EndpointF))
    all_ = All(b=True, i=5, col2=Color.BLUE, m={"k": Inner(a=1)}, vs=[Inner(a=2, raw=b"r")], md={1: 2.5},
               sk={Inner(a=1): ["x"]}, s="é" * 100)  # fmt: skip
    for _ in range(rounds):
        data = C.encode_value(t, eps)
        assert C.decode_value(t, data) == eps
        C.decode(All, C.encode(all_, skip_defaults=False))
        C.decode(Tree, C.encode(Tree(name="r", kids=[Tree(name="a", kids=[Tree()])])))
        C.decode_fields(OP.in_fields, C.encode_fields(OP.in_fields, ["s", [Inner(a=3)], {1: 0.5}]))
        C.decode(RequestPacket, C.encode_framed(RequestPacket(iVersion=1, sServantName="x", context={"a": "b"}))[4:])
        for data in SAMPLES:
            for _, fn in DECODE_TARGETS:
                try:
                    fn(C, data[: len(data) // 2])
                except DecodeError:
                    pass
        for _, case in WRITER_CASES:
            try:
                case(C)
            except Exception:
                pass


def _speedups() -> Any:
    return importlib.import_module("k8stars.tars._speedups")


@needs_c
def test_no_leaks() -> None:
    """Encode/decode (good and bad input, every corner case) in a loop: no memory growth, no reference leaks."""
    _exercise(50)  # warm up: plans, interned strings, free lists
    data = b"\x00\x01\x16\x02ab"
    tracemalloc.start()
    try:
        _exercise(20)
        _speedups().clear_caches()  # the corner cases compile ad-hoc types: empty their (bounded) cache
        gc.collect()
        refs = (sys.getrefcount(data), sys.getrefcount(Inner), sys.getrefcount(EndpointF), sys.getrefcount(None))
        before = tracemalloc.get_traced_memory()[0]
        _exercise(300)
        for _ in range(20000):
            C.decode(Inner, data)
            C.encode(Inner(a=1))
        _speedups().clear_caches()
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 32 * 1024, f"{grown} bytes more after 300 rounds"
    after = (sys.getrefcount(data), sys.getrefcount(Inner), sys.getrefcount(EndpointF))
    assert after == refs[:3]
    assert abs(sys.getrefcount(None) - refs[3]) < 100


@needs_c
def test_recent_strings_and_ints_replaced_while_in_use() -> None:
    """The decoder's caches of recent strings and ints (hosts, ports) have a slot per hash: every pair of 48 hosts
    and of 48 ports in one struct (some pairs share a slot, so the second value evicts the first while it is being
    used), each struct decoded alone and let go, comes back whole."""
    hosts = [f"10.0.{i}.{i * 7 % 13}" for i in range(48)]
    ports = [20000 + 37 * i for i in range(48)]
    for _ in range(2):
        for i, j in itertools.product(range(48), repeat=2):
            ep = EndpointF(host=hosts[i], setId=hosts[j], port=ports[i], timeout=ports[j])
            assert C.decode(EndpointF, PY.encode(ep)) == ep
        gc.collect()


@needs_c
def test_identity_caches_are_bounded() -> None:
    limit = _speedups().CACHE_MAX
    for i in range(3 * limit):
        C.encode_value(c.vector_of(c.INT), [i])  # a new TarsType each time
        C.encode_fields((c.Field(1, "x", c.INT, True),), [i])  # a new tuple each time
    fields, types_ = _speedups().cache_sizes()
    assert 0 < fields <= limit and 0 < types_ <= limit


@needs_c
def test_plans_of_dead_classes_are_collected() -> None:
    import weakref

    g = make_tree_class()
    C.decode(g, C.encode(g(name="a", kids=[g(name="b")])))
    assert "__tars_ctable__" in g.__dict__
    ref = weakref.ref(g)
    del g
    gc.collect()
    assert ref() is None  # class -> plan -> class cycles are collectable


def test_pure_python_switch() -> None:
    code = "from k8stars.tars import codec as c; print(c.backend(), ','.join(c.available_backends()))"
    env = dict(os.environ, K8STARS_PURE_PYTHON="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["python", "python"]
    env.pop("K8STARS_PURE_PYTHON")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    built = importlib.util.find_spec("k8stars.tars._speedups") is not None
    assert out.split()[0] == ("c" if built else "python")


def test_use_backend_routes_packets(backend: str) -> None:
    assert c.backend() == backend
    assert c.encode is c.get_backend(backend).encode
    req = RequestPacket(iVersion=1, iRequestId=3, sServantName="A.B.C", sFuncName="f", sBuffer=b"\x0c", iTimeout=5)
    frame = packet.encode_request(req)
    assert frame == PY.encode_framed(req) and packet.decode_request(frame[4:]) == req
    with pytest.raises(ValueError, match="no codec backend"):
        c.use_backend("rust")
