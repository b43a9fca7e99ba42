"""Operator latency and throughput on the real control plane (docs/k8s-cluster.md).

    python -m bench.operator [--samples 20] [--count 200] [--workers 8] [--kubeconfig FILE] [--json]

Starts a control plane of its own (unless --kubeconfig names a running one), installs the CRDs and runs the
operator in this process, watching one fresh namespace with the example TTemplates (each TServer's server-meta
ConfigMap carries its resolved template). Two measurements:

* create → StatefulSet: one TServer at a time (the example of examples/k8s/tserver.yaml with a release and
  replicas 1), the time from the create call returning to the StatefulSet being visible to a watch; `--samples`
  of them, p50/p95/max;
* converge N: `--count` TServers created at once (16 concurrent creates; no release, so no pods, as the goal is the
  operator's own work), the time until every one has its StatefulSet, Service, TEndpoint and TServer status.

Goals (issue 7): create → StatefulSet ≤ 1 s; 1,000 TServers converged ≤ 60 s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import json
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped,unused-ignore]

from k8stars.kube.client import Kube, Resource
from k8stars.kube.install import install_crds
from k8stars.kube.resources import SERVICE, STATEFULSET, TENDPOINT, TSERVER, TTEMPLATE
from k8stars.operator import Operator

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "k8s" / "tserver.yaml"
TEMPLATES = EXAMPLE.with_name("ttemplate.yaml")
NS = Resource("", "v1", "namespaces", "Namespace", namespaced=False)


def _tserver(index: int, *, release: bool) -> dict[str, Any]:
    doc: dict[str, Any] = copy.deepcopy(yaml.safe_load(EXAMPLE.read_text()))
    server = f"Bench{index}"
    doc["metadata"] = {"name": f"test-bench{index}"}
    doc["spec"]["server"] = server
    doc["spec"]["k8s"]["replicas"] = 1
    if not release:
        del doc["spec"]["release"]
    return doc


async def _wait_names(kube: Kube, res: Resource, namespace: str, names: set[str], timeout: float) -> float:
    """Seconds until a watch has seen every name (from now)."""
    t0 = time.monotonic()
    listing = await kube.list(res, namespace)
    seen = {o["metadata"]["name"] for o in listing["items"]} & names
    version = listing["metadata"]["resourceVersion"]
    async with asyncio.timeout(timeout):
        while seen != names:
            async for event in kube.watch(res, namespace, resource_version=version, timeout_seconds=60):
                obj = event.get("object") or {}
                version = obj.get("metadata", {}).get("resourceVersion", version)
                if event.get("type") in ("ADDED", "MODIFIED") and obj["metadata"]["name"] in names:
                    seen.add(obj["metadata"]["name"])
                    if seen == names:
                        break
    return time.monotonic() - t0


async def _latency(kube: Kube, namespace: str, samples: int) -> list[float]:
    """One unmeasured warm-up first (a fresh apiserver's watch caches of new CRDs may still be initializing)."""
    results = []
    for i in range(-1, samples):
        doc = _tserver(i if i >= 0 else 9999, release=True)
        name = doc["metadata"]["name"]
        listening = asyncio.Event()
        waiter = asyncio.create_task(_first_seen(kube, namespace, name, listening))
        await listening.wait()
        t0 = time.monotonic()
        await kube.create(TSERVER, namespace, doc)
        seen_at = await asyncio.wait_for(waiter, 30)
        if i >= 0:
            results.append(seen_at - t0)
    return results


async def _first_seen(kube: Kube, namespace: str, name: str, listening: asyncio.Event) -> float:
    listing = await kube.list(STATEFULSET, namespace)
    version = listing["metadata"]["resourceVersion"]
    listening.set()
    while True:
        async for event in kube.watch(STATEFULSET, namespace, resource_version=version, timeout_seconds=60):
            obj = event.get("object") or {}
            version = obj.get("metadata", {}).get("resourceVersion", version)
            if event.get("type") == "ADDED" and obj["metadata"]["name"] == name:
                return time.monotonic()


async def _converge(kube: Kube, namespace: str, count: int, timeout: float) -> tuple[float, float]:
    docs = [_tserver(10_000 + i, release=False) for i in range(count)]
    names = {d["metadata"]["name"] for d in docs}
    gate = asyncio.Semaphore(16)

    async def create(doc: dict[str, Any]) -> None:
        async with gate:
            await kube.create(TSERVER, namespace, doc)

    t0 = time.monotonic()
    await asyncio.gather(*(create(d) for d in docs))
    created = time.monotonic() - t0
    for res in (STATEFULSET, SERVICE, TENDPOINT):
        await _wait_names(kube, res, namespace, names, timeout)
    async with asyncio.timeout(timeout):
        while True:
            items = (await kube.list(TSERVER, namespace))["items"]
            done = {o["metadata"]["name"] for o in items if o.get("status")} & names
            if done == names:
                break
            await asyncio.sleep(0.2)
    return created, time.monotonic() - t0


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@contextlib.asynccontextmanager
async def bench_namespace(kubeconfig: str | None) -> AsyncIterator[tuple[Kube, str, str]]:
    """(kube, a fresh namespace with the CRDs installed, the kubeconfig): on the cluster of ``kubeconfig``, or on a
    control plane started for the run and stopped after it; the namespace is deleted at the end."""
    cluster = None
    if kubeconfig is None:
        from k8stars.testing.cluster import ClusterOptions, start_cluster

        cluster = await start_cluster(ClusterOptions(die_with_parent=True))
        kubeconfig = str(cluster.kubeconfig)
    try:
        async with await Kube.connect(kubeconfig) as kube:
            await install_crds(kube)
            namespace = f"bench-{uuid.uuid4().hex[:8]}"
            await kube.create(NS, None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
            try:
                yield kube, namespace, kubeconfig
            finally:
                await kube.delete(NS, None, namespace)
    finally:
        if cluster is not None:
            await cluster.stop()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    async with bench_namespace(args.kubeconfig) as (kube, namespace, _):
        for template in yaml.safe_load_all(TEMPLATES.read_text()):
            await kube.create(TTEMPLATE, namespace, template)
        operator = Operator(kube, namespace=namespace, workers=args.workers, resync=3600)
        task = asyncio.create_task(operator.run())
        try:
            await asyncio.wait_for(operator.ready.wait(), 30)
            latency = await _latency(kube, namespace, args.samples)
            created, converged = await _converge(kube, namespace, args.count, args.timeout)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    return {
        "create_to_statefulset_s": {
            "samples": len(latency),
            "p50": round(statistics.median(latency), 4),
            "p95": round(_pct(latency, 0.95), 4),
            "max": round(max(latency), 4),
        },
        "converge": {
            "tservers": args.count,
            "create_calls_s": round(created, 2),
            "converged_s": round(converged, 2),
            "per_second": round(args.count / converged, 1),
        },
        "workers": args.workers,
        "reconciles": operator.stats.reconciles,
        "writes": operator.stats.writes,
        "errors": operator.stats.errors,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--kubeconfig", default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    if args.json:
        print(json.dumps(result, indent=2))
        return
    lat, conv = result["create_to_statefulset_s"], result["converge"]
    print(f"create -> StatefulSet ({lat['samples']} samples): p50 {lat['p50'] * 1000:.0f} ms, "
          f"p95 {lat['p95'] * 1000:.0f} ms, max {lat['max'] * 1000:.0f} ms   (goal <= 1 s)")  # fmt: skip
    print(f"converge {conv['tservers']} TServers: {conv['converged_s']:.1f} s ({conv['per_second']}/s; creates took "
          f"{conv['create_calls_s']:.1f} s)   (goal: 1,000 <= 60 s)")  # fmt: skip
    print(f"reconciles {result['reconciles']}, writes {result['writes']}, errors {result['errors']}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
