"""Registry on Kubernetes: how soon lookups follow a pod's readiness (docs/registry.md, `--store kubernetes`).

    python -m bench.registry_kube [--samples 20] [--kubeconfig FILE] [--json]

Starts a control plane of its own (unless --kubeconfig names a running one), runs the operator in this process on a
fresh namespace with one TServer (the example of examples/k8s/tserver.yaml, 1 replica: a kwok pod), and a real
`k8stars registry --store kubernetes` process. Then, `--samples` times each way, the pod's `tars.io/active` condition
is set (as a registry sets it on a TARS server's keepAlive) and `findObjectById4Any` is polled every 5 ms: the time
from the status patch returning to the lookup answering the pod active, then inactive again.

Goal (the registry's promise in docs/registry.md): a pod that becomes Ready or loses readiness reaches the lookups
within 1 s (its watch event plus at most one 250 ms poll).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped,unused-ignore]

from bench.operator import EXAMPLE, TEMPLATES, _pct, bench_namespace
from k8stars.kube.client import Kube
from k8stars.kube.meta import NODE_LABEL_PREFIX
from k8stars.kube.resources import NODE, POD, TSERVER, TTEMPLATE
from k8stars.operator import Operator
from k8stars.tars.protocol.queryf import QueryFProxy
from k8stars.tars.rpc import Communicator
from k8stars.testing.cluster import eventually
from k8stars.testing.kuberegistry import kube_registry, set_tars_active

SERVANT = "Test.HelloServer.HelloObj"
POLL = 0.005


@contextlib.asynccontextmanager
async def _registry(kubeconfig: str, namespace: str, data_dir: Path) -> AsyncIterator[QueryFProxy]:
    async with kube_registry(kubeconfig, namespace, data_dir) as (_, port), Communicator() as comm:
        query = comm.string_to_proxy(QueryFProxy, f"tars.tarsregistry.QueryObj@tcp -h 127.0.0.1 -p {port}")

        async def answering() -> bool:
            return bool(await query.findObjectById("tars.tarsregistry.QueryObj"))

        await eventually(answering, timeout=30, what="the registry answering")
        yield query


async def _follow(
    kube: Kube, namespace: str, query: QueryFProxy, pod: str, ip: str, samples: int
) -> dict[str, list[float]]:
    async def listed() -> bool:  # the registry has seen the pod: no sample includes its first sync
        res = await query.findObjectById4Any(SERVANT)
        return ip in {e.host for e in [*res.activeEp, *res.inactiveEp]}

    await eventually(listed, timeout=30, what="the pod in the lookups")
    took: dict[str, list[float]] = {"ready": [], "not_ready": []}
    for _ in range(samples):
        for status, key in (("True", "ready"), ("False", "not_ready")):
            await set_tars_active(kube, namespace, pod, status, "Bench")
            t0 = time.monotonic()
            while True:
                res = await query.findObjectById4Any(SERVANT)
                if ({e.host for e in res.activeEp} == {ip}) == (status == "True"):
                    break
                if time.monotonic() - t0 > 30:
                    raise TimeoutError(f"lookup did not follow {pod} to {key} within 30 s")
                await asyncio.sleep(POLL)
            took[key].append(time.monotonic() - t0)
    return took


async def run(args: argparse.Namespace) -> dict[str, Any]:
    async with bench_namespace(args.kubeconfig) as (kube, namespace, kubeconfig):
        for node in (await kube.list(NODE, None))["items"]:  # the nodes serve this namespace's framework
            await kube.merge_patch(NODE, None, node["metadata"]["name"],
                                   {"metadata": {"labels": {f"{NODE_LABEL_PREFIX}{namespace}": ""}}})  # fmt: skip
        for template in yaml.safe_load_all(TEMPLATES.read_text()):
            await kube.create(TTEMPLATE, namespace, template)
        doc = yaml.safe_load(EXAMPLE.read_text())
        doc["spec"]["k8s"]["replicas"] = 1
        operator = Operator(kube, namespace=namespace, resync=3600)
        task = asyncio.create_task(operator.run())
        try:
            await kube.create(TSERVER, namespace, doc)

            async def running_pod() -> tuple[str, str] | None:
                pods = (await kube.list(POD, namespace, selector="tars.io/ServerName=HelloServer"))["items"]
                ok = [p for p in pods if p["status"].get("phase") == "Running" and p["status"].get("podIP")]
                return (ok[0]["metadata"]["name"], ok[0]["status"]["podIP"]) if ok else None

            pod, ip = await eventually(running_pod, timeout=60, what="a running pod")
            with tempfile.TemporaryDirectory(prefix="bench-registry-kube-") as tmp:
                async with _registry(kubeconfig, namespace, Path(tmp)) as query:
                    took = await _follow(kube, namespace, query, pod, ip, args.samples)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    return {
        key: {"samples": len(v), "p50": round(statistics.median(v), 4), "p95": round(_pct(v, 0.95), 4),
              "max": round(max(v), 4)}
        for key, v in took.items()
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--kubeconfig", default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    if args.json:
        print(json.dumps(result, indent=2))
        return
    for key, what in (("ready", "Ready -> active in lookups"), ("not_ready", "not Ready -> inactive in lookups")):
        r = result[key]
        print(f"{what} ({r['samples']} samples): p50 {r['p50'] * 1000:.0f} ms, p95 {r['p95'] * 1000:.0f} ms, "
              f"max {r['max'] * 1000:.0f} ms   (goal <= 1 s)")  # fmt: skip
    sys.stdout.flush()


if __name__ == "__main__":
    main()
