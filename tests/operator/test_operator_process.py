"""`k8stars operator` as a process: it reconciles, survives SIGKILL mid-work, and a restart converges."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator

import pytest
from operator_helpers import load_examples, until

from k8stars.kube.client import Kube, Obj
from k8stars.kube.resources import SERVICE, STATEFULSET, TENDPOINT, TSERVER
from k8stars.testing.cluster import Cluster


async def _spawn(cluster: Cluster, namespace: str) -> asyncio.subprocess.Process:
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig)}
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "k8stars", "operator", "--namespace", namespace, "--workers", "2",
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
