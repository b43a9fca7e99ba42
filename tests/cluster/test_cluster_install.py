"""The test cluster's launcher after a plain install (no `cluster` extra): a clear message, not a bare traceback
into cryptography."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).parents[2]

# `python -m k8stars.testing.cluster --help` with cryptography made unimportable, as on a plain install
WITHOUT_CRYPTOGRAPHY = (
    "import runpy, sys\n"
    "sys.modules['cryptography'] = None\n"
    "sys.argv = ['python -m k8stars.testing.cluster', '--help']\n"
    "runpy.run_module('k8stars.testing.cluster', run_name='__main__', alter_sys=True)\n"
)


def test_missing_cryptography_names_the_extra() -> None:
    res = subprocess.run([sys.executable, "-c", WITHOUT_CRYPTOGRAPHY], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode != 0
    last = res.stderr.strip().splitlines()[-1]
    assert "'cryptography'" in last and "pip install 'k8stars[cluster]'" in last, res.stderr


def test_the_cluster_extra_brings_it() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(req.startswith("cryptography") for req in extras["cluster"])
    assert "pip install 'k8stars[cluster]'" in (ROOT / "docs" / "k8s-cluster.md").read_text()
