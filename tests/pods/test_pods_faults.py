"""Faults on real pods, and the TServer status saying what is wrong: a release whose image cannot be pulled (a tag
the local registry does not have), the registry stopped during a rollout, and a release whose server exits 1 at
once. The TarsGo echo server runs 2 replicas: while a new release is stuck, the StatefulSet stops its rollout, the
other pod keeps serving calls by name, the TEndpoint lists every pod and the registry hands out only the active
ones; the TServer's condition Ready says why (reason and message naming the pod); publishing a good release (or the
registry coming back) converges to all pods of that release active, and Ready turns True."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from framework import Host, framework_on_host, images, until
from podkit import (
    ECHO,
    NAME,
    SERVANT,
    SERVER,
    build_recorded,
    consistent,
    go_files,
    publish,
    ready_reason,
    tars_ns,
    tserver,
    wait_settled,
)

from k8stars.kube.client import Kube
from k8stars.kube.resources import TSERVER
from k8stars.tars.protocol.queryf import QueryFProxy
from k8stars.tars.rpc import Communicator, ServantProxy
from k8stars.testing.cluster import Cluster
from k8stars.testing.cluster.registry import outage

pytestmark = pytest.mark.realpods
__all__ = ["tars_ns"]

QUICK_PRESTOP = {"TARS_PRESTOP_WAITTIME": "2s"}  # the clients here refresh at each check (default: 80 s per pod)
CRASHING = b'#!/bin/sh\necho "EchoServer: cannot start, exiting" >&2\nexit 1\n'


async def _serves(host: Host, kube: Kube, namespace: str) -> None:
    """The objects agree with each other, and calls by name (a fresh client: what the registry hands out now) all
    succeed."""
    async with Communicator(locator=host.locator) as comm:
        query = comm.string_to_proxy(QueryFProxy, host.locator)
        await until(lambda: consistent(kube, namespace, query), timeout=15, what="TEndpoint and registry consistent")
        proxy = comm.string_to_proxy(ServantProxy, SERVANT, interface=ECHO)
        results = await asyncio.gather(*(proxy.tars_invoke("echo", (str(i),)) for i in range(20)))
        assert [r.r for r in results] == [str(i) for i in range(20)]


async def _stuck(kube: Kube, namespace: str, reason: str, logs: Path) -> str:
    """The Ready condition's message once its reason is ``reason`` (False)."""
    found = await until(lambda: ready_reason(kube, namespace, reason), timeout=120, what=f"Ready reason {reason}")
    assert found["status"] == "False"
    print(f"TServer Ready=False {reason}: {found['message']}")
    return str(found["message"])


async def _converged(kube: Kube, namespace: str, release_id: str, logs: Path) -> None:
    await wait_settled(kube, namespace, 2, release_id, logs, timeout=180)
    ready = await until(lambda: ready_reason(kube, namespace, "Active"), timeout=30, what="Ready reason Active")
    assert ready["status"] == "True" and release_id in ready["message"]


async def test_unpullable_image_and_registry_outage(tars_ns: tuple[Kube, str], k8s_real_cluster: Cluster,
                                                   tmp_path: Path) -> None:  # fmt: skip
    kube, namespace = tars_ns
    cluster, logs = k8s_real_cluster, tmp_path / "logs"
    assert cluster.real_node is not None
    built = await asyncio.to_thread(images, cluster, namespace, "node", "cpp")
    v1, v2, v3 = [await asyncio.to_thread(build_recorded, cluster, namespace, tmp_path, go_files(tag), built["cpp"],
                                          "go", tag) for tag in ("v1", "v2", "v3")]  # fmt: skip
    async with framework_on_host(cluster, namespace, logs) as host:
        await kube.create(TSERVER, namespace, tserver(v1, built["node"], host, replicas=2, env=QUICK_PRESTOP))
        await _converged(kube, namespace, v1["id"], logs)

        # a release naming a tag the registry does not have (published as the console does: spec.release patched)
        missing = f"{cluster.real_node.registry}/test/test.echoserver:no-such-tag"
        await kube.merge_patch(TSERVER, namespace, NAME, {"spec": {"release": {"id": "broken", "image": missing}}})
        message = await _stuck(kube, namespace, "ImagePullBackOff", logs)
        assert f"pod {NAME}-1" in message and missing in message
        await _serves(host, kube, namespace)  # pod 0 of release 1 still serves; the rollout waits
        await asyncio.to_thread(publish, cluster, namespace, v2["id"])
        await _converged(kube, namespace, v2["id"], logs)
        await _serves(host, kube, namespace)

        # the registry stopped while release 3 rolls out: the new pod cannot pull; back, it converges
        async with outage(cluster):
            await asyncio.to_thread(publish, cluster, namespace, v3["id"])
            message = await _stuck(kube, namespace, "ImagePullBackOff", logs)
            assert f"pod {NAME}-1" in message and v3["image"] in message
            await _serves(host, kube, namespace)
        await _converged(kube, namespace, v3["id"], logs)
        await _serves(host, kube, namespace)


async def test_crash_looping_release(tars_ns: tuple[Kube, str], k8s_real_cluster: Cluster, tmp_path: Path) -> None:
    kube, namespace = tars_ns
    cluster, logs = k8s_real_cluster, tmp_path / "logs"
    built = await asyncio.to_thread(images, cluster, namespace, "node", "cpp")
    good = await asyncio.to_thread(build_recorded, cluster, namespace, tmp_path, go_files("v1"), built["cpp"], "go",
                                   "v1")  # fmt: skip
    bad = await asyncio.to_thread(build_recorded, cluster, namespace, tmp_path, {f"{SERVER}/{SERVER}": CRASHING},
                                  built["cpp"], "go", "crash")  # fmt: skip
    fixed = await asyncio.to_thread(build_recorded, cluster, namespace, tmp_path, go_files("v2"), built["cpp"], "go",
                                    "v2")  # fmt: skip
    async with framework_on_host(cluster, namespace, logs) as host:
        await kube.create(TSERVER, namespace, tserver(good, built["node"], host, replicas=2, env=QUICK_PRESTOP))
        await _converged(kube, namespace, good["id"], logs)

        # launcherType background (K8SFramework's default): the agent restarts the server, the container runs
        await asyncio.to_thread(publish, cluster, namespace, bad["id"])
        message = await _stuck(kube, namespace, "ServerInactive", logs)
        assert f"pod {NAME}-1" in message
        await _serves(host, kube, namespace)
        await asyncio.to_thread(publish, cluster, namespace, fixed["id"])
        await _converged(kube, namespace, fixed["id"], logs)
        await _serves(host, kube, namespace)
