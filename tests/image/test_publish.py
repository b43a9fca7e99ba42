"""Publishing: ``k8stars image release`` copies a TImage release into the TServer (the admission webhook fills the
node image), and the operator rolls the StatefulSet to it; ``k8stars image releases`` lists them. Through the CLI,
against the control plane with the operator and the webhooks running (as in tests/operator)."""

from __future__ import annotations

import asyncio
import copy
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from imaging import form, framework, image_service, post, server_timage, until
from packages import server_tgz
from registries import LocalRegistry, inspect

from k8stars.image import push_busybox_image
from k8stars.kube.client import Kube, Obj
from k8stars.kube.resources import STATEFULSET, TSERVER, TTEMPLATE
from k8stars.testing.cluster import Cluster

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "operator"))
from operator_helpers import OperatorRunner, load_examples, serving_webhooks

NAME = "test-helloserver"


@pytest.fixture
async def operator(k8s_cluster: Cluster, kube: Kube, namespace: str) -> AsyncIterator[OperatorRunner]:
    async with serving_webhooks(k8s_cluster, kube, namespace):
        runner = OperatorRunner(k8s_cluster, namespace)
        await runner.start()
        try:
            yield runner
        finally:
            await runner.stop()


async def k8stars(cluster: Cluster, namespace: str, *args: str, rc: int = 0) -> tuple[str, str]:
    """The CLI in a process of its own (the webhooks answer from this test's loop meanwhile)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "k8stars", "image", *args, "-n", namespace, "--kubeconfig", str(cluster.kubeconfig),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == rc, err.decode()
    return out.decode(), err.decode()


async def container_image(kube: Kube, namespace: str) -> str | None:
    sts = await kube.get(STATEFULSET, namespace, NAME)
    if sts is None:
        return None
    return str(sts["spec"]["template"]["spec"]["containers"][0]["image"])


@pytest.mark.usefixtures("busybox", "operator")
async def test_publish_and_roll_back(kube: Kube, namespace: str, registry: LocalRegistry, k8s_cluster: Cluster,
                                     tmp_path: Path) -> None:  # fmt: skip
    await push_busybox_image(registry.host, "tars/cppbase", "v1")
    await framework(kube, namespace, registry.host)
    for doc in load_examples("ttemplate.yaml"):
        await kube.create(TTEMPLATE, namespace, doc)
    (doc,) = load_examples("tserver.yaml")
    ts: Obj = copy.deepcopy(doc)
    del ts["spec"]["release"]
    await kube.create(TSERVER, namespace, ts)
    await server_timage(kube, namespace)
    assert await until(lambda: container_image(kube, namespace), what="the StatefulSet") == " "  # no release yet

    ids = []
    async with image_service(k8s_cluster.kubeconfig, namespace, tmp_path / "work") as url:
        for mark in ("first", "second"):
            status, reply = await post(url, NAME, form(server_tgz(), BaseImage=f"{registry.host}/tars/cppbase:v1",
                                                       Mark=mark), wait=True)  # fmt: skip
            assert status == 200, reply
            ids.append(reply["result"]["id"])

    package = tmp_path / "HelloServer.tgz"
    package.write_bytes(server_tgz())
    out, _ = await k8stars(k8s_cluster, namespace, "build", str(package), "--app", "Test", "--server", "HelloServer",
                           "--base", f"{registry.host}/tars/cppbase:v1", "--mark", "third", "--tag", "v3")  # fmt: skip
    result = json.loads(out)
    assert result["image"] == f"{registry.host}/tars/test.helloserver:v3" and result["source"] == NAME
    ids.append(result["id"])

    listed = json.loads((await k8stars(k8s_cluster, namespace, "releases", NAME, "--json"))[0])
    assert [r["id"] for r in listed] == ids[::-1] and [r["mark"] for r in listed] == ["third", "second", "first"]

    for chosen in (ids[1], ids[0]):  # publish the newest, then roll back to the first
        published = json.loads((await k8stars(k8s_cluster, namespace, "release", NAME, chosen))[0])
        image = f"{registry.host}/tars/test.helloserver:{chosen}"
        assert published["id"] == chosen and published["image"] == image
        stored = await kube.get(TSERVER, namespace, NAME)
        assert stored is not None
        release = stored["spec"]["release"]
        assert (release["id"], release["image"]) == (chosen, image)
        assert release["nodeImage"] == f"{registry.host}/tars/tarsnode:v1"  # filled by the webhook

        async def rolled(image: str = image) -> bool:
            return await container_image(kube, namespace) == image

        await until(rolled, what=f"the StatefulSet on {image}")
        inspect(image)
    table, _ = await k8stars(k8s_cluster, namespace, "releases", NAME)
    assert table.splitlines()[2].startswith(f"* {ids[0]}")
    _, err = await k8stars(k8s_cluster, namespace, "release", NAME, "v-nope", rc=1)
    assert f"TImage {NAME} has no release v-nope" in err
