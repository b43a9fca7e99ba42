"""A real `k8stars registry --store kubernetes` process on a test control plane (tests and benchmarks start it the
same way), and the readiness condition such a registry sets on a TARS pod, set by hand."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from k8stars.kube.client import Kube
from k8stars.kube.resources import POD
from k8stars.testing.procs import free_port, stop_process, wait_port


@contextlib.asynccontextmanager
async def kube_registry(
    kubeconfig: str | Path, namespace: str, data_dir: Path, host: str = "127.0.0.1"
) -> AsyncIterator[tuple[subprocess.Popen[bytes], int]]:
    """(the process, its TARS port) once it listens; its output in data_dir/registry.log; stopped on the way out."""
    port = free_port(host)
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "k8stars", "registry", "--store", "kubernetes", "--kubeconfig", str(kubeconfig),
            "--namespace", namespace, "--port", str(port), "--http-port", "0", "--data-dir", str(data_dir),
            "--host", host]  # fmt: skip
    with open(data_dir / "registry.log", "wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        await asyncio.to_thread(wait_port, port, proc, host)
        yield proc, port
    finally:
        await asyncio.to_thread(stop_process, proc)


async def set_tars_active(kube: Kube, namespace: str, pod: str, status: str, reason: str = "Test") -> None:
    """The pod's `tars.io/active` condition (its readiness gate), as a registry sets it on the server's report."""
    condition = {"type": "tars.io/active", "status": status, "reason": reason}
    await kube.request(
        "PATCH", POD.path(namespace, pod, "status"), body={"status": {"conditions": [condition]}},
        content_type="application/strategic-merge-patch+json",
    )  # fmt: skip
