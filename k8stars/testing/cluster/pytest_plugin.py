"""pytest fixture `k8s_cluster`: one real control plane for the whole test session.

Use it from a conftest.py with `from k8stars.testing.cluster.pytest_plugin import k8s_cluster`
(re-exporting the fixture), or load this module as a plugin: `-p k8stars.testing.cluster.pytest_plugin`.

- K8STARS_SKIP_CLUSTER=1  skip every test that needs the cluster (the only way to skip: a failed
                          build or start-up is an error, never a silent skip).
Also `kube` (an admin client, the k8s.tars.io CRDs installed) and `namespace` (a fresh namespace per test, labelled
`k8stars.io/test=<name>` so webhooks can be limited to it).

- K8STARS_CLUSTER_REUSE=1 use the cluster of `python -m k8stars.testing.cluster up` if it runs
                          (fast local iterations; it is not stopped afterwards).

`k8s_real_cluster`: a second control plane with a real node (containerd + kubelet) and a local registry, no kwok
nodes; `.real_node.registry` is the registry's host:port. Skipped (with the reason) when not root or when the
machine lacks containerd, runc, the CNI plugins, docker-registry or cgroups; K8STARS_SKIP_REAL_PODS=1 skips it too.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from k8stars.paths import cache_home

from .launcher import Cluster, ClusterError, ClusterOptions, ensure_binaries, start_cluster
from .node import unable_to_run

SKIP_ENV = "K8STARS_SKIP_CLUSTER"
SKIP_REAL_ENV = "K8STARS_SKIP_REAL_PODS"
REUSE_ENV = "K8STARS_CLUSTER_REUSE"


def _reusable() -> Cluster | None:
    if os.environ.get(REUSE_ENV) != "1":
        return None
    workdir = cache_home() / "cluster"
    if not (workdir / "state.json").is_file():
        return None
    try:
        cluster = Cluster.load(workdir)
    except ClusterError:
        return None
    return cluster if cluster.procs and len(cluster.alive()) == len(cluster.procs) else None


@contextlib.contextmanager
def _visible_output(config: pytest.Config) -> Iterator[None]:
    """Let a (possibly minutes-long) build print progress instead of pytest looking hung."""
    capture = config.pluginmanager.getplugin("capturemanager")
    if capture is None:
        yield
        return
    with capture.global_and_fixture_disabled():
        yield


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@pytest.fixture(scope="session")
def k8s_cluster(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A running control plane: `.kubeconfig`, `.api_url`, `.webhook_tls()`, `.api()`."""
    if os.environ.get(SKIP_ENV) == "1":
        pytest.skip(f"{SKIP_ENV}=1: Kubernetes control-plane tests skipped on request")
    if reused := _reusable():
        yield reused
        return
    workdir: Path = tmp_path_factory.mktemp("k8s-cluster")
    with _visible_output(pytestconfig):
        layout = asyncio.run(ensure_binaries(log=_say))
        # die_with_parent: a pytest killed hard must not leave the control plane running. The
        # components are spawned from this (the main) thread, which lives for the whole session.
        options = ClusterOptions(workdir=workdir, die_with_parent=True)
        cluster = asyncio.run(start_cluster(options, layout, log=_say))
    try:
        yield cluster
    finally:
        # The workdir (logs, etcd data) stays with pytest's other temporary files for post-mortems.
        asyncio.run(cluster.stop(remove_workdir=False))


@pytest.fixture
async def kube(k8s_cluster: Cluster) -> AsyncIterator[Any]:
    """An admin client with the CRDs installed (idempotent server-side apply: cheap after the first test)."""
    from k8stars.kube.client import Kube
    from k8stars.kube.install import install_crds

    async with await Kube.connect(str(k8s_cluster.kubeconfig), field_manager="k8stars-tests") as client:
        await install_crds(client)
        yield client


@pytest.fixture
async def namespace(kube: Any) -> AsyncIterator[str]:
    """A fresh namespace per test, deleted afterwards (without waiting)."""
    from k8stars.kube.client import Resource

    ns = Resource("", "v1", "namespaces", "Namespace", namespaced=False)
    name = f"t-{uuid.uuid4().hex[:10]}"
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": {"k8stars.io/test": name}}}
    await kube.create(ns, None, body)
    try:
        yield name
    finally:
        await kube.delete(ns, None, name)


def skip_unless_real_pods() -> None:
    """pytest.skip, with the reason, where real pods cannot run here."""
    if os.environ.get(SKIP_ENV) == "1" or os.environ.get(SKIP_REAL_ENV) == "1":
        pytest.skip(f"{SKIP_ENV}=1 or {SKIP_REAL_ENV}=1: real-pod tests skipped on request")
    if reason := unable_to_run():
        pytest.skip(f"real pods cannot run here: {reason}")


@dataclass
class _Shared:
    cluster: Cluster | None = None
    users: int = 0


# Each conftest.py that re-exports the fixture makes a fixture definition of its own, and pytest keeps one instance
# per definition: without this, every test directory would start (and keep until the end) a real cluster of its own.
_real = _Shared()


@pytest.fixture(scope="session")
def k8s_real_cluster(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A control plane with one real node (pods really run, on a bridge of their own) and a local registry.

    One per test session, however many conftest.py files re-export it; with K8STARS_CLUSTER_REUSE=1, the cluster of
    `python -m k8stars.testing.cluster up --kubelet` when it runs (left running).
    """
    skip_unless_real_pods()
    if (reused := _reusable()) and reused.real_node:
        yield reused
        return
    if _real.cluster is None:
        workdir: Path = tmp_path_factory.mktemp("k8s-real")
        with _visible_output(pytestconfig):
            layout = asyncio.run(ensure_binaries(log=_say))
            options = ClusterOptions(workdir=workdir, nodes=0, kubelet=True, die_with_parent=True)
            _real.cluster = asyncio.run(start_cluster(options, layout, log=_say))
    cluster = _real.cluster
    _real.users += 1
    try:
        yield cluster
    finally:
        _real.users -= 1
        if _real.users == 0:
            _real.cluster = None
            asyncio.run(cluster.stop(remove_workdir=False, log=_say))
