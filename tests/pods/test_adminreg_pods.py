"""Server commands on real pods: a TarsGo server (K8SFramework's packaging, our node image and agent), `k8stars
adminreg` on the host registered with the registry; AdminReg, called by name through the registry, reaches the
server's AdminObj through the node servant the pod's agent serves on the pod IP at 19385, and stop/start change the
pod's readiness. The agent trusts the caller only because the registry lists it as AdminRegObj."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from framework import framework_on_host, images, until
from podkit import APP, SERVER, build_recorded, go_files, pods, tars_ns, tserver, wait_settled

from k8stars.kube.client import Kube
from k8stars.kube.resources import TSERVER
from k8stars.tars.errors import TarsError
from k8stars.tars.protocol.adminreg import AdminRegProxy
from k8stars.tars.rpc import Communicator
from k8stars.testing.cluster import Cluster
from tests.conftest import free_port

pytestmark = pytest.mark.realpods
__all__ = ["tars_ns"]


async def test_adminreg_commands_reach_a_real_pod(tars_ns: tuple[Kube, str], k8s_real_cluster: Cluster,
                                                  tmp_path: Path) -> None:  # fmt: skip
    kube, namespace = tars_ns
    cluster, logs = k8s_real_cluster, tmp_path / "logs"
    assert cluster.real_node is not None
    built = await asyncio.to_thread(images, cluster, namespace, "node", "cpp")
    v1 = await asyncio.to_thread(build_recorded, cluster, namespace, tmp_path, go_files("v1"), built["cpp"], "go", "v1")
    async with framework_on_host(cluster, namespace, logs) as host:
        await kube.create(TSERVER, namespace, tserver(v1, built["node"], host))
        (pod,) = await wait_settled(kube, namespace, 1, v1["id"], logs)
        name, ip = pod["metadata"]["name"], pod["status"]["podIP"]
        port = free_port(host.registry_host)
        argv = [sys.executable, "-m", "k8stars", "adminreg", "--endpoint",
                f"tcp -h {host.registry_host} -p {port} -t 60000", "--locator", host.locator, "--node-name",
                host.registry_host, "--namespace", namespace, "--kubeconfig", str(cluster.kubeconfig)]  # fmt: skip
        with open(logs / "adminreg.log", "wb") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            async with Communicator(locator=host.locator) as comm:
                admin = comm.string_to_proxy(AdminRegProxy, "tars.tarsAdminRegistry.AdminRegObj")
                admin = admin.tars_options(timeout_ms=70000)

                async def up() -> bool:
                    assert proc.poll() is None, (logs / "adminreg.log").read_text()
                    try:
                        await admin.tars_options(timeout_ms=1000).tars_ping()
                    except TarsError:
                        return False
                    return True

                await until(up, timeout=30, what="AdminRegObj through the registry")
                ret, result = await admin.notifyServer(APP, SERVER, name, "tars.setloglevel INFO")
                assert ret == 0, result
                ret, result = await admin.notifyServer(APP, SERVER, ip, "tars.viewversion")
                assert ret == 0, result
                assert (await admin.pingNode(name)) == (True, "ping succ")

                ret, result = await admin.stopServer(APP, SERVER, name)
                assert ret == 0, result

                async def ready(want: bool) -> bool:
                    (p,) = await pods(kube, namespace)
                    conditions = (p.get("status") or {}).get("conditions") or []
                    return any(c.get("type") == "Ready" and (c.get("status") == "True") == want for c in conditions)

                await until(lambda: ready(False), timeout=60, what="the stopped server's pod not Ready")
                ret, result = await admin.startServer(APP, SERVER, "")  # every pod of the server
                assert ret == 0 and result.startswith(f"{name}: "), result
                await until(lambda: ready(True), timeout=90, what="the started server's pod Ready again")
        finally:
            proc.terminate()
            proc.wait(10)
