"""Helpers of the build API tests: the namespace's objects (TFrameworkConfig, TImages, registry Secrets), the image
service in the test's loop, and the multipart POST TarsWeb sends."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from k8stars.image.timage import SECRET
from k8stars.kube.client import Kube, Obj
from k8stars.kube.resources import TIMAGE
from k8stars.testing.images import framework_config as framework
from k8stars.testing.images import image_service, server_timage

__all__ = ["API", "USERS", "docker_secret", "form", "framework", "image_service", "last_build", "post", "server_timage",
           "until"]  # fmt: skip

API = "/api/v1beta1/timage/{}/building"
USERS = {"builder": "s3cret-pass"}  # the htpasswd registry's account


async def docker_secret(kube: Kube, namespace: str, name: str, host: str, user: str, password: str) -> None:
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    config = json.dumps({"auths": {host: {"auth": auth}}}).encode()
    await kube.create(SECRET, namespace, {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": base64.b64encode(config).decode()}})  # fmt: skip


def form(package: bytes, filename: str = "HelloServer.tgz", **fields: str) -> aiohttp.FormData:
    """TarsWeb's form (fields it leaves empty are sent as "undefined", as a JavaScript client does)."""
    data = aiohttp.FormData()
    values = {"ServerApp": "Test", "ServerName": "HelloServer", "ServerType": "cpp", "ServerTag": "",
              "Secret": "undefined", "BaseImage": "", "BaseImageSecret": "undefined", "CreatePerson": "admin",
              "Mark": "uploaded by a test", **fields}  # fmt: skip
    for key, value in values.items():
        data.add_field(key, value)
    data.add_field("ServerFile", package, filename=filename, content_type="application/octet-stream")
    return data


async def post(url: str, timage: str, data: aiohttp.FormData | Any, wait: bool = False,
               headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:  # fmt: skip
    query = "?wait=1" if wait else "?wait=false"
    async with aiohttp.ClientSession() as s, s.post(url + API.format(timage) + query, data=data,
                                                    headers=headers) as r:  # fmt: skip
        return r.status, await r.json()


async def until(probe: Callable[[], Awaitable[Any]], timeout: float = 30, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


async def last_build(kube: Kube, namespace: str, name: str, build_id: str) -> Obj:
    """The TImage once ``build_id`` has ended (``build.last`` is it)."""

    async def ended() -> Obj | None:
        obj = await kube.get(TIMAGE, namespace, name)
        last = ((obj or {}).get("build") or {}).get("last") or {}
        return obj if last.get("id") == build_id and not (obj or {}).get("build", {}).get("running") else None

    result: Obj = await until(ended, what=f"build {build_id} to end")
    return result
