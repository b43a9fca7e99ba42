"""`python -m k8stars.testing.cluster up|env|status|down` in a scratch workdir, and the skip rule."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import k8stars
from k8stars.testing.cluster import Cluster
from k8stars.testing.cluster.pytest_plugin import REUSE_ENV, SKIP_ENV

# Subprocesses import k8stars from this checkout whether or not it is pip-installed.
_SRC = str(Path(k8stars.__file__).resolve().parents[1])


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in (SKIP_ENV, REUSE_ENV)}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [_SRC, os.environ.get("PYTHONPATH")]))
    return {**env, **extra}


def _cli(workdir: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "k8stars.testing.cluster", "--workdir", str(workdir), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=_env(),
    )


def test_cli_up_env_status_down(k8s_cluster: Cluster, tmp_path: Path) -> None:
    # Depends on k8s_cluster only so that the binaries are built (and skipping works the same).
    workdir = tmp_path / "cli-cluster"
    up = _cli(workdir, "up", "--nodes", "1")
    try:
        assert up.returncode == 0, up.stderr
        assert f"export KUBECONFIG={workdir / 'kubeconfig'}" in up.stdout
        env = _cli(workdir, "env")
        assert env.returncode == 0 and env.stdout == up.stdout
        status = _cli(workdir, "status")
        assert status.returncode == 0, status.stdout
        assert "kube-apiserver" in status.stdout and "total RSS" in status.stdout
        kubectl = Path("/usr/bin/kubectl")
        if kubectl.exists():
            nodes = subprocess.run(
                [str(kubectl), "get", "nodes", "-o", "name"],
                env={**os.environ, "KUBECONFIG": str(workdir / "kubeconfig")},
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
            assert nodes.stdout.split() == ["node/k8stars-node-1"], nodes.stderr
        pids = [p.pid for p in Cluster.load(workdir).procs]
    finally:
        down = _cli(workdir, "down")
    assert down.returncode == 0, down.stderr
    assert not workdir.exists()
    assert not [pid for pid in pids if _running(pid)]
    assert _cli(workdir, "env").returncode == 1


def _running(pid: int) -> bool:
    """Alive and not a zombie (the processes of `up` are reaped by init, maybe a bit later)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def test_skip_only_when_asked(tmp_path: Path) -> None:
    """K8STARS_SKIP_CLUSTER=1 turns cluster tests into skips with the reason; nothing else does."""
    test = tmp_path / "test_needs_cluster.py"
    test.write_text(
        "from k8stars.testing.cluster.pytest_plugin import k8s_cluster\ndef test_x(k8s_cluster):\n    pass\n"
    )
    env = _env(**{SKIP_ENV: "1"})
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-rs", "-p", "no:cacheprovider", str(test)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stdout
    assert "1 skipped" in run.stdout and f"{SKIP_ENV}=1" in run.stdout, run.stdout


@pytest.mark.skipif(os.environ.get(SKIP_ENV) == "1", reason=f"{SKIP_ENV}=1")
def test_missing_binaries_fail_instead_of_skipping(tmp_path: Path) -> None:
    test = tmp_path / "test_needs_cluster.py"
    test.write_text(
        "from k8stars.testing.cluster.pytest_plugin import k8s_cluster\ndef test_x(k8s_cluster):\n    pass\n"
    )
    env = _env(K8STARS_K8S_BIN=str(tmp_path / "no-binaries-here"))
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", str(test)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 1, run.stdout
    assert "1 error" in run.stdout and "lacks" in run.stdout, run.stdout
