"""`k8stars operator` stops gracefully on SIGTERM (a pod's deletion) and SIGINT (Ctrl-C): exit status 0, no
traceback in its log, and the Lease given up at once for the next replica."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import pytest

from k8stars.kube.client import Kube, Resource
from k8stars.testing.cluster import Cluster

LEASE = Resource("coordination.k8s.io", "v1", "leases", "Lease")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_signal_stops_the_operator_gracefully(
    k8s_cluster: Cluster, kube: Kube, namespace: str, sig: signal.Signals
) -> None:
    env = {**os.environ, "KUBECONFIG": str(k8s_cluster.kubeconfig)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "k8stars", "operator", "--namespace", namespace, "--workers", "2", "--no-install-crds",
        "--leader-elect", "--leader-election-namespace", namespace, "--lease-duration", "30",
        env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stderr is not None
    log: list[bytes] = []
    try:
        async with asyncio.timeout(30):
            while not any(b"caches synced" in line for line in log):  # leading and reconciling
                line = await proc.stderr.readline()
                assert line, b"".join(log).decode()
                log.append(line)
        lease = await kube.get(LEASE, namespace, "k8stars-operator")
        assert lease is not None and lease["spec"]["holderIdentity"].endswith(f"-{proc.pid}")

        proc.send_signal(sig)
        _, rest = await asyncio.wait_for(proc.communicate(), 20)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    text = (b"".join(log) + rest).decode()
    assert proc.returncode == 0, text
    assert f"{sig.name}: stopping" in text
    for noise in ("Traceback", "ERROR", "KeyboardInterrupt", "CancelledError", "Task was destroyed", "Unclosed"):
        assert noise not in text, text
    lease = await kube.get(LEASE, namespace, "k8stars-operator")
    assert lease is not None and not lease["spec"].get("holderIdentity"), lease
