"""What the admin registry's tests share: a `k8stars adminreg` process registered with a registry, and pods of the
real control plane (kwok gives them 127.64.x IPs) whose agents — real `tarscli supervisor` processes on this host,
with POD_IP the pod's IP — stand in for the pods' containers. Every process is ours, stopped by its PID."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from k8stars.kube.client import Kube, Obj
from k8stars.kube.meta import SERVER_APP, SERVER_NAME
from k8stars.kube.resources import POD
from k8stars.tars.errors import TarsError
from k8stars.tars.protocol.adminreg import AdminRegProxy
from k8stars.tars.rpc import Communicator
from k8stars.testing.cluster import Cluster
from tests.conftest import free_port
from tests.tarscli.tarscli_helpers import ROOT, Pod, RegistryProc, hello_start, stop_pid, wait_for

APP, SERVER = "TestApp", "HelloServer"
ADMINREG_OBJ = "tars.tarsAdminRegistry.AdminRegObj"

__all__ = ["ADMINREG_OBJ", "APP", "SERVER", "Pod", "RegistryProc", "hello_start", "wait_for"]


async def kwok_pods(kube: Kube, namespace: str, count: int, app: str = APP, server: str = SERVER) -> list[Obj]:
    """``count`` running pods of app.server (as the operator labels them), with their IPs."""
    labels = {SERVER_APP: app, SERVER_NAME: server}
    prefix = f"{app.lower()}-{server.lower()}"
    for i in range(count):
        body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"{prefix}-{i}", "labels": labels},
                "spec": {"containers": [{"name": "server", "image": "example.invalid/hello:1"}]}}  # fmt: skip
        await kube.create(POD, namespace, body)

    async def running() -> list[Obj] | None:
        items: list[Obj] = (await kube.list(POD, namespace, selector=f"{SERVER_NAME}={server}"))["items"]
        ok = len(items) == count and all((p.get("status") or {}).get("podIP") for p in items)
        return sorted(items, key=lambda p: str(p["metadata"]["name"])) if ok else None

    found: list[Obj] = []

    async def ready() -> bool:
        nonlocal found
        found = await running() or []
        return bool(found)

    await wait_for(ready, 60, f"{count} pods with IPs")
    return found


def agents(pods: Callable[..., Pod], registry: RegistryProc, items: list[Obj], **env: str) -> list[Pod]:
    """A supervisor per pod, on the pod's IP, running the hello example."""
    made = []
    for item in items:
        pod = pods(f"{APP}.{SERVER}", item["status"]["podIP"], registry.locator, hello_start(), objects=("HelloObj",))
        pod.start(**env)
        made.append(pod)
    return made


@asynccontextmanager
async def adminreg(tmp: Path, registry: RegistryProc, cluster: Cluster | None, namespace: str = "",
                   extra: tuple[str, ...] = ()) -> AsyncIterator[AdminRegProxy]:  # fmt: skip
    """`k8stars adminreg` registered with ``registry``; yields AdminRegObj found by name through the registry."""
    port = free_port()
    argv = [sys.executable, "-m", "k8stars", "adminreg", "--endpoint", f"tcp -h 127.0.0.1 -p {port} -t 60000",
            "--locator", registry.locator, "--node-name", "127.0.0.1"]  # fmt: skip
    if cluster is not None:
        argv += ["--namespace", namespace, "--kubeconfig", str(cluster.kubeconfig)]
    argv += extra
    log = open(tmp / "adminreg.log", "wb")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=ROOT)
    log.close()
    try:
        async with Communicator(locator=registry.locator) as comm:
            proxy = comm.string_to_proxy(AdminRegProxy, ADMINREG_OBJ).tars_options(timeout_ms=70000)

            async def up() -> bool:
                assert proc.poll() is None, (tmp / "adminreg.log").read_text()
                try:
                    await proxy.tars_options(timeout_ms=1000).tars_ping()
                except TarsError:
                    return False
                return True

            await wait_for(up, 30, "AdminRegObj by name through the registry")
            yield proxy
    finally:
        stop_pid(proc)
