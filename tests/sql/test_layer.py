"""The SQL layer sits below every store: it imports neither the registry nor the services, and its face names what
a store needs without loading a driver."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import k8stars.sql

ROOT = Path(__file__).parents[2]
SQL = ROOT / "k8stars" / "sql"


def test_sql_imports_nothing_above_it() -> None:
    for path in SQL.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("k8stars."):
                assert node.module.startswith(("k8stars.sql", "k8stars.paths")), f"{path.name}: {node.module}"


def test_the_face_loads_no_driver() -> None:
    assert set(k8stars.sql.__all__) <= set(dir(k8stars.sql))
    script = "import sys, k8stars.sql\nprint(sorted(m for m in sys.modules if m.split('.')[0] in ('aiosqlite', 'aiomysql', 'pymysql')))"  # noqa: E501
    res = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "[]"
