"""`k8stars operator` as a process: it reconciles, survives SIGKILL mid-work, and a restart converges."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest
from operator_helpers import load_examples, until

from k8stars.kube.client import Kube, Obj, Resource
from k8stars.kube.resources import SERVICE, STATEFULSET, TENDPOINT, TSERVER
from k8stars.testing.cluster import Cluster


async def _spawn(cluster: Cluster, namespace: str, *args: str) -> asyncio.subprocess.Process:
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig)}
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "k8stars", "operator", "--namespace", namespace, "--workers", "2", *args,
        env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def _kill(proc: asyncio.subprocess.Process) -> bytes:
    if proc.returncode is None:
        proc.send_signal(signal.SIGKILL)
    _, err = await asyncio.wait_for(proc.communicate(), 10)
    return err or b""


async def _synced(proc: asyncio.subprocess.Process) -> None:
    """Read the operator's log until its caches are synced (it reconciles everything right after)."""
    assert proc.stderr is not None
    lines: list[bytes] = []
    async with asyncio.timeout(20):
        while True:
            line = await proc.stderr.readline()
            assert line, b"".join(lines)
            lines.append(line)
            if b"caches synced" in line:
                return


@pytest.fixture
async def processes() -> AsyncIterator[list[asyncio.subprocess.Process]]:
    started: list[asyncio.subprocess.Process] = []
    try:
        yield started
    finally:
        for proc in started:
            await _kill(proc)


async def test_operator_process_killed_and_restarted_converges(
    k8s_cluster: Cluster, kube: Kube, namespace: str, processes: list[asyncio.subprocess.Process]
) -> None:
    docs = [load_examples("tserver.yaml")[0], load_examples("tserver-normal.yaml")[0]]
    processes.append(await _spawn(k8s_cluster, namespace))
    for doc in docs:
        await kube.create(TSERVER, namespace, doc)
    # Kill it as soon as the first StatefulSet appears: it is in the middle of its work.
    await until(lambda: kube.get(STATEFULSET, namespace, "test-helloserver"), timeout=30, what="first StatefulSet")
    await _kill(processes[0])

    processes.append(await _spawn(k8s_cluster, namespace))

    async def converged() -> dict[str, str] | None:
        versions = {}
        for name in ("test-helloserver", "test-webgateway"):
            for res in (STATEFULSET, SERVICE, TENDPOINT):
                obj: Obj | None = await kube.get(res, namespace, name)
                if obj is None:
                    return None
                versions[f"{res.kind}/{name}"] = obj["metadata"]["resourceVersion"]
            ts = await kube.get(TSERVER, namespace, name)
            if not (ts or {}).get("status"):
                return None
        return versions

    await until(converged, timeout=30, what="both servers reconciled after the restart")
    await asyncio.sleep(1.0)  # let the pods' status changes settle
    settled = await converged()

    # A third start changes nothing: no write, so no resourceVersion moves.
    await _kill(processes[1])
    processes.append(await _spawn(k8s_cluster, namespace))
    await _synced(processes[2])
    await asyncio.sleep(1.0)  # its first reconciles of both servers
    assert processes[2].returncode is None
    assert await converged() == settled


async def test_leader_election_between_two_replicas(
    k8s_cluster: Cluster, kube: Kube, namespace: str, processes: list[asyncio.subprocess.Process]
) -> None:
    """Two replicas with --leader-elect: one reconciles; SIGKILL it and the other takes over; SIGTERM gives the
    Lease up."""
    lease = Resource("coordination.k8s.io", "v1", "leases", "Lease")
    args = ["--leader-elect", "--leader-election-namespace", namespace, "--lease-duration", "2"]
    for _ in range(2):
        processes.append(await _spawn(k8s_cluster, namespace, *args))

    async def holder() -> str | None:
        obj = await kube.get(lease, namespace, "k8stars-operator")
        name = str(((obj or {}).get("spec") or {}).get("holderIdentity") or "")
        return name or None

    first = await until(holder, timeout=30, what="a leader")
    (leader,) = [p for p in processes if first.endswith(f"-{p.pid}")]
    (other,) = [p for p in processes if p is not leader]
    docs = [load_examples("tserver.yaml")[0], load_examples("tserver-normal.yaml")[0]]
    await kube.create(TSERVER, namespace, docs[0])
    await until(lambda: kube.get(STATEFULSET, namespace, "test-helloserver"), timeout=30, what="StatefulSet")

    await _kill(leader)
    second = await until(lambda: _other_holder(holder, first), timeout=30, what="the other replica leading")
    assert second.endswith(f"-{other.pid}")
    await kube.create(TSERVER, namespace, docs[1])
    await until(lambda: kube.get(STATEFULSET, namespace, "test-webgateway"), timeout=30, what="StatefulSet by #2")

    other.send_signal(signal.SIGTERM)  # a clean shutdown hands the lease over at once
    await asyncio.wait_for(other.wait(), 15)
    obj = await kube.get(lease, namespace, "k8stars-operator")
    assert obj is not None and not obj["spec"].get("holderIdentity")


async def _other_holder(holder: Any, first: str) -> str | None:
    name: str | None = await holder()
    return name if name and name != first else None


async def test_health_and_metrics_endpoints(k8s_cluster: Cluster, kube: Kube, namespace: str) -> None:
    import aiohttp
    from operator_helpers import free_port

    from k8stars.operator import Operator, run_operator

    port = free_port()
    ready: asyncio.Future[Operator] = asyncio.get_running_loop().create_future()

    async def on_ready(op: Operator) -> None:
        ready.set_result(op)

    task = asyncio.create_task(
        run_operator(
            str(k8s_cluster.kubeconfig), namespace=namespace, install_crds=False, metrics_port=port, on_ready=on_ready
        )
    )
    try:
        await asyncio.wait_for(asyncio.shield(ready), 20)
        await kube.create(TSERVER, namespace, load_examples("tserver.yaml")[0])
        await until(lambda: kube.get(STATEFULSET, namespace, "test-helloserver"), what="StatefulSet")
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/readyz") as r:
                assert r.status == 200
            async with http.get(f"http://127.0.0.1:{port}/metrics") as r:
                text = await r.text()
        assert "k8stars_operator_leader 1.0" in text
        assert 'k8stars_operator_writes_total{kind="statefulset"} 1.0' in text
        assert "k8stars_operator_reconciles_total" in text and 'resource="tservers"' in text
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_operator_process_with_webhooks_and_conversion(
    k8s_cluster: Cluster, kube: Kube, namespace: str, processes: list[asyncio.subprocess.Process]
) -> None:
    """`k8stars operator --webhook-*`: serves the webhooks, registers them and the TServer v1beta2 conversion; the
    configurations are removed again afterwards (they are cluster-wide)."""
    from operator_helpers import free_port

    from k8stars.kube import crds
    from k8stars.kube.resources import CRD, MUTATING_WEBHOOK, TTEMPLATE, VALIDATING_WEBHOOK

    tls = k8s_cluster.webhook_tls("k8stars-operator-process")
    port = free_port()
    args = ["--webhook-port", str(port), "--webhook-cert", str(tls.cert_file), "--webhook-key", str(tls.key_file),
            "--webhook-url", f"https://127.0.0.1:{port}"]  # fmt: skip
    ca = tls.cert_file.with_name("k8stars-operator-process-ca.pem")
    ca.write_bytes(tls.ca_pem)
    args += ["--webhook-ca", str(ca)]
    processes.append(await _spawn(k8s_cluster, namespace, *args))
    try:
        await _synced(processes[0])
        for doc in load_examples("ttemplate.yaml"):
            await kube.create(TTEMPLATE, namespace, doc)
        (doc,) = load_examples("tserver.yaml")
        doc["apiVersion"] = "k8s.tars.io/v1beta2"
        doc["spec"]["k8s"]["readinessGate"] = "example.com/warm"
        del doc["metadata"]["labels"]
        v2 = Resource("k8s.tars.io", "v1beta2", "tservers", "TServer")
        await kube.create(v2, namespace, doc)
        ts = await kube.get(TSERVER, namespace, "test-helloserver")
        assert ts is not None
        assert ts["metadata"]["labels"]["tars.io/SubType"] == "tars"  # mutated
        # converted; K8SFramework's v1beta2 webhook makes a TARS server's gate tars.io/active
        assert ts["spec"]["k8s"]["readinessGates"] == ["tars.io/active"]
        bad = load_examples("tserver.yaml")[0]
        bad["metadata"]["name"] = "wrong"
        with pytest.raises(Exception, match=r"metadata\.name must be lower"):
            await kube.create(TSERVER, namespace, bad)
        await until(lambda: kube.get(STATEFULSET, namespace, "test-helloserver"), what="StatefulSet")
    finally:
        await _kill(processes[0])
        await kube.delete(MUTATING_WEBHOOK, None, "k8stars-mutating")
        await kube.delete(VALIDATING_WEBHOOK, None, "k8stars-validating")
        async with await Kube.connect(str(k8s_cluster.kubeconfig)) as as_operator:  # its field manager
            (plain,) = [c for c in crds.all_crds() if c["spec"]["names"]["kind"] == "TServer"]
            await kube.delete(TSERVER, namespace, "test-helloserver")
            await as_operator.apply(CRD, None, plain)
