"""Upload → build from the releases page, as K8SFramework's tarsweb does it: an operator uploads a package in Chromium,
the console streams it to a real ``k8stars image serve``, which builds on a busybox base and pushes to a real
registry (Debian's docker-registry); the release lands on the TImage (createPerson = that user, never the form's)
and on the page, and publishing it sets the TServer's release. A package with a path-traversal member is refused
with the service's reason and adds nothing; an oversized one is refused by the console; a developer sees no form
and a forged upload is 403 with nothing built; without --image-url the page says the service is not configured."""

from __future__ import annotations

import io
import json
import os
import tarfile
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.payload import AsyncIterablePayload
from helpers import Browser, add_account, until
from test_servers import tserver

from k8stars.image import push_busybox_image
from k8stars.image.bases import register
from k8stars.kube.client import Kube, Obj
from k8stars.kube.resources import TIMAGE, TSERVER
from k8stars.testing.cluster import Cluster
from k8stars.testing.images import REGISTRY, LocalRegistry, framework_config, image_service, server_timage

NAME = "test-helloserver"
PAGE = f"/servers/{NAME}/releases"


def package(*members: tuple[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


GOOD = package(("HelloServer/HelloServer", b"#!/bin/sh\necho hello\n"), ("HelloServer/conf/a.conf", b"<a>\n</a>\n"))
TRAVERSAL = package(("HelloServer/HelloServer", b"x"), ("HelloServer/../../etc/evil", b"x"))


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalRegistry]:
    if not Path(REGISTRY).exists() or not Path("/bin/busybox").exists():
        pytest.fail("docker-registry or /bin/busybox is missing: scripts/test installs them (Debian)")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))  # k8stars.image's blob cache, private to the test
    with LocalRegistry(tmp_path / "registry") as reg:
        yield reg


@pytest.fixture
async def builder(k8s_cluster: Cluster, kube: Kube, namespace: str, registry: LocalRegistry,
                  tmp_path: Path) -> AsyncIterator[str]:  # fmt: skip
    """The image service over the namespace, pushing to the registry, with a busybox base TImage (cppbase: cpp, go)."""
    await framework_config(kube, namespace, registry.host)
    await push_busybox_image(registry.host, "tars/cppbase", "v1")
    await register(kube, namespace, "cpp", f"{registry.host}/tars/cppbase:v1")
    async with image_service(k8s_cluster.kubeconfig, namespace, tmp_path / "work") as url:
        yield url


@pytest.fixture
async def uploads(k8s_cluster: Cluster, namespace: str, builder: str) -> AsyncIterator[str]:
    """``k8stars web`` with ``--image-url`` (uploads of at most 1 MiB); yields its base URL."""
    from k8stars.web.service import WebOptions, WebService

    opts = WebOptions(namespace=namespace, kubeconfig=str(k8s_cluster.kubeconfig), port=0, image_url=builder,
                      max_upload_mb=1)  # fmt: skip
    service = WebService(opts)
    await service.start()
    try:
        yield f"http://127.0.0.1:{service.port}"
    finally:
        await service.stop()


async def timage(kube: Kube, namespace: str) -> Obj:
    obj = await kube.get(TIMAGE, namespace, NAME)
    assert obj is not None
    return obj


def tags(registry: LocalRegistry, repo: str) -> list[str]:
    with urllib.request.urlopen(f"http://{registry.host}/v2/{repo}/tags/list", timeout=5) as r:
        return list(json.load(r).get("tags") or [])


async def upload(b: Browser, data: bytes, filename: str = "HelloServer.tgz", mark: str = "") -> str:
    """Fill the form and send it; the flash message of the page it lands on."""
    file = {"name": filename, "mimeType": "application/gzip", "buffer": data}
    await b.page.set_input_files("#upload-form input[name=ServerFile]", files=[file])
    await b.page.fill("#upload-form input[name=Mark]", mark)
    await b.page.click("#upload-form button[type=submit]")
    await b.page.wait_for_load_state()
    return str(await b.page.inner_text("p.flash"))


async def test_upload_build_and_publish(kube: Kube, namespace: str, registry: LocalRegistry, uploads: str,
                                        browser: Any) -> None:  # fmt: skip
    body = tserver("Test", "HelloServer")
    body["spec"]["tars"]["template"] = "tars.go"
    await kube.create(TSERVER, namespace, body)
    await server_timage(kube, namespace)
    await add_account(kube, namespace, "ops", "ops-pass", ("operator", "Test"))
    ops = await Browser.open(browser, uploads)
    ops.page.on("dialog", lambda d: d.accept())
    try:
        await ops.login("ops", "ops-pass")
        await ops.goto(PAGE)
        # The type follows the template; the base is the namespace's base TImage release serving it.
        assert await ops.page.input_value("#upload-form select[name=ServerType]") == "go"
        base = await ops.page.input_value("#upload-form select[name=BaseImage]")
        assert base.startswith(f"{registry.host}/tars/cppbase:")
        flash = await upload(ops, GOOD, mark="first upload")
        assert "HelloServer.tgz uploaded, build v" in flash, flash
        build_id = flash.split("build ", 1)[1].split()[0]
        # The page follows the build (live) until the release lands in its list.
        await ops.page.wait_for_selector(f"tr.release[data-id='{build_id}']", timeout=90_000)
        await ops.page.wait_for_selector("#build p.last[data-phase=Done]", timeout=30_000)
        obj = await timage(kube, namespace)
        (release,) = obj["releases"]
        image = f"{registry.host}/tars/test.helloserver:{build_id}"
        assert (release["id"], release["image"], release["createPerson"], release["mark"]) == (
            build_id, image, "ops", "first upload")  # fmt: skip
        last = obj["build"]["last"]
        assert (last["serverType"], last["baseImage"], last["createPerson"]) == ("go", base, "ops")
        assert build_id in tags(registry, "tars/test.helloserver")
        await ops.shot("upload.png")
        # Publishing the new release sets the TServer's release.
        await ops.page.click(f"tr.release[data-id='{build_id}'] button")
        await ops.page.wait_for_load_state()
        ts = await kube.get(TSERVER, namespace, NAME)
        assert ts is not None and (ts["spec"]["release"]["id"], ts["spec"]["release"]["image"]) == (build_id, image)
        # A path-traversal member: the service's reason is shown, nothing is recorded or pushed.
        flash = await upload(ops, TRAVERSAL, filename="Evil.tgz")
        assert "refused the build (400)" in flash and "path traversal" in flash, flash
        # Over the console's limit (1 MiB here): refused before the image service is asked.
        flash = await upload(ops, package(("HelloServer/big", os.urandom(1_200_000))), filename="Big.tgz")
        assert "over the upload limit (1 MiB)" in flash, flash
        # The same without a Content-Length (chunked): cut at the limit as it streams; the service builds nothing.
        assert await chunked(ops, base, os.urandom(1_200_000)) == "over the upload limit (1 MiB)"
        after = await timage(kube, namespace)
        assert [r["id"] for r in after["releases"]] == [build_id] and after["build"]["last"]["id"] == build_id
        assert tags(registry, "tars/test.helloserver") == [build_id]
        ops.assert_clean()
    finally:
        await ops.close()


async def chunked(b: Browser, base: str, data: bytes) -> str:
    """An upload with the browser's cookie and token but no Content-Length: the flash message it leads to."""

    async def pieces() -> AsyncIterator[bytes]:
        for i in range(0, len(data), 64 * 1024):
            yield data[i : i + 64 * 1024]

    with aiohttp.MultipartWriter("form-data") as body:
        for key, value in (("_csrf", await b.csrf()), ("ServerType", "cpp"), ("BaseImage", base)):
            body.append(value).set_content_disposition("form-data", name=key)
        body.append_payload(AsyncIterablePayload(pieces())).set_content_disposition(
            "form-data", name="ServerFile", filename="Chunked.tgz")  # fmt: skip
    cookies = {c["name"]: c["value"] for c in await b.context.cookies()}
    async with aiohttp.ClientSession(cookies=cookies) as http:
        async with http.post(b.base + f"/servers/{NAME}/upload", data=body, allow_redirects=False) as r:
            assert r.status == 303 and r.headers["Location"] == PAGE, r.status
            assert "Content-Length" not in r.request_info.headers
        http.cookie_jar.update_cookies({k: v.value for k, v in r.cookies.items()})
        async with http.get(b.base + PAGE) as page:
            html = await page.text()
    return "over the upload limit (1 MiB)" if "over the upload limit (1 MiB)" in html else html[:2000]


async def forged(b: Browser, csrf: str | None, base: str) -> int:
    form: dict[str, Any] = {} if csrf is None else {"_csrf": csrf}
    form |= {"ServerType": "cpp", "BaseImage": base, "CreatePerson": "admin", "ServerApp": "Pay", "ServerName": "X",
             "ServerFile": {"name": "x.tgz", "mimeType": "application/gzip", "buffer": GOOD}}  # fmt: skip
    response = await b.context.request.post(b.base + f"/servers/{NAME}/upload", multipart=form, max_redirects=0)
    return int(response.status)


async def test_upload_roles_and_forgery(kube: Kube, namespace: str, registry: LocalRegistry, uploads: str,
                                        console: str, browser: Any) -> None:  # fmt: skip
    await kube.create(TSERVER, namespace, tserver("Test", "HelloServer"))
    await server_timage(kube, namespace)
    await add_account(kube, namespace, "ops", "ops-pass", ("operator", "Test.HelloServer"))
    await add_account(kube, namespace, "dev", "dev-pass", ("developer", "Test"))
    ops, dev = await Browser.open(browser, uploads), await Browser.open(browser, uploads)
    plain = await Browser.open(browser, console)  # a console without --image-url
    try:
        await ops.login("ops", "ops-pass")
        await ops.goto(PAGE)
        base = await ops.page.input_value("#upload-form select[name=BaseImage]")
        assert await ops.page.input_value("#upload-form select[name=ServerType]") == "cpp"  # template tars.cpp
        await dev.login("dev", "dev-pass")
        await dev.goto(PAGE)
        assert await dev.page.locator("#upload-form, #upload").count() == 0
        assert await forged(dev, await dev.csrf(), base) == 403  # the developer's own token: the role refuses
        assert await forged(ops, None, base) == 403  # no token
        assert await forged(ops, "forged", base) == 403
        assert await forged(ops, await dev.csrf(), base) == 403  # another session's token
        assert await ops.forge(f"/servers/{NAME}/upload", {"ServerType": "cpp"}) == 403  # not multipart, no token
        assert await ops.forge(f"/servers/{NAME}/upload", {"_csrf": await ops.csrf()}) == 400  # not multipart
        obj = await timage(kube, namespace)
        assert not obj.get("releases") and not obj.get("build")
        assert "tars/test.helloserver" not in registry.catalog()
        # The form's own ServerApp, ServerName and CreatePerson are ignored: the TServer's and the user's count.
        assert await forged(ops, await ops.csrf(), base) == 303
        obj = await until(lambda: _released(kube, namespace), timeout=90, what="the forged fields' build")
        (release,) = obj["releases"]
        assert release["createPerson"] == "ops" and "/tars/test.helloserver:" in release["image"]
        await plain.login("ops", "ops-pass")
        await plain.goto(PAGE)
        assert "the image service is not configured" in await plain.page.inner_text("#upload")
        assert await plain.page.locator("#upload-form").count() == 0
        for b in (ops, dev, plain):
            b.assert_clean()
    finally:
        for b in (ops, dev, plain):
            await b.close()


async def _released(kube: Kube, namespace: str) -> Obj | None:
    obj = await timage(kube, namespace)
    return obj if obj.get("releases") else None
