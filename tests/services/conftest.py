"""Fixtures of the framework-service tests on the real control plane (docs/k8s-cluster.md): an admin client with
the k8s.tars.io CRDs, and a fresh namespace per test."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from k8stars.kube.client import Kube, Resource
from k8stars.kube.install import install_crds
from k8stars.testing.cluster import Cluster
from k8stars.testing.cluster.pytest_plugin import k8s_cluster

__all__ = ["k8s_cluster"]

NS = Resource("", "v1", "namespaces", "Namespace", namespaced=False)


@pytest.fixture
async def kube(k8s_cluster: Cluster) -> AsyncIterator[Kube]:
    async with await Kube.connect(str(k8s_cluster.kubeconfig), field_manager="k8stars-tests") as client:
        await install_crds(client)
        yield client


@pytest.fixture
async def namespace(kube: Kube) -> AsyncIterator[str]:
    """A fresh namespace, deleted afterwards (without waiting)."""
    name = f"cfg-{uuid.uuid4().hex[:10]}"
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": {"k8stars.io/test": name}}}
    await kube.create(NS, None, body)
    try:
        yield name
    finally:
        await kube.delete(NS, None, name)
