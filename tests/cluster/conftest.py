"""Fixtures for tests against the real control plane (see docs/k8s-cluster.md).

Python client: kubernetes_asyncio (generated from the apiserver's OpenAPI like the official
client, asyncio-native, released in step with Kubernetes minors).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.rest import ApiException

from k8stars.testing.cluster import Cluster
from k8stars.testing.cluster.pytest_plugin import k8s_cluster, k8s_real_cluster

__all__ = ["k8s_cluster", "k8s_real_cluster"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "realpods: real pods (containerd + kubelet, root only); deselect with -m 'not realpods'"
    )


@pytest.fixture
async def api(k8s_cluster: Cluster) -> AsyncIterator[client.ApiClient]:
    """An admin API client for the session's cluster (one per test: each test has its own loop)."""
    api_client = await config.new_client_from_config(config_file=str(k8s_cluster.kubeconfig))
    async with api_client:
        yield api_client


@pytest.fixture
async def namespace(api: client.ApiClient) -> AsyncIterator[str]:
    """A fresh namespace per test, deleted afterwards (without waiting for it to finish)."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    core = client.CoreV1Api(api)
    await core.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels={"k8stars.io/test": name}))
    )
    try:
        yield name
    finally:
        try:
            await core.delete_namespace(name)
        except ApiException as exc:
            if exc.status != 404:
                raise
