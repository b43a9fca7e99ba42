"""The layers of docs/architecture.md, as the code is: each package imports only the packages below it (the root
package, for its version, is everyone's). A new import that points up fails here with the file that makes it."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).parents[1]
PACKAGE = ROOT / "k8stars"
SERVICE_LAYER = {"k8stars.service", "k8stars.sql", "k8stars.kube", "k8stars.tars"}

# unit -> the units it may import; a unit is a top-level package of k8stars, or one service or test tool
ALLOWED: dict[str, set[str]] = {
    "k8stars.__main__": {"k8stars.cli"},
    "k8stars.web": {"k8stars.image", "k8stars.kube", "k8stars.service", "k8stars.tars"},
    "k8stars.operator": {"k8stars.kube", "k8stars.tarscli"},
    "k8stars.registry": SERVICE_LAYER | {"k8stars.paths"},
    "k8stars.services": SERVICE_LAYER | {"k8stars.services.stat"},  # monitor and kevent read stat's history store
    "k8stars.image": {"k8stars.service", "k8stars.kube", "k8stars.paths"},
    "k8stars.service": {"k8stars.tars", "k8stars.sql"},
    "k8stars.kube": {"k8stars.tars"},
    "k8stars.sql": {"k8stars.paths"},
    "k8stars.tarscli": {"k8stars.tars", "k8stars.paths"},
    "k8stars.tars": set(),
    "k8stars.paths": set(),
    "k8stars.testing": {"k8stars.image", "k8stars.kube", "k8stars.paths", "k8stars.tarscli", "k8stars.testing.procs"},
}


def unit(module: str) -> str:
    parts = module.split(".")
    if parts[1:2] in (["services"], ["testing"]) and len(parts) > 2:
        return ".".join(parts[:3])
    return ".".join(parts[:2])


def rule(unit_name: str) -> set[str] | None:
    """The allowed imports of a unit (a service or test tool follows its parent's rule); None: anything."""
    if unit_name == "k8stars.cli":
        return None
    parent = ".".join(unit_name.split(".")[:2])
    return ALLOWED.get(unit_name, ALLOWED.get(parent, set()))


def imports(path: Path, module: str) -> set[str]:
    """The k8stars modules a file imports, relative imports resolved."""
    found: set[str] = set()
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module:
                found.add(node.module)
            elif node.level:
                base = package[: len(package) - node.level + 1]
                found.add(".".join(base + ([node.module] if node.module else [])))
    return {m for m in found if m == "k8stars" or m.startswith("k8stars.")}


def test_imports_point_down() -> None:
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        if module == "k8stars":
            continue
        own, allowed = unit(module), rule(unit(module))
        for imported in imports(path, module):
            target = unit(imported) if imported != "k8stars" else "k8stars"
            if allowed is None or target in (own, "k8stars") or target in allowed:
                continue
            wrong.append(f"{path.relative_to(ROOT)} ({own}) imports {imported}")
    assert not wrong, "\n".join(wrong)


def test_the_rule_sees_an_upward_import(tmp_path: Path) -> None:
    """The check itself: a service importing the operator is caught."""
    bad = tmp_path / "app.py"
    bad.write_text("from k8stars.operator import Operator\nfrom ..stat import history\n")
    found = imports(bad, "k8stars.services.notify.app")
    assert found == {"k8stars.operator", "k8stars.services.stat"}
    assert "k8stars.operator" not in (rule("k8stars.services.notify") or set())
