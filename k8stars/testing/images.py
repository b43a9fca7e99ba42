"""What tests of the image service share, whatever directory they are in: a real OCI registry (Debian's
``docker-registry`` on 127.0.0.1, plain or with htpasswd auth), ``k8stars image serve`` in the test's loop, and the
namespace's TFrameworkConfig and server TImage the build API needs. Processes are stopped by PID."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import bcrypt

from k8stars.kube.client import Kube, Obj
from k8stars.kube.resources import TFRAMEWORKCONFIG, TIMAGE

from .procs import free_port, stop_process, wait_port

__all__ = ["REGISTRY", "LocalRegistry", "framework_config", "image_service", "server_timage"]

REGISTRY = shutil.which("docker-registry") or "/usr/bin/docker-registry"


class LocalRegistry:
    """One ``docker-registry serve`` on a free loopback port; ``users`` turns on htpasswd (bcrypt) auth. As a context
    manager it runs for the block."""

    def __init__(self, root: Path, users: dict[str, str] | None = None) -> None:
        self.root, self.users = root, users
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> LocalRegistry:
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        config: dict[str, Any] = {
            "version": 0.1,
            "log": {"level": "error", "accesslog": {"disabled": True}},
            "storage": {"filesystem": {"rootdirectory": str(self.root / "data")}, "delete": {"enabled": True}},
            "http": {"addr": self.host},
            "health": {"storagedriver": {"enabled": False}},
        }
        if self.users is not None:
            lines = [
                f"{u}:{bcrypt.hashpw(p.encode(), bcrypt.gensalt(rounds=4)).decode()}" for u, p in self.users.items()
            ]
            (self.root / "htpasswd").write_text("\n".join(lines) + "\n")
            config["auth"] = {"htpasswd": {"realm": "k8stars-test", "path": str(self.root / "htpasswd")}}
        (self.root / "config.yml").write_text(json.dumps(config))
        log = (self.root / "registry.log").open("ab")
        self.proc = subprocess.Popen([REGISTRY, "serve", str(self.root / "config.yml")], stdout=log, stderr=log)
        wait_port(self.port, self.proc, timeout=20)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None

    def __enter__(self) -> LocalRegistry:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def catalog(self) -> list[str]:
        import urllib.request

        with urllib.request.urlopen(f"http://{self.host}/v2/_catalog", timeout=5) as r:
            repos: list[str] = json.load(r)["repositories"]
        return repos


@asynccontextmanager
async def image_service(kubeconfig: Path, namespace: str, work: Path, **options: Any) -> AsyncIterator[str]:
    """``k8stars image serve`` on a free loopback port; yields its base URL."""
    from k8stars.image.service import ImageService, ImageServiceOptions

    opts = ImageServiceOptions(namespace=namespace, kubeconfig=str(kubeconfig), port=0, work_dir=str(work), **options)
    service = ImageService(opts)
    await service.start()
    try:
        yield f"http://127.0.0.1:{service.port}"
    finally:
        await service.stop()


async def framework_config(kube: Kube, namespace: str, registry: str, *, secret: str = "", limit: int | None = None,
                           max_build_time: int = 300) -> None:  # fmt: skip
    """TFrameworkConfig ``tars-framework`` pushing to ``<registry>/tars``."""
    body: Obj = {
        "apiVersion": "k8s.tars.io/v1beta3",
        "kind": "TFrameworkConfig",
        "metadata": {"name": "tars-framework"},
        "imageBuild": {"maxBuildTime": max_build_time, "executor": {"image": "unused/kaniko:v1"}},
        "imageUpload": {"registry": f"{registry}/tars", "secret": secret},
        "nodeImage": {"image": f"{registry}/tars/tarsnode:v1"},
    }
    if limit is not None:
        body["recordLimit"] = {"timageRelease": limit}
    await kube.create(TFRAMEWORKCONFIG, namespace, body)


async def server_timage(kube: Kube, namespace: str, app: str = "Test", server: str = "HelloServer",
                        **extra: Any) -> str:  # fmt: skip
    """A server's TImage ``lower(app)-lower(server)`` as the operator makes it (no releases unless given)."""
    name = f"{app.lower()}-{server.lower()}"
    body: Obj = {
        "apiVersion": "k8s.tars.io/v1beta3",
        "kind": "TImage",
        "metadata": {"name": name, "labels": {"tars.io/ImageType": "server", "tars.io/ServerApp": app,
                                              "tars.io/ServerName": server}},
        "imageType": "server",
        **extra,
    }  # fmt: skip
    await kube.create(TIMAGE, namespace, body)
    return name
