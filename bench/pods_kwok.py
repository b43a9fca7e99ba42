"""The kwok contrast of bench/pods.py: the same TServers on kwok's fake nodes, where nothing runs.

kwok makes a scheduled pod Running with a loopback IP at once; no agent reports and no server answers. So what is
measured here is the control plane's share of bench/pods.py's figures: from the TServer's create call to

* **running**: the pod Running with an IP (operator: StatefulSet; KCM: pod; scheduler; kwok);
* **listed**: QueryF of `k8stars registry --store kubernetes` hands out the pod's endpoint. The bench stands in for
  the agent's first `active` report the moment the pod runs: it sets the pod's `tars.io/active` condition as the
  registry does on that report (a strategic-merge patch of pods/status), kwok makes the pod Ready, the registry's pod
  watch lists it;
* **tendpoint**: the operator's TEndpoint shows the pod `Active` (its bookkeeping of the same watch events).

The real-pod figures add the image pulls, containerd, kubelet, the init container, the agent and the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped,unused-ignore]

from bench.pods import EXAMPLES, NODES, NS, _process, _summary, _tserver
from k8stars.kube.client import Kube
from k8stars.kube.install import install_crds
from k8stars.kube.resources import POD, TENDPOINT, TSERVER, TTEMPLATE
from k8stars.tars.protocol.queryf import QueryFProxy
from k8stars.tars.rpc import Communicator
from k8stars.testing.procs import free_port, wait_port

IMAGE, NODE_IMAGE = "example.invalid/test/test.echoserver:v1", "example.invalid/tars/node:v1"  # never pulled
POLL_S = 0.05


class Times:
    """Per pod name: when it was first seen Running, Active in the TEndpoint, listed by QueryF."""

    def __init__(self, kube: Kube, query: QueryFProxy, namespace: str, server: str) -> None:
        self.kube, self.query, self.namespace, self.server = kube, query, namespace, server
        self.running: dict[str, float] = {}
        self.tendpoint: dict[str, float] = {}
        self.listed: dict[str, float] = {}

    async def until(self, count: int, start: float, timeout: float) -> dict[str, list[float]]:
        deadline = time.monotonic() + timeout
        ips: dict[str, str] = {}
        while min(len(self.running), len(self.tendpoint), len(self.listed)) < count:
            if time.monotonic() > deadline:
                got = f"{len(self.running)} running, {len(self.tendpoint)} active, {len(self.listed)} listed"
                raise RuntimeError(f"{count} pods on kwok: {got} in {timeout:.0f} s")
            pods = (await self.kube.list(POD, self.namespace, selector=f"tars.io/ServerName={self.server}"))["items"]
            for p in pods:
                name, status = p["metadata"]["name"], p.get("status") or {}
                if status.get("phase") == "Running" and status.get("podIP") and name not in self.running:
                    self.running[name] = time.monotonic()
                    ips[status["podIP"]] = name
                    await self._report_active(name)
            await self._tendpoint()
            with contextlib.suppress(Exception):
                for e in await self.query.findObjectById(f"Test.{self.server}.EchoObj"):
                    if e.host in ips:
                        self.listed.setdefault(ips[e.host], time.monotonic())
            await asyncio.sleep(POLL_S)
        return {k: [t - start for t in getattr(self, k).values()] for k in ("running", "tendpoint", "listed")}

    async def _report_active(self, name: str) -> None:
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        condition = {"type": "tars.io/active", "status": "True", "reason": "Active", "lastTransitionTime": now}
        await self.kube.request("PATCH", POD.path(self.namespace, name, "status"),
                                body={"status": {"conditions": [condition]}},
                                content_type="application/strategic-merge-patch+json")  # fmt: skip

    async def _tendpoint(self) -> None:
        te = await self.kube.get(TENDPOINT, self.namespace, f"test-{self.server.lower()}")
        for entry in ((te or {}).get("status") or {}).get("pods") or []:
            if entry.get("presentState") == "Active":
                self.tendpoint.setdefault(str(entry.get("name")), time.monotonic())


async def run_kwok(samples: int, count: int, work: Path) -> dict[str, Any]:
    """One pod ``samples`` times, then ``count`` at once; p50/p95 of each time, per pod."""
    from k8stars.testing.cluster import ClusterOptions, ensure_binaries, start_cluster

    layout = await ensure_binaries()
    cluster = await start_cluster(ClusterOptions(workdir=work / "kwok", nodes=1, die_with_parent=True), layout)
    try:
        async with await Kube.connect(str(cluster.kubeconfig)) as kube:
            await install_crds(kube)
            namespace = f"bench-{uuid.uuid4().hex[:8]}"
            await kube.create(NS, None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
            for node in (await kube.list(NODES, None))["items"]:
                await kube.merge_patch(NODES, None, node["metadata"]["name"],
                                       {"metadata": {"labels": {f"tars.io/node.{namespace}": ""}}})  # fmt: skip
            for template in yaml.safe_load_all((EXAMPLES / "ttemplate.yaml").read_text()):
                await kube.create(TTEMPLATE, namespace, template)
            return await _measure(cluster, kube, namespace, samples, count, work)
    finally:
        await cluster.stop()


async def _measure(cluster: Any, kube: Kube, namespace: str, samples: int, count: int, work: Path) -> dict[str, Any]:
    port = free_port()
    kubeconfig = str(cluster.kubeconfig)
    registry = [sys.executable, "-m", "k8stars", "registry", "--store", "kubernetes", "--kubeconfig", kubeconfig,
                "--namespace", namespace, "--host", "127.0.0.1", "--port", str(port), "--http-port", "0",
                "--data-dir", str(work / "kwok-registry")]  # fmt: skip
    operator = [sys.executable, "-m", "k8stars", "operator", "--kubeconfig", kubeconfig, "-n", namespace,
                "--no-install-crds"]  # fmt: skip
    locator = f"tars.tarsregistry.QueryObj@tcp -h 127.0.0.1 -p {port}"
    with _process(registry, work / "kwok-registry.log") as reg, _process(operator, work / "kwok-operator.log"):
        await asyncio.to_thread(wait_port, port, reg)
        async with Communicator(locator=locator) as comm:
            query = comm.string_to_proxy(QueryFProxy, locator)
            one: dict[str, list[float]] = {"running": [], "tendpoint": [], "listed": []}
            for i in range(samples):
                name = f"One{i}"
                start = time.monotonic()
                await kube.create(TSERVER, namespace, _tserver(name, IMAGE, NODE_IMAGE, locator, 1))
                for key, values in (await Times(kube, query, namespace, name).until(1, start, 60)).items():
                    one[key] += values
                await kube.delete(TSERVER, namespace, f"test-{name.lower()}")
            start = time.monotonic()
            await kube.create(TSERVER, namespace, _tserver("Many", IMAGE, NODE_IMAGE, locator, count))
            many = await Times(kube, query, namespace, "Many").until(count, start, 120)
    return {"one_pod": {k: _summary(v) for k, v in one.items()},
            f"{count}_pods": {k: _summary(v) for k, v in many.items()}}  # fmt: skip
