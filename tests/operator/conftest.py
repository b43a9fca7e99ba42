"""Fixtures for the operator tests on the real control plane (docs/k8s-cluster.md, docs/operator.md)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from operator_helpers import OperatorRunner

from k8stars.kube.client import Kube, Resource
from k8stars.testing.cluster import Cluster
from k8stars.testing.cluster.pytest_plugin import k8s_cluster, kube, namespace

__all__ = ["k8s_cluster", "kube", "namespace"]

NODE = Resource("", "v1", "nodes", "Node", namespaced=False)


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
