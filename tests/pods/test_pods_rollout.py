"""Publishing a new release on real pods: a TarsGo server (2 replicas) built twice with `k8stars image build -n`
(recorded on its TImage as the build API records it), release 2 published with `k8stars image release` while a
client on the host calls the server by name through the registry without pause. The StatefulSet rolls one pod at a
time; each old pod's prestop tells the registry `deactivating` (the registry stops handing it out within a second),
waits TARS_PRESTOP_WAITTIME for clients to refresh (here 3 s, the client refreshing every 1 s), deregisters, and only
then is the server stopped; a new pod is handed out only once its agent reports it active. Not one call fails."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from framework import framework_on_host, images, until
from podkit import ECHO, SERVANT, build_recorded, go_files, listed, publish, tars_ns, tserver, wait_settled

from k8stars.kube.client import Kube
from k8stars.kube.resources import TSERVER
from k8stars.tars.protocol.queryf import QueryFProxy
from k8stars.tars.rpc import Communicator, ServantProxy
from k8stars.testing.cluster import Cluster

pytestmark = pytest.mark.realpods
__all__ = ["tars_ns"]

MAX_CALLS = 200_000  # bounds of the call loop, whatever happens
MAX_SECONDS = 300.0
PAUSE = 0.005  # between a caller's calls: a steady stream (a few hundred a second) that spans the whole rollout


@dataclass
class Calls:
    count: int = 0
    failures: list[str] = field(default_factory=list)
    stopped: bool = False  # by the test, not by the loop's bounds


async def _call_continuously(proxy: ServantProxy, stop: asyncio.Event, calls: Calls) -> None:
    deadline = time.monotonic() + MAX_SECONDS
    while not stop.is_set() and calls.count < MAX_CALLS and time.monotonic() < deadline:
        calls.count += 1
        text = str(calls.count)
        try:
            result = tuple(await proxy.tars_invoke("echo", (text,)))
            if result != (0, text):
                calls.failures.append(f"call {text}: answered {result!r}")
        except Exception as e:  # a failed call is what this test counts
            calls.failures.append(f"call {text}: {type(e).__name__}: {e}")
        await asyncio.sleep(PAUSE)
    calls.stopped = stop.is_set()


async def test_rolling_update_with_zero_failed_calls(tars_ns: tuple[Kube, str], k8s_real_cluster: Cluster,
                                                     tmp_path: Path) -> None:  # fmt: skip
    kube, namespace = tars_ns
    cluster, logs = k8s_real_cluster, tmp_path / "logs"
    built = await asyncio.to_thread(images, cluster, namespace, "node", "cpp")
    v1, v2 = [await asyncio.to_thread(build_recorded, cluster, namespace, tmp_path, go_files(tag), built["cpp"], "go",
                                      tag) for tag in ("v1", "v2")]  # fmt: skip
    async with framework_on_host(cluster, namespace, logs) as host:
        doc = tserver(v1, built["node"], host, replicas=2, env={"TARS_PRESTOP_WAITTIME": "3s"})
        await kube.create(TSERVER, namespace, doc)
        old = await wait_settled(kube, namespace, 2, v1["id"], logs)
        async with Communicator(locator=host.locator, refresh_endpoint_interval=1000) as comm:
            query = comm.string_to_proxy(QueryFProxy, host.locator)
            await until(lambda: listed(query, old), timeout=10, what="QueryF lists the release-1 pods")
            proxy = comm.string_to_proxy(ServantProxy, SERVANT, interface=ECHO)
            stop, calls = asyncio.Event(), Calls()
            callers = [asyncio.create_task(_call_continuously(proxy, stop, calls)) for _ in range(2)]
            start = time.monotonic()
            try:
                await asyncio.to_thread(publish, cluster, namespace, v2["id"])
                new = await wait_settled(kube, namespace, 2, v2["id"], logs, timeout=240)
                assert not {p["status"]["podIP"] for p in new} & {p["status"]["podIP"] for p in old}
                await until(lambda: listed(query, new), timeout=10, what="QueryF lists the release-2 pods only")
                rolled = time.monotonic() - start
                await asyncio.sleep(2)  # past the client's next refresh: calls go to the new pods only
            finally:
                stop.set()
                await asyncio.gather(*callers)
    print(f"rolling update of 2 pods in {rolled:.1f} s: {calls.count} calls, {len(calls.failures)} failed")
    assert calls.stopped and calls.count > 100, "the calls did not span the rollout"
    assert calls.failures == [], calls.failures[:20]
