"""Fixtures of the image tests: real registries on 127.0.0.1 (plain and with htpasswd auth), the control plane
(for the build API and publishing), and a private cache directory."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from imaging import USERS
from registries import REGISTRY, SKOPEO, LocalRegistry

from k8stars.testing.cluster.pytest_plugin import k8s_cluster, k8s_real_cluster, kube, namespace

__all__ = ["k8s_cluster", "k8s_real_cluster", "kube", "namespace"]


def _need_tools() -> None:
    for tool in (REGISTRY, SKOPEO):
        if not Path(tool).exists():
            raise AssertionError(f"{tool} is missing: scripts/test installs docker-registry and skopeo (Debian)")


@pytest.fixture(autouse=True)
def _cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Blob and layer caches of k8stars.image (under XDG_DATA_HOME) private to the test."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[LocalRegistry]:
    _need_tools()
    with LocalRegistry(tmp_path / "registry") as reg:
        yield reg


@pytest.fixture
def auth_registry(tmp_path: Path) -> Iterator[LocalRegistry]:
    _need_tools()
    with LocalRegistry(tmp_path / "auth-registry", users=USERS) as reg:
        yield reg


@pytest.fixture
def busybox() -> Path:
    path = Path("/bin/busybox")
    if not path.exists() or shutil.which("busybox") is None:
        raise AssertionError("/bin/busybox is missing: scripts/test installs busybox-static (Debian)")
    return path


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "realpods: real pods (containerd + kubelet, root only); deselect with -m 'not realpods'"
    )
