"""`k8stars kevent` on the real control plane (docs/k8s-cluster.md): the Events of a namespace's TARS pods and of
their workload are kept in the monitoring store, queryable per server and per pod, also after a pod is killed and
after the service restarts; other Events are not kept; retention deletes."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import aiohttp

from k8stars.kube.client import Kube, Obj
from k8stars.kube.resources import POD, STATEFULSET
from k8stars.services.kevent.app import KeventService, KeventServiceOptions
from k8stars.testing.cluster import Cluster, eventually

LABELS = {"tars.io/ServerApp": "Test", "tars.io/ServerName": "HelloServer"}


async def events(svc: KeventService, **query: str) -> list[dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{svc.port}/api/events",
                                                         params=query) as r:  # fmt: skip
        assert r.status == 200, await r.text()
        found: list[dict[str, Any]] = (await r.json())["events"]
        return found


async def running_pods(kube: Kube, namespace: str, count: int) -> dict[str, Obj] | None:
    pods = (await kube.list(POD, namespace, selector="tars.io/ServerName=HelloServer"))["items"]
    up = {p["metadata"]["name"]: p for p in pods if p["status"].get("phase") == "Running"}
    return up if len(up) == count else None


async def test_events_of_tars_pods_are_kept(k8s_cluster: Cluster, kube: Kube, namespace: str, tmp_path: Path) -> None:
    pod = {"metadata": {"labels": LABELS}, "spec": {"containers": [{"name": "hello", "image": "none"}]}}
    sts = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "test-helloserver"},
           "spec": {"replicas": 2, "serviceName": "test-helloserver", "podManagementPolicy": "Parallel",
                    "selector": {"matchLabels": LABELS}, "template": pod}}  # fmt: skip
    await kube.create(STATEFULSET, namespace, sts)
    other = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "not-tars"},
             "spec": {"containers": [{"name": "x", "image": "none"}]}}  # fmt: skip
    await kube.create(POD, namespace, other)
    first = await eventually(lambda: running_pods(kube, namespace, 2), timeout=60, what="2 running TARS pods")

    options = KeventServiceOptions(namespace=namespace, kubeconfig=str(k8s_cluster.kubeconfig), port=0,
                                   data_dir=str(tmp_path))  # fmt: skip
    svc = KeventService(options)
    await svc.start()
    try:

        async def scheduled(pod: str, n: int) -> list[dict[str, Any]] | None:
            got = [e for e in await events(svc, pod=pod) if e["reason"] == "Scheduled"]
            return got if len(got) >= n else None

        for name in first:
            (e,) = await eventually(lambda name=name: scheduled(name, 1), timeout=30, what=f"{name} Scheduled")
            assert e["server"] == "Test.HelloServer" and e["kind"] == "Pod" and e["namespace"] == namespace
        by_server = await events(svc, server="Test.HelloServer")
        assert {e["kind"] for e in by_server} >= {"Pod", "StatefulSet"}  # the workload's SuccessfulCreate too
        assert all(e["pod"] in ("", *first) for e in by_server) and not await events(svc, pod="not-tars")

        # the pod is killed: the StatefulSet makes it again, and its new Events are kept beside the old ones
        await kube.delete(POD, namespace, "test-helloserver-0")
        await eventually(lambda: scheduled("test-helloserver-0", 2), timeout=60, what="a second Scheduled")
    finally:
        await svc.stop()

    again = KeventService(options)  # a restart: what was kept is there before anything is watched again
    await again.store.open()
    try:
        kept = await again.store.events(server="Test.HelloServer")
        assert len([e for e in kept if e.pod == "test-helloserver-0" and e.reason == "Scheduled"]) == 2
        assert await again.store.events(server="x' OR '1'='1") == []  # values are data
        assert await again.store.prune(int(time.time()) - 86400) == 0  # all younger than a day
        count = len(await again.store.events(limit=1000))
        assert count >= 5 and await again.store.prune(int(time.time()) + 60) == count
        assert await again.store.events(server="Test.HelloServer") == []
    finally:
        await again.store.close()
