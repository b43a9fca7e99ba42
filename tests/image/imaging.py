"""Helpers of the build API tests: the namespace's objects (TFrameworkConfig, TImages, registry Secrets), the image
service in the test's loop, and the multipart POST TarsWeb sends."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp

from k8stars.image.service import ImageService, ImageServiceOptions
from k8stars.image.timage import SECRET
from k8stars.kube.client import Kube, Obj
from k8stars.kube.resources import TFRAMEWORKCONFIG, TIMAGE

API = "/api/v1beta1/timage/{}/building"
USERS = {"builder": "s3cret-pass"}  # the htpasswd registry's account


async def framework(kube: Kube, namespace: str, registry: str, *, secret: str = "", limit: int | None = None,
                    max_build_time: int = 300) -> None:  # fmt: skip
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


async def docker_secret(kube: Kube, namespace: str, name: str, host: str, user: str, password: str) -> None:
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    config = json.dumps({"auths": {host: {"auth": auth}}}).encode()
    await kube.create(SECRET, namespace, {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": base64.b64encode(config).decode()}})  # fmt: skip


@asynccontextmanager
async def image_service(kubeconfig: Path, namespace: str, work: Path, **options: Any) -> AsyncIterator[str]:
    """The image service on a free loopback port; yields its base URL."""
    opts = ImageServiceOptions(namespace=namespace, kubeconfig=str(kubeconfig), port=0, work_dir=str(work), **options)
    service = ImageService(opts)
    await service.start()
    try:
        yield f"http://127.0.0.1:{service.port}"
    finally:
        await service.stop()


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
