"""The IDL compiler: the whole language, clear errors, generated modules that import and work."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from k8stars.tars import codec as c
from k8stars.tars.errors import IdlError
from k8stars.tars.idl import codegen
from k8stars.tars.idl.parser import parse

PROTOCOL = Path(__file__).parents[2] / "k8stars" / "tars" / "protocol"

FULL = r"""
// every construct of the language
#include "Other.tars"
module Demo
{
    const int MAX_ITEMS = 0x20;
    const long BIG = -9000000000;
    const string NAME = "a\"b\n";
    const double RATIO = 2.5f;
    const bool ON = true;

    enum Level { LOW, MID = 10, HIGH, ALIAS = MID, };

    struct Item
    {
        0 require string id;
        1 optional Level level = HIGH;
        2 optional unsigned int size = 7;
        3 optional vector<byte> blob;
        4 optional map<string, vector<Other::Point>> shapes;
        15 optional unsigned byte small;
        200 optional unsigned short mid = 040;
        255 optional float f = .5;
    };
    key[Item, id, size];

    /* interfaces */
    interface Store
    {
        Item get(routekey string id, out int version);
        void put(Item item);
        int count();
        map<Other::Point, int> histogram(vector<Item> items, out vector<string> warnings, bool verbose);
    };
};
"""
OTHER = "module Other { struct Point { 0 require int x; 1 require int y; }; };"


def write_idl(tmp_path: Path) -> Path:
    (tmp_path / "Other.tars").write_text(OTHER)
    main = tmp_path / "Demo.tars"
    main.write_text(FULL)
    return main


def test_generated_module_works(tmp_path: Path) -> None:
    main = write_idl(tmp_path)
    out = tmp_path / "gen_demo"
    res = subprocess.run(
        [sys.executable, "-m", "k8stars", "tars2py", str(main), "-o", str(out)],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr
    assert {p.name for p in out.iterdir()} >= {"__init__.py", "demo.py", "other.py"}
    sys.path.insert(0, str(tmp_path))
    try:
        demo = importlib.import_module("gen_demo.demo")
        other = importlib.import_module("gen_demo.other")
    finally:
        sys.path.remove(str(tmp_path))
    assert (demo.MAX_ITEMS, demo.BIG, demo.NAME, demo.RATIO, demo.ON) == (32, -9000000000, 'a"b\n', 2.5, True)
    assert (demo.Level.MID, demo.Level.HIGH, demo.Level.ALIAS) == (10, 11, 10)
    item = demo.Item(id="a", shapes={"s": [other.Point(1, 2)]}, blob=b"\x00\xff")
    assert (item.level, item.size, item.mid, item.f) == (demo.Level.HIGH, 7, 32, 0.5)
    assert c.decode(demo.Item, c.encode(item)) == item
    assert demo.Item(id="a", small=3) == demo.Item(id="a", small=4)  # key[Item, id, size] decides equality
    op = demo.Store_interface["histogram"]
    assert [p.tag for p in op.params] == [1, 2, 3]
    assert [f.name for f in op.in_fields] == ["items", "verbose"]
    assert [f.name for f in op.out_fields] == ["ret", "warnings"]
    res = op.decode_result(op.encode_result(({other.Point(1, 1): 2}, ["w"])))
    assert res == demo.Store_histogram_result({other.Point(1, 1): 2}, ["w"])
    assert demo.Store_interface["get"].params[0].routekey
    assert hasattr(demo.StoreProxy, "histogram") and hasattr(demo.StoreServant, "put")


def test_shipped_protocol_modules_are_current() -> None:
    """The framework IDL modules committed in the package are exactly what tars2py generates now."""
    sources = codegen.generate(sorted(PROTOCOL.glob("*.tars")))
    assert sources, "no IDL found"
    for name, text in sources.items():
        committed = (PROTOCOL / name).read_text()
        assert committed == text, f"{name} is stale: run k8stars tars2py k8stars/tars/protocol/*.tars -o {PROTOCOL}"


def test_example_modules_are_current() -> None:
    """The example's generated modules are what tars2py generates now (the tests import them)."""
    example = PROTOCOL.parents[2] / "examples" / "hello"
    for name, text in codegen.generate(sorted(example.glob("*.tars"))).items():
        committed = (example / "gen" / name).read_text()
        assert committed == text, f"{name} is stale: run k8stars tars2py {example}/*.tars -o {example / 'gen'}"


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        ("module A { struct S { 0 require int a; }; }", "1:44", "expected ';' after module A"),
        (
            "module A {\n  struct S { 0 require int a; 0 optional int b; };\n};",
            "2:31",
            "tag 0 of b is already used",
        ),
        ("module A { struct S { 256 require int a; }; };", "1:23", "tag 256 is out of range"),
        ("module A { struct S { 0 must int a; }; };", "1:25", "expected 'require' or 'optional'"),
        ("module A { struct S { }; };", "1:19", "struct S has no members"),
        ("module A {\n interface I { void f(int f); };\n};", "2:27", "has the name of its operation"),
        ("module A { enum E { X, X }; };", "1:24", "enumerator X is declared twice"),
        ("module A { struct S { 0 require vector<int a; }; };", "1:44", "expected '>'"),
        ('module A { const string s = "abc; };', "1:29", "unterminated string"),
        ("module A { module B { }; };", "1:12", "modules cannot be nested"),
        ("struct S { 0 require int a; };", "1:1", "expected 'module'"),
        ("module A { struct S { 0 require int a; }; key[S, b]; };", "1:43", "unknown field b"),
        ("module A { struct S { 0 require int a; }; /* never closed", "1:43", "unexpected character"),
    ],
)
def test_syntax_errors_name_file_line_column(text: str, where: str, message: str) -> None:
    with pytest.raises(IdlError) as err:
        parse(text, "x.tars")
    assert str(err.value).startswith(f"x.tars:{where}: "), str(err.value)
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("module A { struct S { 0 require Missing a; }; };", "x.tars:1:33: unknown type Missing"),
        ("module A { struct S { 0 optional int a = 2147483648; }; };", "out of range for int"),
        ('module A { struct S { 0 optional int a = "x"; }; };', "does not fit type int"),
        ("module A { struct S { 0 optional vector<int> a = 1; }; };", "cannot have a default"),
        ("module A { struct tarsThing { 0 require int a; }; };", "reserved word 'tars'"),
        (
            '#include "nope.tars"\nmodule A { struct S { 0 require int a; }; };',
            'cannot find #include "nope.tars"',
        ),
    ],
)
def test_semantic_errors(tmp_path: Path, text: str, message: str) -> None:
    p = tmp_path / "x.tars"
    p.write_text(text)
    with pytest.raises(IdlError, match=message.replace("(", r"\(")):
        codegen.generate([p])
    res = subprocess.run(
        [sys.executable, "-m", "k8stars", "tars2py", str(p), "-o", str(tmp_path / "o")],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 2 and "error:" in res.stderr and "Traceback" not in res.stderr
