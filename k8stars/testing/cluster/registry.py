"""A local OCI registry for real pods: Debian's `docker-registry` (distribution 2.8) on 127.0.0.1, plain HTTP, no
authentication, push and pull, storage in the cluster's directory. containerd pulls from it (pause and test images),
tests and the image builder push to it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from . import _http

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
