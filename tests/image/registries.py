"""Real registries for the image tests: Debian's ``docker-registry`` on 127.0.0.1 (plain, or with htpasswd auth),
and ``skopeo``, an independent client that checks what we push. Processes are stopped by PID."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from k8stars.testing.images import REGISTRY, LocalRegistry

__all__ = ["REGISTRY", "SKOPEO", "Front", "LocalRegistry", "copy_to_dir", "inspect", "skopeo", "wait_gone"]

SKOPEO = shutil.which("skopeo") or "/usr/bin/skopeo"


def skopeo(*args: str, timeout: float = 60) -> str:
    """Run skopeo (no policy file needed: an insecure-accept-anything policy is passed); its stdout."""
    policy = Path(__file__).with_name("skopeo-policy.json")
    proc = subprocess.run([SKOPEO, "--policy", str(policy), *args], capture_output=True, text=True, timeout=timeout,
                          check=False)  # fmt: skip
    if proc.returncode != 0:
        raise AssertionError(f"skopeo {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout


def inspect(ref: str, *extra: str) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(skopeo("inspect", "--tls-verify=false", *extra, f"docker://{ref}"))
    return out


def copy_to_dir(ref: str, dest: Path, *extra: str) -> dict[str, Any]:
    """Copy the image to a ``dir:`` layout (skopeo checks every digest on the way); its manifest."""
    skopeo("copy", "--src-tls-verify=false", *extra, f"docker://{ref}", f"dir:{dest}")
    manifest: dict[str, Any] = json.loads((dest / "manifest.json").read_text())
    return manifest


def wait_gone(port: int, timeout: float = 10) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        except OSError:
            return
        time.sleep(0.05)


class Front:
    """An HTTP front of a registry on a free loopback port: forwards every call, unless ``gate`` answers it first
    (an outage, an authentication the registry itself lacks). Extra routes (a token service) via ``routes``."""

    def __init__(self, registry: LocalRegistry, gate: Any = None, routes: dict[str, Any] | None = None) -> None:
        self.registry, self.gate, self.routes = registry, gate, routes or {}
        self.port = 0
        self.runner: Any = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def __aenter__(self) -> Front:
        from aiohttp import ClientSession, web

        self.session = ClientSession()

        async def forward(request: web.Request) -> web.StreamResponse:
            if self.gate is not None and (early := self.gate(request)) is not None:
                return early  # type: ignore[no-any-return]
            body = await request.read()
            headers = {k: v for k, v in request.headers.items()
                       if k.lower() not in ("host", "content-length", "authorization")}  # fmt: skip
            url = f"http://{self.registry.host}{request.rel_url}"
            async with self.session.request(request.method, url, data=body, headers=headers,
                                            allow_redirects=False) as r:  # fmt: skip
                data = await r.read()
                skip = ("content-length", "transfer-encoding", "content-encoding")
                out = {k: v for k, v in r.headers.items() if k.lower() not in skip}
                if "Location" in out:
                    out["Location"] = out["Location"].replace(self.registry.host, self.host)
                return web.Response(status=r.status, body=data, headers=out)

        app = web.Application()
        for path, handler in self.routes.items():
            app.router.add_get(path, handler)
        app.router.add_route("*", "/v2/{tail:.*}", forward)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()
        self.port = self.runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.runner.cleanup()
        await self.session.close()
