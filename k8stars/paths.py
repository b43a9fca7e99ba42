"""Where k8stars keeps local state by default: ``$XDG_DATA_HOME/k8stars``, else ``~/.local/share/k8stars`` (the
embedded stores of the registry and the services, `k8stars up`); where it caches heavy builds (``$K8STARS_CACHE``,
else ``~/.cache/k8stars``: the agent bundle, base layers, peers, the test cluster's binaries and state); and the
lock that guards a cached build."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path


def data_home() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "k8stars"


def cache_home() -> Path:
    """The root of every cached build (made if need be)."""
    root = Path(os.environ.get("K8STARS_CACHE") or Path.home() / ".cache" / "k8stars")
    root.mkdir(parents=True, exist_ok=True)
    return root


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive flock on PATH (its directory made if need be): one holder at a time, across processes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
