"""Fixtures for the web console tests: the console on the real control plane, the operator beside it, and a real
Chromium (Debian's) driven by Playwright's async API. Screenshots go to docs/img/ for the README."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from k8stars.kube.client import Kube, Resource
from k8stars.testing.cluster import Cluster
from k8stars.testing.cluster.pytest_plugin import k8s_cluster, kube, namespace

__all__ = ["k8s_cluster", "kube", "namespace"]

CHROMIUM = os.environ.get("K8STARS_CHROMIUM", "/usr/bin/chromium")
NODE = Resource("", "v1", "nodes", "Node", namespaced=False)
# No traffic beyond the console on loopback: no update checks, sync, safe browsing, metrics or component updates.
CHROMIUM_ARGS = [
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-sync",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--no-first-run",
    "--metrics-recording-only",
    "--proxy-server=direct://",
    "--proxy-bypass-list=*",
]


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: scripts/test installs Debian's chromium package")
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
async def console(k8s_cluster: Cluster, kube: Kube, namespace: str, tmp_path: Path) -> AsyncIterator[str]:
    """``k8stars web`` (the service itself, in the test's loop) for the test's namespace; yields its base URL."""
    from helpers import web_console

    async with web_console(k8s_cluster, namespace) as url:
        yield url


@pytest.fixture
async def operator(k8s_cluster: Cluster, kube: Kube, namespace: str) -> AsyncIterator[None]:
    """The operator for the test's namespace (pods on the kwok nodes, TConfig activation)."""
    from k8stars.operator import Operator

    label = f"tars.io/node.{namespace}"
    nodes = [n["metadata"]["name"] for n in (await kube.list(NODE))["items"]]
    for node in nodes:
        await kube.merge_patch(NODE, None, node, {"metadata": {"labels": {label: "true"}}})
    client = await Kube.connect(str(k8s_cluster.kubeconfig))
    op = Operator(client, namespace=namespace, workers=2, resync=3600)
    task = asyncio.create_task(op.run())
    try:
        await asyncio.wait_for(op.ready.wait(), 20)
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await client.close()
        for node in nodes:
            await kube.merge_patch(NODE, None, node, {"metadata": {"labels": {label: None}}})
