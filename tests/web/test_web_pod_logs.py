"""Pod logs on a real pod (containerd + kubelet: the `k8s_real_cluster` fixture, skipped with the reason where real
pods cannot run): the logs page shows what the server's pod printed, through the Kubernetes API's pods/log."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from helpers import Browser, add_account, until, web_console
from test_servers import tserver

from k8stars.kube.client import Kube, Resource
from k8stars.kube.install import install_crds
from k8stars.kube.resources import POD, TSERVER
from k8stars.testing.cluster import Cluster
from k8stars.testing.cluster.pytest_plugin import k8s_real_cluster

__all__ = ["k8s_real_cluster"]

NAMESPACES = Resource("", "v1", "namespaces", "Namespace", namespaced=False)


def framework_image(cluster: Cluster) -> str:
    """`k8stars image framework` (Python, what the charts run) in the cluster's registry."""
    assert cluster.real_node is not None
    done = subprocess.run([sys.executable, "-m", "k8stars", "image", "framework", cluster.real_node.registry],
                          capture_output=True, text=True, timeout=900, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip()


@pytest.fixture
async def real(k8s_real_cluster: Cluster) -> AsyncIterator[tuple[Kube, str, str]]:
    """An admin client (CRDs installed), a fresh namespace and the console over it."""
    kube = await Kube.connect(str(k8s_real_cluster.kubeconfig))
    await install_crds(kube)
    ns = f"t-{uuid.uuid4().hex[:10]}"
    await kube.create(NAMESPACES, None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    try:
        async with web_console(k8s_real_cluster, ns) as url:
            yield kube, ns, url
    finally:
        await kube.delete(NAMESPACES, None, ns)
        await kube.close()


async def test_pod_log_on_a_real_pod(k8s_real_cluster: Cluster, real: tuple[Kube, str, str], browser: Any) -> None:
    kube, ns, base = real
    image = framework_image(k8s_real_cluster)
    await kube.create(TSERVER, ns, {**tserver("Test", "Hello", replicas=0)})
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "test-hello-0", "labels": {"tars.io/ServerApp": "Test", "tars.io/ServerName": "Hello"}},
           "spec": {"terminationGracePeriodSeconds": 1, "containers": [{
               "name": "hello", "image": image,
               "command": ["python3", "-c", "import time; print('hello from a real pod', flush=True); time.sleep(300)"],
           }]}}  # fmt: skip
    await kube.create(POD, ns, pod)

    async def running() -> bool:
        got = await kube.get(POD, ns, "test-hello-0")
        return (got or {}).get("status", {}).get("phase") == "Running"

    await until(running, timeout=300, what="the pod running")
    await add_account(kube, ns, "dev", "dev-pass", ("developer", "Test"))
    b = await Browser.open(browser, base)
    try:
        await b.login("dev", "dev-pass")

        async def logged() -> bool:
            await b.goto("/servers/test-hello/logs?pod=test-hello-0")
            return await b.page.locator("#pod-log").count() == 1 and "hello from a real pod" in (
                await b.page.inner_text("#pod-log"))  # fmt: skip

        await until(logged, timeout=60, what="the pod's log on the page")
        await b.goto("/servers/test-hello/logs?pod=test-hello-0&previous=1")  # no previous container: said so
        assert await b.page.locator("#pod-log-error").count() == 1
        b.assert_clean()
    finally:
        await b.close()
