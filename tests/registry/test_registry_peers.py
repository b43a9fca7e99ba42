"""Real TARS peers use ``k8stars registry`` as their locator: @tars/rpc (Node) and TarsGo clients resolve echo
servants registered through the K8STARS Registry interface and call them; once a servant's onPrestop is in, a
client's next lookup (a new client process does one at its first call) no longer gets it. Our own long-running client
shows the same at its periodic refresh."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from k8stars.tars.protocol.tarsregistry import AdapterConf, onPrestopReq, onStartupReq, tarsregistryProxy
from k8stars.tars.rpc import Communicator, ServantProxy
from k8stars.testing import peers
from tests.registry.conftest import StoreSpec, free_port
from tests.registry.test_e2e import RegistryProcess, registry_argv

CLIENTS: tuple[peers.Peer, ...] = ("node", "go")
ECHO_IDL = Path(peers.GO_SRC) / "echo.tars"


@pytest.fixture(scope="module", autouse=True)
def built_peers() -> None:
    peers.node_dir()  # npm ci / go build once, cached under ~/.cache/k8stars/peers
    peers.go_binary()


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[RegistryProcess]:
    port = free_port()
    spec = StoreSpec("sqlite", tmp_path / "data")
    proc = RegistryProcess(registry_argv(spec, port, "--http-port", "0"), port, 0, tmp_path / "registry.log")
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
async def echo_servers(tmp_path: Path) -> AsyncIterator[dict[str, int]]:
    """A TarsGo and a @tars/rpc echo server: servant name -> port."""
    servants: dict[str, peers.Peer] = {"Test.GoEcho.EchoObj": "go", "Test.NodeEcho.EchoObj": "node"}
    procs, ports = [], {}
    try:
        for servant, peer in servants.items():
            port = free_port()
            argv = [*peers.peer_command(peer, "echo-server"), "--endpoint", f"tcp -h 127.0.0.1 -p {port} -t 60000",
                    "--servant", servant]  # fmt: skip
            log = open(tmp_path / f"{peer}-server.log", "wb")
            procs.append((await asyncio.create_subprocess_exec(*argv, stdout=log, stderr=log), log))
            ports[servant] = port
        for port in ports.values():
            await _wait_listening(port)
        yield ports
    finally:
        for proc, log in procs:
            if proc.returncode is None:
                proc.terminate()
                await asyncio.wait_for(proc.wait(), 20)
            log.close()


async def _wait_listening(port: int, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            _, w = await asyncio.open_connection("127.0.0.1", port)
            w.close()
            return
        except OSError:
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.1)


async def echo_client(peer: peers.Peer, servant: str, locator: str, text: str) -> subprocess.CompletedProcess[str]:
    argv = [
        *peers.peer_command(peer, "echo-client"),
        servant,
        "--locator",
        locator,
        "--timeout",
        "2000",
        "--once",
        text,
    ]
    proc = await asyncio.create_subprocess_exec(*argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return subprocess.CompletedProcess(argv, proc.returncode or 0, out.decode(), err.decode())


def _startup(servant: str, port: int) -> onStartupReq:
    app, server, _ = servant.split(".")
    return onStartupReq(
        "127.0.0.1", app, server, adapters=[AdapterConf(servant, f"tcp -h 127.0.0.1 -p {port} -t 60000")]
    )


async def test_node_and_go_clients_resolve_through_the_registry(
    registry: RegistryProcess, echo_servers: dict[str, int]
) -> None:
    async with Communicator(locator=registry.locator) as comm:
        registrar = comm.string_to_proxy(tarsregistryProxy, "tars.tarsregistry.Registry")
        for servant, port in echo_servers.items():
            await registrar.onStartup(_startup(servant, port))
        calls = [(client, servant) for client in CLIENTS for servant in echo_servers]
        results = await asyncio.gather(*(echo_client(c, s, registry.locator, f"{c}->{s}") for c, s in calls))
        for (client, servant), res in zip(calls, results, strict=True):
            assert res.returncode == 0, (client, servant, res.stderr)
            assert json.loads(res.stdout) == {"ret": 0, "r": f"{client}->{servant}"}

        for servant in echo_servers:
            app, server, _ = servant.split(".")
            await registrar.onPrestop(onPrestopReq("127.0.0.1", app, server))
        results = await asyncio.gather(*(echo_client(c, s, registry.locator, "late") for c, s in calls))
        for (client, servant), res in zip(calls, results, strict=True):
            # the servers still run: only the registry's answer keeps the clients away
            assert res.returncode != 0 and res.stdout.strip() == "", (client, servant, res.stdout)
            assert "no adapter" in res.stderr, (client, res.stderr)  # both: the registry gave no endpoint


async def test_a_long_running_client_drops_a_prestopped_endpoint_at_its_next_refresh(
    registry: RegistryProcess, echo_servers: dict[str, int]
) -> None:
    from k8stars.tars.rpc.dynamic import find_interface

    go_port, node_port = echo_servers["Test.GoEcho.EchoObj"], echo_servers["Test.NodeEcho.EchoObj"]
    servant = "Test.Echo.EchoObj"  # both servers under one name, as two pods of one server
    async with Communicator(locator=registry.locator, refresh_endpoint_interval=300) as comm:
        registrar = comm.string_to_proxy(tarsregistryProxy, "tars.tarsregistry.Registry")
        for node, port in (("127.0.0.1", go_port), ("127.0.0.2", node_port)):
            adapter = AdapterConf(servant, f"tcp -h 127.0.0.1 -p {port} -t 60000")
            await registrar.onStartup(onStartupReq(node, "Test", "Echo", adapters=[adapter]))
        iface = find_interface(servant, [ECHO_IDL])
        echo = comm.string_to_proxy(ServantProxy, servant, interface=iface)
        assert tuple(await echo.tars_invoke("echo", ("a",))) == (0, "a")
        assert {e.port for e in await echo.tars_endpoints()} == {go_port, node_port}
        await registrar.onPrestop(onPrestopReq("127.0.0.2", "Test", "Echo"))
        loop = asyncio.get_running_loop()
        start = loop.time()
        while {e.port for e in await echo.tars_endpoints()} != {go_port}:
            assert loop.time() - start < 10.0, "the endpoint was not dropped (the periodic refresh is 300 s away)"
            assert tuple(await echo.tars_invoke("echo", ("b",))) == (0, "b")
            await asyncio.sleep(0.05)
        for i in range(10):  # every call now goes to the remaining server
            assert tuple(await echo.tars_invoke("echo", (str(i),))) == (0, str(i))
