"""The protocol package's layers and its public face: generated modules depend on the runtime's bases, never the
runtime on anything above it, and ``from k8stars.tars import ...`` gives a user what they need."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import k8stars.tars
from k8stars.tars import codec, rpc, stub
from k8stars.tars.idl import codegen, compiler

ROOT = Path(__file__).parents[2]
TARS = ROOT / "k8stars" / "tars"
GENERATED = sorted((TARS / "protocol").glob("*.py")) + sorted((ROOT / "examples").glob("*/gen/*.py"))


def imported(path: Path) -> set[str]:
    """The absolute modules a file imports (relative imports of generated siblings left out)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_generated_modules_use_the_bases_not_the_runtime() -> None:
    assert GENERATED
    for path in GENERATED:
        runtime = {m for m in imported(path) if m.startswith("k8stars.tars.rpc")}
        assert not runtime, f"{path.relative_to(ROOT)} imports {runtime}"
        if "class " in path.read_text() and "Servant(" in path.read_text():
            assert "k8stars.tars.stub" in imported(path)


def test_tars_imports_nothing_above_it() -> None:
    for path in TARS.rglob("*.py"):
        above = {m for m in imported(path) if m.startswith("k8stars.") and not m.startswith("k8stars.tars")}
        assert not above, f"{path.relative_to(ROOT)} imports {above}"


def test_every_module_imports_first() -> None:
    """No import cycle: each module of the package loads in a fresh interpreter when it is the first one asked for."""
    modules = sorted(
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__") for p in TARS.rglob("*.py")
    )
    script = "import importlib, sys\nfor m in sys.argv[1:]:\n" + (
        "    for k in [k for k in sys.modules if k.startswith(('k8stars', 'examples'))]:\n"
        "        del sys.modules[k]\n"
        "    importlib.import_module(m)\n"
    )
    res = subprocess.run([sys.executable, "-c", script, *modules, "examples.hello.gen.hello"],
                         cwd=ROOT, capture_output=True, text=True)  # fmt: skip
    assert res.returncode == 0, res.stderr


def test_the_face() -> None:
    face = {name: getattr(k8stars.tars, name) for name in k8stars.tars.__all__}
    assert face["Struct"] is codec.Struct and face["vector_of"] is codec.vector_of and face["INT"] is codec.INT
    assert face["ServantProxy"] is stub.ServantProxy is rpc.ServantProxy
    assert face["Servant"] is stub.Servant is rpc.Servant
    assert face["Application"] is rpc.Application and face["Communicator"] is rpc.Communicator
    assert face["current"] is rpc.current and face["Server"] is rpc.Server
    assert face["generate"] is codegen.generate and face["load_runtime"] is compiler.load_runtime
    assert set(k8stars.tars.__all__) <= set(dir(k8stars.tars))
    namespace: dict[str, object] = {}
    exec("from k8stars.tars import *", namespace)
    assert {n for n in namespace if n != "__builtins__"} == set(k8stars.tars.__all__)


def test_the_face_leaves_the_runtime_to_first_use() -> None:
    """A probe (``tarscli hzcheck``) reads k8stars.tars.endpoint: that loads neither asyncio nor the compiler."""
    script = (
        "import sys, k8stars.tars.endpoint\n"
        "print(sorted(m for m in sys.modules if m.startswith(('asyncio', 'k8stars.tars.rpc', 'k8stars.tars.idl'))))\n"
        "from k8stars.tars import Communicator\n"
        "print('asyncio' in sys.modules)\n"
    )
    res = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split("\n")[:2] == ["[]", "True"]
