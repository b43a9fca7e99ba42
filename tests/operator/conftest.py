"""Fixtures for the operator tests on the real control plane (docs/k8s-cluster.md, docs/operator.md)."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator

import pytest

from k8stars.kube.client import Kube, Resource
from k8stars.kube.install import install_crds
from k8stars.operator import Operator
from k8stars.testing.cluster import Cluster
from k8stars.testing.cluster.pytest_plugin import k8s_cluster

__all__ = ["k8s_cluster"]

NAMESPACE = {"apiVersion": "v1", "kind": "Namespace"}
NS = Resource("", "v1", "namespaces", "Namespace", namespaced=False)
NODE = Resource("", "v1", "nodes", "Node", namespaced=False)


@pytest.fixture
async def kube(k8s_cluster: Cluster) -> AsyncIterator[Kube]:
    """An admin client with the CRDs installed (idempotent server-side apply: cheap after the first test)."""
    async with await Kube.connect(str(k8s_cluster.kubeconfig), field_manager="k8stars-tests") as client:
        await install_crds(client)
        yield client


@pytest.fixture
async def namespace(kube: Kube) -> AsyncIterator[str]:
    """A fresh namespace per test, deleted afterwards (without waiting)."""
    name = f"op-{uuid.uuid4().hex[:10]}"
    await kube.create(NS, None, {**NAMESPACE, "metadata": {"name": name, "labels": {"k8stars.io/test": name}}})
    try:
        yield name
    finally:
        await kube.delete(NS, None, name)


class OperatorRunner:
    """The operator in the test's event loop, watching one namespace; start/stop to simulate restarts."""

    def __init__(self, cluster: Cluster, namespace: str) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self.kube: Kube | None = None
        self.operator: Operator | None = None
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> Operator:
        assert self.task is None
        self.kube = await Kube.connect(str(self.cluster.kubeconfig))
        self.operator = Operator(self.kube, namespace=self.namespace, workers=2, resync=3600)
        self.task = asyncio.create_task(self.operator.run())
        await asyncio.wait_for(self.operator.ready.wait(), 20)
        return self.operator

    async def idle(self, settle: float = 0.5, timeout: float = 20.0) -> Operator:
        """Wait until the queue has stayed empty for `settle` seconds."""
        assert self.operator is not None
        deadline = time.monotonic() + timeout
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < settle:
            if len(self.operator.queue):
                quiet_since = time.monotonic()
            if time.monotonic() > deadline:
                raise AssertionError("operator queue never drained")
            await asyncio.sleep(0.05)
        return self.operator

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            self.task = None
        if self.kube is not None:
            await self.kube.close()
            self.kube = None


@pytest.fixture
async def operator(k8s_cluster: Cluster, kube: Kube, namespace: str) -> AsyncIterator[OperatorRunner]:
    """A running operator for the test's namespace; the fake nodes carry `tars.io/node.<namespace>`."""
    label = f"tars.io/node.{namespace}"
    nodes = [n["metadata"]["name"] for n in (await kube.list(NODE))["items"]]
    for node in nodes:
        await kube.merge_patch(NODE, None, node, {"metadata": {"labels": {label: "true"}}})
    runner = OperatorRunner(k8s_cluster, namespace)
    await runner.start()
    try:
        yield runner
    finally:
        await runner.stop()
        for node in nodes:
            await kube.merge_patch(NODE, None, node, {"metadata": {"labels": {label: None}}})
