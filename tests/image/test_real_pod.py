"""An image built by the build API runs: a real pod (containerd + kubelet, the `k8s_real_cluster` fixture) pulls it
from the local registry and runs the server from /usr/local/server/bin with its ServerType. Root only (skipped
with the reason otherwise); `-m "not realpods"` deselects it."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from imaging import form, framework, image_service, post, server_timage

from k8stars.image import push_busybox_image
from k8stars.kube.client import Kube, Resource
from k8stars.kube.install import install_crds
from k8stars.kube.resources import POD
from k8stars.testing.cluster import Cluster

pytestmark = pytest.mark.realpods

NAMESPACES = Resource("", "v1", "namespaces", "Namespace", namespaced=False)


@pytest.fixture
async def real(k8s_real_cluster: Cluster) -> AsyncIterator[tuple[Kube, str, str]]:
    """An admin client of the real-node cluster (CRDs installed), a fresh namespace and the node's registry."""
    assert k8s_real_cluster.real_node is not None
    async with await Kube.connect(str(k8s_real_cluster.kubeconfig), field_manager="k8stars-tests") as kube:
        await install_crds(kube)
        name = f"t-{uuid.uuid4().hex[:10]}"
        await kube.create(NAMESPACES, None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
        try:
            yield kube, name, k8s_real_cluster.real_node.registry
        finally:
            await kube.delete(NAMESPACES, None, name)


async def _logs_when_done(kube: Kube, namespace: str, name: str, timeout: float = 90) -> str:
    import asyncio

    deadline = time.monotonic() + timeout
    pod: dict[str, Any] | None = None
    while time.monotonic() < deadline:
        pod = await kube.get(POD, namespace, name)
        if pod and pod.get("status", {}).get("phase") in ("Succeeded", "Failed"):
            text: str = await kube.request("GET", POD.path(namespace, name, "log"))
            return text
        await asyncio.sleep(0.5)
    raise AssertionError(f"pod {name} did not finish: {pod and pod.get('status')}")


@pytest.mark.usefixtures("busybox")
async def test_built_image_runs(real: tuple[Kube, str, str], k8s_real_cluster: Cluster, tmp_path: Path) -> None:
    kube, namespace, registry = real
    await push_busybox_image(registry, "tars/cppbase", "v1")
    await framework(kube, namespace, registry)
    name = await server_timage(kube, namespace)
    async with image_service(k8s_real_cluster.kubeconfig, namespace, tmp_path / "work") as url:
        status, reply = await post(url, name, form(_package(), BaseImage=f"{registry}/tars/cppbase:v1"), wait=True)
    assert status == 200, reply
    script = 'echo "type=$ServerType"; exec /usr/local/server/bin/Hello'
    await kube.create(POD, namespace, {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "hello"},
        "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1, "dnsPolicy": "Default",
                 "containers": [{"name": "hello", "image": reply["result"]["image"], "command": ["sh", "-c", script]}]},
    })  # fmt: skip
    logs = await _logs_when_done(kube, namespace, "hello")
    assert "type=cpp" in logs and "hello from the package" in logs, logs


def _package() -> bytes:
    from packages import file, tgz

    return tgz(file("Hello/Hello", b"#!/bin/sh\necho hello from the package\n", 0o755))
