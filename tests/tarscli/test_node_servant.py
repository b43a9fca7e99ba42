"""The node servant (``tars.tarsnode.NodeObj``, K8SFramework's ``Node``) served by `tarscli supervisor` on its pod
IP: AdminObj notify forwarded to the server, stop/start/restart changing the server's state, a config file fetched,
callers outside the trusted networks refused unless the registry lists them as an admin registry."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

from tarscli_helpers import Pod, RegistryProc, hello_start, wait_for

from k8stars.tars.protocol.adminreg import tarsErrCode
from k8stars.tars.protocol.node import NodeProxy
from k8stars.tars.protocol.tarsregistry import AdapterConf, onPrestopReq, onStartupReq, tarsregistryProxy
from k8stars.tars.rpc import Communicator

APP, SERVER = "TestApp", "HelloServer"


def pod_ip() -> str:
    """A loopback address of our own: other tests may run agents on port 19385 of theirs at the same time."""
    return f"127.{random.randint(100, 199)}.{random.randint(1, 254)}.{random.randint(2, 254)}"


async def node(comm: Communicator, ip: str) -> NodeProxy:
    return comm.string_to_proxy(NodeProxy, f"tars.tarsnode.NodeObj@tcp -h {ip} -p 19385").tars_options(timeout_ms=40000)


async def test_commands_reach_the_server(registry: RegistryProc, pods: Callable[..., Pod]) -> None:
    ip = pod_ip()
    pod = pods(f"{APP}.{SERVER}", ip, registry.locator, hello_start(), objects=("HelloObj",))
    pod.start()
    await pod.wait_state("active")
    first = pod.service_pid()
    async with Communicator() as comm:
        n = await node(comm, ip)
        ret, result = await n.notifyServer(APP, SERVER, "tars.viewstatus")
        assert ret == 0 and "TestApp.HelloServer" in result, result
        ret, result = await n.notifyServer(APP, "Other", "tars.viewstatus")
        assert ret == -1 and "server not exist" in result

        ret, result = await n.stopServer(APP, SERVER)
        assert ret == 0, result
        await pod.wait_state("inactive")
        assert "restart #" not in pod.log()  # a requested stop is no crash: the server stays stopped
        ret, result = await n.notifyServer(APP, SERVER, "tars.viewstatus")
        assert ret == -1 and "not running" in result

        ret, result = await n.startServer(APP, SERVER)
        assert ret == 0, result
        await pod.wait_state("active")
        second = pod.service_pid()
        assert second not in (None, first)

        ret, result = await n.restartServer(APP, SERVER)
        assert ret == 0, result
        await wait_for(lambda: pod.service_pid() not in (None, second), 20, "a new service process")
        await pod.wait_state("active")
        ret, _ = await n.startServer(APP, SERVER)
        assert ret == 0


async def test_only_trusted_callers(registry: RegistryProc, pods: Callable[..., Pod], tmp_path: Path) -> None:
    """With TARS_NODE_TRUSTED_PEERS=none the caller (127.0.0.1) is refused with 1006 and nothing happens, until the
    registry lists 127.0.0.1 as tars.tarsAdminRegistry.AdminRegObj."""
    ip = pod_ip()
    pod = pods(f"{APP}.{SERVER}", ip, registry.locator, hello_start(), objects=("HelloObj",))
    pod.start(TARS_NODE_TRUSTED_PEERS="none")
    await pod.wait_state("active")
    pid = pod.service_pid()
    async with Communicator() as comm:
        n = await node(comm, ip)
        for call in (n.stopServer(APP, SERVER), n.restartServer(APP, SERVER), n.addFile(APP, SERVER, "a.conf"),
                     n.notifyServer(APP, SERVER, "tars.viewstatus")):  # fmt: skip
            ret, result = await call
            assert ret == tarsErrCode.EM_TARS_INVALID_IP_ERR and "not a trusted caller" in result
        assert pod.service_pid() == pid and pod.state() == "active"

        reg = comm.string_to_proxy(tarsregistryProxy, f"tars.tarsregistry.Registry@tcp -h 127.0.0.1 -p {registry.port}")
        adapter = AdapterConf(servant="tars.tarsAdminRegistry.AdminRegObj", endpoint="tcp -h 127.0.0.1 -p 12000",
                              protocol="tars", maxConns=100, threadNum=1, queueCap=100, queueTimeout=1000)  # fmt: skip
        await reg.onStartup(onStartupReq(nodeName="127.0.0.1", application="tars", server="tarsAdminRegistry",
                                         adapters=[adapter], State="active"))  # fmt: skip
        try:
            ret, result = await n.notifyServer(APP, SERVER, "tars.viewstatus")
            assert ret == 0 and "TestApp.HelloServer" in result, result
        finally:
            await reg.onPrestop(onPrestopReq("127.0.0.1", "tars", "tarsAdminRegistry"))
