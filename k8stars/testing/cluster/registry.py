"""A local OCI registry for real pods: Debian's `docker-registry` (distribution 2.8) on 127.0.0.1, plain HTTP, no
authentication, push and pull, storage in the cluster's directory. containerd pulls from it (pause and test images),
tests and the image builder push to it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

from . import _http, _proc

if TYPE_CHECKING:
    from .launcher import Cluster

BINARY = "docker-registry"


def binary() -> str | None:
    return shutil.which(BINARY) or (f"/usr/bin/{BINARY}" if Path(f"/usr/bin/{BINARY}").is_file() else None)


def write_config(directory: Path, port: int) -> Path:
    """The registry's config (JSON is YAML): loopback listener, filesystem storage, deletes allowed.

    The storage health check is off: it would poll the disk every 10 s for nothing.
    """
    directory.mkdir(parents=True, exist_ok=True)
    config = {
        "version": 0.1,
        "log": {"level": "warn", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(directory / "data")}, "delete": {"enabled": True}},
        "http": {"addr": f"127.0.0.1:{port}", "headers": {"X-Content-Type-Options": ["nosniff"]}},
        "health": {"storagedriver": {"enabled": False}},
    }
    path = directory / "config.yml"
    path.write_text(json.dumps(config, indent=2))
    return path


def argv(config: Path) -> list[str]:
    exe = binary()
    if exe is None:
        raise FileNotFoundError(f"{BINARY} not found (Debian package docker-registry)")
    return [exe, "serve", str(config)]


async def ready(host_port: str) -> bool:
    """The v2 API answers (200 without authentication)."""
    response = await _http.request("GET", f"http://{host_port}/v2/", timeout=2)
    return response.status == 200


@contextlib.asynccontextmanager
async def outage(cluster: Cluster) -> AsyncIterator[None]:
    """The cluster's registry stopped (by its recorded PID) for the block, then started again on the same port and
    storage and waited for (an outage of the registry during a rollout, for fault tests). The cluster's process list
    and state follow the new PID, so `down` stops it. The new process dies with the calling thread, as the fixture's
    do."""
    if cluster.real_node is None:
        raise ValueError("this cluster has no real node, hence no registry")
    host_port = cluster.real_node.registry
    (old,) = [p for p in cluster.procs if p.name == "registry"]
    await _proc.stop_async(old)
    try:
        yield
    finally:
        config = cluster.workdir / "registry" / "config.yml"
        new = _proc.spawn("registry", argv(config), cluster.workdir / "logs", die_with_parent=True)
        cluster.procs[cluster.procs.index(old)] = new
        cluster.save()
        deadline = time.monotonic() + 30
        while not await _ready_quietly(host_port):
            if time.monotonic() > deadline or not _proc.is_ours(new):
                raise RuntimeError(f"registry {host_port} did not come back: {_proc.log_tail(new)}")
            await asyncio.sleep(0.1)


async def _ready_quietly(host_port: str) -> bool:
    try:
        return await ready(host_port)
    except (OSError, TimeoutError, ValueError):  # not listening yet, or half started
        return False
