"""Fixtures for the operator tests on the real control plane (docs/k8s-cluster.md, docs/operator.md)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from operator_helpers import OperatorRunner

from k8stars.kube.client import Kube, Resource
from k8stars.kube.install import install_crds
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
