"""K8SFramework's build API against the real control plane and a real registry: TarsWeb's POST with and without
wait, what the TImage records, one build per TImage, concurrent builds and the limit, credentials, a registry that is
stopped, hostile packages, the upload cap, overtime."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from imaging import USERS, docker_secret, form, framework, image_service, last_build, post, server_timage, until
from packages import HOSTILE, server_tgz
from registries import LocalRegistry, copy_to_dir, inspect

from k8stars.image import Credentials, push_busybox_image
from k8stars.image.builder import STOPPED
from k8stars.kube.client import Kube
from k8stars.kube.resources import TIMAGE
from k8stars.testing.cluster import Cluster

pytestmark = pytest.mark.usefixtures("busybox")


@pytest.fixture
async def base(registry: LocalRegistry) -> str:
    await push_busybox_image(registry.host, "tars/cppbase", "v1")
    return f"{registry.host}/tars/cppbase:v1"


@pytest.fixture
async def service(k8s_cluster: Cluster, namespace: str, tmp_path: Path) -> Any:
    async with image_service(k8s_cluster.kubeconfig, namespace, tmp_path / "work", max_unpacked_mb=16) as url:
        yield url


async def test_build_with_wait(kube: Kube, namespace: str, registry: LocalRegistry, base: str, service: str,
                               tmp_path: Path) -> None:  # fmt: skip
    await framework(kube, namespace, registry.host)
    name = await server_timage(kube, namespace)
    status, reply = await post(service, name, form(server_tgz(), BaseImage=base), wait=True)
    assert (status, reply["status"], reply["message"]) == (200, 200, "OK"), reply
    result = reply["result"]
    build_id = result["id"]
    image = f"{registry.host}/tars/test.helloserver:{build_id}"  # no ServerTag: the id is the tag
    assert result == {"id": build_id, "image": image, "secret": "", "source": name}
    assert reply["handler"]
    obj = await kube.get(TIMAGE, namespace, name)
    assert obj is not None and "running" not in obj["build"]
    last = obj["build"]["last"]
    assert (last["phase"], last["message"], last["image"], last["baseImage"]) == ("Done", "Success", image, base)
    assert (last["serverType"], last["createPerson"], last["mark"]) == ("cpp", "admin", "uploaded by a test")
    assert "undefined" not in json.dumps(obj)
    (release,) = obj["releases"]
    assert release == {"id": build_id, "image": image, "createPerson": "admin", "createTime": last["createTime"],
                       "mark": "uploaded by a test"}  # fmt: skip
    config = inspect(image, "--config")
    assert "ServerType=cpp" in config["config"]["Env"]
    manifest = copy_to_dir(image, tmp_path / "dir")
    import tarfile

    with tarfile.open(tmp_path / "dir" / manifest["layers"][-1]["digest"].split(":")[1], "r:gz") as tar:
        names = tar.getnames()
    assert "usr/local/server/bin/HelloServer" in names and "usr/local/server/bin/conf/HelloServer.conf" in names


async def test_build_without_wait_and_ids_sort(kube: Kube, namespace: str, registry: LocalRegistry, base: str,
                                               service: str) -> None:  # fmt: skip
    await framework(kube, namespace, registry.host)
    name = await server_timage(kube, namespace)
    ids = []
    for tag in ("", "v1.2.0"):
        status, reply = await post(service, name, form(server_tgz(), BaseImage=base, ServerTag=tag))
        assert (status, reply["status"], reply["message"]) == (201, 201, "Created"), reply
        ids.append(reply["result"]["id"])
        obj = await last_build(kube, namespace, name, reply["result"]["id"])
        assert obj["build"]["last"]["phase"] == "Done"
    assert ids == sorted(ids) and ids[0] != ids[1]
    assert [r["id"] for r in obj["releases"]] == ids[::-1]  # the new release first
    assert obj["releases"][0]["image"].endswith(":v1.2.0") and obj["releases"][1]["image"].endswith(f":{ids[0]}")
    inspect(obj["releases"][0]["image"])


async def test_one_build_per_timage(kube: Kube, namespace: str, registry: LocalRegistry, base: str,
                                    service: str) -> None:  # fmt: skip
    await framework(kube, namespace, registry.host)
    running = {"id": "v20260101000000-100000", "baseImage": base, "image": f"{registry.host}/tars/x:1",
               "phase": "Building", "message": "building", "createTime": "2099-01-01T00:00:00Z"}  # fmt: skip
    name = await server_timage(kube, namespace, build={"running": running})
    status, reply = await post(service, name, form(server_tgz(), BaseImage=base))
    assert (status, reply["message"]) == (409, "another task is running")
    obj = await kube.get(TIMAGE, namespace, name)
    assert obj is not None and obj["build"] == {"running": running} and "releases" not in obj


async def test_record_limit(kube: Kube, namespace: str, registry: LocalRegistry, base: str, service: str) -> None:
    await framework(kube, namespace, registry.host, limit=10)
    old = [{"id": f"v{i:02d}", "image": f"{registry.host}/tars/old:{i}"} for i in range(10)]
    name = await server_timage(kube, namespace, releases=old)
    status, reply = await post(service, name, form(server_tgz(), BaseImage=base), wait=True)
    assert status == 200, reply
    obj = await kube.get(TIMAGE, namespace, name)
    assert obj is not None
    assert [r["id"] for r in obj["releases"]] == [reply["result"]["id"]] + [r["id"] for r in old[:9]]


def _slow_body(data: aiohttp.FormData, gate: asyncio.Event) -> tuple[Any, dict[str, str]]:
    """The multipart body in two halves, the second sent once ``gate`` is set: an upload in progress."""
    payload = data()
    body = bytearray()

    class Sink:
        async def write(self, chunk: bytes) -> None:
            body.extend(chunk)

    async def gen() -> Any:
        await payload.write(Sink())  # type: ignore[arg-type]
        yield bytes(body[: len(body) // 2])
        await gate.wait()
        yield bytes(body[len(body) // 2 :])

    return gen(), {"Content-Type": payload.content_type}


async def test_concurrent_builds_and_the_limit(kube: Kube, namespace: str, registry: LocalRegistry, base: str,
                                               service: str) -> None:  # fmt: skip
    """Five uploads at once hold every slot: a sixth is answered 429 at once and nothing is recorded for it; then
    the five complete, each on its own TImage."""
    await framework(kube, namespace, registry.host)
    names = [await server_timage(kube, namespace, server=f"Server{i}") for i in range(6)]
    gate = asyncio.Event()
    uploads = []
    for i, name in enumerate(names[:5]):
        body, headers = _slow_body(form(server_tgz(f"Server{i}"), ServerName=f"Server{i}", BaseImage=base), gate)
        uploads.append(asyncio.create_task(post(service, name, body, wait=True, headers=headers)))

    async def all_slots_taken() -> bool:
        async with aiohttp.ClientSession() as s, s.get(service + "/healthz") as r:
            return "builds=5" in await r.text()

    await until(all_slots_taken, what="five uploads in progress")
    status, reply = await post(service, names[5], form(server_tgz("Server5"), ServerName="Server5", BaseImage=base))
    assert status == 429 and "too many builds in progress (5)" in reply["message"]
    gate.set()
    replies = await asyncio.gather(*uploads)
    assert [s for s, _ in replies] == [200] * 5, replies
    for (_, reply), name in zip(replies, names, strict=False):
        obj = await kube.get(TIMAGE, namespace, name)
        assert obj is not None and obj["releases"][0]["id"] == reply["result"]["id"]
    sixth = await kube.get(TIMAGE, namespace, names[5])
    assert sixth is not None and "build" not in sixth
    # the sixth is taken once a slot is free
    status, reply = await post(service, names[5], form(server_tgz("Server5"), ServerName="Server5", BaseImage=base),
                               wait=True)  # fmt: skip
    assert status == 200, reply


def _files_containing(root: Path, needle: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


async def test_credentials(kube: Kube, namespace: str, auth_registry: LocalRegistry, registry: LocalRegistry,
                           base: str, service: str, tmp_path: Path) -> None:  # fmt: skip
    (user, password), host = next(iter(USERS.items())), auth_registry.host
    await docker_secret(kube, namespace, "push-ok", host, user, password)
    await docker_secret(kube, namespace, "push-wrong", host, user, "not-the-password")
    await framework(kube, namespace, host, secret="push-ok")
    name = await server_timage(kube, namespace)

    # the framework's secret (imageUpload.secret) when the form names none
    status, reply = await post(service, name, form(server_tgz(), BaseImage=base), wait=True)
    assert status == 200 and reply["result"]["secret"] == "push-ok", reply
    obj = await kube.get(TIMAGE, namespace, name)
    assert obj is not None and obj["releases"][0]["secret"] == "push-ok"

    for secret, expected in (("push-wrong", "the credentials were refused: 401 UNAUTHORIZED"),
                             ("missing", f"Secret missing not found in namespace {namespace}")):  # fmt: skip
        status, reply = await post(service, name, form(server_tgz(), BaseImage=base, Secret=secret), wait=True)
        assert status == 500 and expected in reply["message"], reply
        obj = await last_build(kube, namespace, name, reply["result"]["id"])
        assert obj["build"]["last"]["phase"] == "Failed" and expected in obj["build"]["last"]["message"]
        assert len(obj["releases"]) == 1  # no release for a failed build

    # a base on a registry that wants credentials, given by BaseImageSecret
    await push_busybox_image(host, "tars/cppbase", "v1", credentials=Credentials(user, password))
    status, reply = await post(service, name, form(server_tgz(), BaseImage=f"{host}/tars/cppbase:v1",
                                                   BaseImageSecret="push-ok"), wait=True)  # fmt: skip
    assert status == 200, reply
    assert not _files_containing(tmp_path, password.encode()), "credentials written to disk"


async def test_registry_stopped(kube: Kube, namespace: str, registry: LocalRegistry, base: str, service: str) -> None:
    await framework(kube, namespace, registry.host)
    name = await server_timage(kube, namespace)
    registry.stop()
    status, reply = await post(service, name, form(server_tgz(), BaseImage=base), wait=True)
    assert status == 500 and f"registry {registry.host}" in reply["message"], reply
    obj = await last_build(kube, namespace, name, reply["result"]["id"])
    assert obj["build"]["last"]["phase"] == "Failed" and "releases" not in obj


async def test_hostile_packages(kube: Kube, namespace: str, registry: LocalRegistry, base: str,
                                service: str) -> None:  # fmt: skip
    """Refused with the reason (400) before anything is recorded or pushed."""
    await framework(kube, namespace, registry.host)
    name = await server_timage(kube, namespace)
    before = registry.catalog()
    for case, (filename, make, reason) in sorted(HOSTILE.items()):
        status, reply = await post(service, name, form(make(), filename=filename, BaseImage=base), wait=True)
        assert status == 400 and reason in reply["message"], (case, reply)
    obj = await kube.get(TIMAGE, namespace, name)
    assert obj is not None and "build" not in obj and "releases" not in obj
    assert registry.catalog() == before


async def test_bad_requests(kube: Kube, namespace: str, registry: LocalRegistry, base: str, k8s_cluster: Cluster,
                            tmp_path: Path) -> None:  # fmt: skip
    async with image_service(k8s_cluster.kubeconfig, namespace, tmp_path / "w", max_upload_mb=1) as url:
        name = await server_timage(kube, namespace)
        status, reply = await post(url, name, form(server_tgz(), BaseImage=base))
        assert status == 500 and "no TFrameworkConfig tars-framework" in reply["message"]
        await framework(kube, namespace, registry.host)
        for fields, expected in (
            ({"ServerType": "cobol"}, "ServerType 'cobol'"),
            ({"BaseImage": ""}, "BaseImage is required"),
            ({"ServerTag": "Bad_Tag"}, "ServerTag 'Bad_Tag'"),
            ({"ServerApp": "1x"}, "ServerApp '1x'"),
        ):
            status, reply = await post(url, name, form(server_tgz(), **{"BaseImage": base, **fields}))
            assert status == 400 and expected in reply["message"], reply
        status, reply = await post(url, "no-such", form(server_tgz(), BaseImage=base))
        assert status == 404 and "TImage no-such not found" in reply["message"]
        status, reply = await post(url, name, form(server_tgz(size=2 << 20), BaseImage=base))
        assert status == 413 and "upload limit" in reply["message"]
        async with aiohttp.ClientSession() as s, s.post(url + f"/api/v1beta1/timage/{name}/building",
                                                        data=b"x") as r:  # fmt: skip
            assert r.status == 400
        obj = await kube.get(TIMAGE, namespace, name)
        assert obj is not None and "build" not in obj
    async with image_service(k8s_cluster.kubeconfig, namespace, tmp_path / "w2", upload_timeout=0.5) as url:
        body, headers = _slow_body(form(server_tgz(), BaseImage=base), asyncio.Event())  # never completes
        status, reply = await post(url, name, body, headers=headers)
        assert status == 408 and "the upload took longer than 0.5 s" in reply["message"]
        status, _ = await post(url, name, form(server_tgz(), BaseImage=base), wait=True)
        assert status == 200  # the slot is free again


async def test_overtime(kube: Kube, namespace: str, registry: LocalRegistry, k8s_cluster: Cluster,
                        tmp_path: Path) -> None:  # fmt: skip
    """A build left running by a service that died is failed as K8SFramework's controller does."""
    await framework(kube, namespace, registry.host, max_build_time=180)
    running = {
        "id": "v20260101000000-100000",
        "baseImage": "x/y:1",
        "image": f"{registry.host}/tars/x:1",
        "phase": "Pushing",
        "message": "pushing",
        "createTime": "2026-01-01T00:00:00Z",
        "handler": "gone",
    }
    name = await server_timage(kube, namespace, build={"running": running})
    async with image_service(k8s_cluster.kubeconfig, namespace, tmp_path / "w"):
        obj = await last_build(kube, namespace, name, running["id"])
    assert obj["build"]["last"]["phase"] == "Failed" and obj["build"]["last"]["message"] == "task overtime"


async def test_stop_during_build(kube: Kube, namespace: str, base: str, k8s_cluster: Cluster, tmp_path: Path) -> None:
    """A registry that accepts connections and never answers: stopping the service fails the build at once, with
    the reason, instead of leaving it running until overtime."""
    hung: list[asyncio.StreamWriter] = []

    async def never_answer(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        hung.append(writer)

    server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        await framework(kube, namespace, f"127.0.0.1:{port}")
        name = await server_timage(kube, namespace)
        async with image_service(k8s_cluster.kubeconfig, namespace, tmp_path / "w") as url:
            status, reply = await post(url, name, form(server_tgz(), BaseImage=base, ServerType="python"))
            assert status == 201, reply
            await until(lambda: _phase_is(kube, namespace, name, "Pushing"), what="the build to reach Pushing")
        obj = await kube.get(TIMAGE, namespace, name)
        assert obj is not None and "running" not in obj["build"]
        last = obj["build"]["last"]
        assert (last["phase"], last["message"], last["serverType"]) == ("Failed", STOPPED, "python")
    finally:
        for w in hung:
            w.close()
        server.close()


async def _phase_is(kube: Kube, namespace: str, name: str, phase: str) -> bool:
    obj = await kube.get(TIMAGE, namespace, name)
    return (((obj or {}).get("build") or {}).get("running") or {}).get("phase") == phase
