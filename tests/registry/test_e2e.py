"""``k8stars registry`` as a process, through its public faces only: TARS RPC with it as the locator, ``k8stars
call``, HTTP, signals and exit codes; against SQLite and MariaDB."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import aiohttp
import pytest

from examples.hello.gen.hello import HelloProxy
from examples.hello.server import SERVANT, HelloImp
from k8stars.tars.errors import TarsRpcError
from k8stars.tars.protocol.queryf import QueryFProxy
from k8stars.tars.protocol.tarsregistry import AdapterConf, keepAliveReq, onPrestopReq, onStartupReq, tarsregistryProxy
from k8stars.tars.rpc import Communicator, Server
from tests.registry.conftest import StoreSpec, eventually, free_port

ROOT = Path(__file__).resolve().parents[2]
HELLO_IDL = ROOT / "examples" / "hello" / "Hello.tars"


class RegistryProcess:
    """One ``k8stars registry`` subprocess; ``restart()`` stops it (SIGTERM) and starts it again, same options."""

    def __init__(
        self,
        argv: list[str],
        port: int,
        http_port: int,
        log: Path,
        host: str = "127.0.0.1",
        env: dict[str, str] | None = None,
    ) -> None:
        self.argv, self.port, self.http_port, self.log, self.host = argv, port, http_port, log, host
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.locator = f"tars.tarsregistry.QueryObj@tcp -h {host} -p {port}"

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                self.argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"registry exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            if "registry 0." in self.log.read_text() and _listening(self.port, self.host):
                return
            time.sleep(0.05)
        self.stop()  # never leave it behind
        raise AssertionError(f"registry did not start:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        return int(self.proc.returncode)

    def restart(self) -> None:
        assert self.stop() == 0
        self.log.write_text("")
        self.start()


def _listening(port: int, host: str = "127.0.0.1") -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
        return True
    return False


def registry_argv(store: StoreSpec, port: int, *extra: str, host: str = "127.0.0.1") -> list[str]:
    return [sys.executable, "-m", "k8stars", "registry", "--host", host, "--port", str(port), *store.options(),
            *extra]  # fmt: skip


@pytest.fixture
def registry(store_spec: StoreSpec, tmp_path: Path) -> Iterator[Callable[..., RegistryProcess]]:
    started: list[RegistryProcess] = []

    def start(*extra: str) -> RegistryProcess:
        port, http_port = free_port(), free_port()
        argv = registry_argv(store_spec, port, "--http-port", str(http_port), *extra)
        proc = RegistryProcess(argv, port, http_port, tmp_path / f"registry-{len(started)}.log")
        proc.start()
        started.append(proc)
        return proc

    yield start
    for p in started:
        p.stop()


@pytest.fixture
async def hello() -> AsyncIterator[int]:
    """A Python TARS server with TestApp.HelloServer.HelloObj on a free port."""
    server = Server(grace_seconds=1)
    server.add_servant(HelloImp(), SERVANT, "tcp -h 127.0.0.1 -p 0 -t 60000")
    await server.start()
    yield server.adapters[SERVANT + "Adapter"].endpoint.port
    await server.stop(0)


async def k8stars_call(*args: str) -> subprocess.CompletedProcess[str]:
    """``k8stars call`` without blocking the loop (servers of this test run on it)."""
    argv = [sys.executable, "-m", "k8stars", "call", *args]
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return subprocess.CompletedProcess(argv, proc.returncode or 0, out.decode(), err.decode())


def hello_startup(port: int, state: str = "active") -> onStartupReq:
    adapter = AdapterConf(SERVANT, f"tcp -h 127.0.0.1 -p {port} -t 60000", "tars", 1000, 1, 10000, 60000)
    return onStartupReq("127.0.0.1", "TestApp", "HelloServer", adapters=[adapter], State=state)


async def test_register_resolve_call_restart(registry: Callable[..., RegistryProcess], hello: int) -> None:
    reg = registry()
    async with Communicator(locator=reg.locator, refresh_endpoint_interval=100) as comm:
        # the Registry servant is found by name through the registry itself
        registrar = comm.string_to_proxy(tarsregistryProxy, "tars.tarsregistry.Registry")
        await registrar.onStartup(hello_startup(hello, state="activating"))
        proxy = comm.string_to_proxy(HelloProxy, SERVANT)
        with pytest.raises(TarsRpcError):  # activating: no active endpoint yet
            await proxy.tars_options(timeout_ms=500).sayHello("early")
        await registrar.keepAlive(keepAliveReq("127.0.0.1", "active", "TestApp", "HelloServer"))
    async with Communicator(locator=reg.locator) as comm:
        assert await comm.string_to_proxy(HelloProxy, SERVANT).sayHello("world") == "hello world"

    # k8stars call, by name through the registry as locator
    out = await k8stars_call(
        "--locator", reg.locator, "tars.tarsregistry.QueryObj", "findObjectById", json.dumps({"id": SERVANT})
    )
    assert out.returncode == 0, out.stderr
    (ep,) = json.loads(out.stdout)["ret"]
    assert (ep["host"], ep["port"], ep["timeout"], ep["istcp"]) == ("127.0.0.1", hello, 60000, 1)
    out = await k8stars_call("--idl", str(HELLO_IDL), "--locator", reg.locator, SERVANT, "sayHello", '{"name": "cli"}')
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"ret": "hello cli"}

    reg.restart()  # nothing is lost
    out = await k8stars_call(
        "--locator", reg.locator, "tars.tarsregistry.QueryObj", "findObjectById4Any", json.dumps({"id": SERVANT})
    )
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert [(e["host"], e["port"]) for e in doc["activeEp"]] == [("127.0.0.1", hello)] and doc["inactiveEp"] == []
    async with Communicator(locator=reg.locator) as comm:
        assert await comm.string_to_proxy(HelloProxy, SERVANT).sayHello("again") == "hello again"
        await comm.string_to_proxy(tarsregistryProxy, "tars.tarsregistry.Registry").onPrestop(
            onPrestopReq("127.0.0.1", "TestApp", "HelloServer")
        )
    out = await k8stars_call(
        "--locator", reg.locator, "tars.tarsregistry.QueryObj", "findObjectById", json.dumps({"id": SERVANT})
    )
    assert json.loads(out.stdout) == {"ret": []}


async def test_bad_input_over_the_wire(registry: Callable[..., RegistryProcess]) -> None:
    reg = registry()
    target = f"tars.tarsregistry.Registry@tcp -h 127.0.0.1 -p {reg.port}"
    out = await k8stars_call(target, "keepAlive", '{"req": {"nodeName": "10.0.0.1", "state": "sleepy"}}')
    assert out.returncode == 1
    assert "1001" in out.stderr and "unknown state 'sleepy'" in out.stderr
    startup = {"nodeName": "10.0.0.1", "application": "A", "server": "B",
               "adapters": [{"servant": "A.B.Obj", "endpoint": "tcp -h 10.0.0.1 -p nope"}]}  # fmt: skip
    out = await k8stars_call(target, "onStartup", json.dumps({"req": startup}))
    assert out.returncode == 1 and "A.B.Obj" in out.stderr and "-p 'nope' is not a port" in out.stderr
    out = await k8stars_call(
        "--locator", reg.locator, "tars.tarsregistry.QueryObj", "findObjectById4Any", '{"id": "A.B.Obj"}'
    )
    assert json.loads(out.stdout) == {"ret": 0, "activeEp": [], "inactiveEp": []}


async def test_admin_clean_and_http(registry: Callable[..., RegistryProcess]) -> None:
    admin_port = free_port()
    reg = registry("--registry-port", str(free_port()), "--admin-endpoint", f"tcp -h 127.0.0.1 -p {admin_port}")
    registry_port = int(reg.argv[reg.argv.index("--registry-port") + 1])
    out = await k8stars_call(f"AdminObj@tcp -h 127.0.0.1 -p {admin_port}", "notify", '{"command": "clean"}')
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"ret": "\n\nDry run.\n"}
    # AdminObj is on neither public port (issue 16, item 2: tests/registry/test_hardening_admin.py)
    for port in (reg.port, registry_port):
        out = await k8stars_call(f"AdminObj@tcp -h 127.0.0.1 -p {port}", "notify", '{"command": "clean"}')
        assert out.returncode == 1 and "no servant AdminObj" in out.stderr
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{reg.http_port}/metrics") as rsp:
            assert rsp.status == 200 and "k8stars_registry_servants 2.0" in await rsp.text()
        async with http.get(f"http://127.0.0.1:{reg.http_port}/http_sd") as rsp:
            assert await rsp.json() == []


async def test_sigterm_deregisters_the_replica(registry: Callable[..., RegistryProcess], store_spec: StoreSpec) -> None:
    first = registry("--node-name", "127.0.0.1")
    second_port = free_port()
    second = RegistryProcess(
        registry_argv(store_spec, second_port, "--http-port", "0", host="127.0.0.5"),
        second_port, 0, first.log.with_name("second.log"), host="127.0.0.5",
    )  # fmt: skip
    if store_spec.kind == "sqlite":
        second.argv[second.argv.index("--data-dir") + 1] = str(store_spec.data_dir / "other")
    second.start()
    try:
        async with Communicator() as comm:
            query = comm.string_to_proxy(QueryFProxy, first.locator)

            async def listed(expected: set[tuple[str, int]]) -> bool:
                eps = await query.findObjectById("tars.tarsregistry.QueryObj")
                return {(e.host, e.port) for e in eps} == expected

            alone = {("127.0.0.1", first.port)}
            if store_spec.kind == "mysql":  # one store: each replica lists both (10 s: a bound, not a speed goal)
                await eventually(lambda: listed({*alone, ("127.0.0.5", second_port)}), timeout=10.0)
                assert second.stop() == 0
                await eventually(lambda: listed(alone), timeout=10.0)
            else:
                assert await listed(alone)
    finally:
        second.stop()


async def test_replicas_in_different_time_zones_agree(store_spec: StoreSpec, tmp_path: Path) -> None:
    """Heartbeats written by a replica in UTC must not look hours old to a replica in UTC+8 (or the reverse)."""
    if store_spec.kind != "mysql":
        pytest.skip("replicas share a MySQL store")
    procs = []
    for host, tz in (("127.0.0.1", "UTC"), ("127.0.0.6", "Asia/Shanghai"), ("127.0.0.7", "America/Los_Angeles")):
        port = free_port(host)
        argv = registry_argv(store_spec, port, "--http-port", "0", "--heartbeat-timeout", "1", host=host)
        procs.append(RegistryProcess(argv, port, 0, tmp_path / f"{tz.replace('/', '_')}.log", host, {"TZ": tz}))
        procs[-1].start()
    try:
        async with Communicator() as comm:
            writer = comm.string_to_proxy(
                tarsregistryProxy, f"tars.tarsregistry.Registry@tcp -h 127.0.0.1 -p {procs[0].port}"
            )
            adapter = AdapterConf("App.Tz.MainObj", "tcp -h 10.0.0.1 -p 1")
            await writer.onStartup(onStartupReq("10.0.0.1", "App", "Tz", adapters=[adapter]))
            for _ in range(12):  # 3 s: every replica sweeps meanwhile (after its 1 s grace)
                await writer.keepAlive(keepAliveReq("10.0.0.1", "active", "App", "Tz"))
                await asyncio.sleep(0.25)
            for p in procs:
                query = comm.string_to_proxy(QueryFProxy, p.locator)
                assert [e.host for e in await query.findObjectById("App.Tz.MainObj")] == ["10.0.0.1"], p.log.name
                replicas = await query.findObjectById("tars.tarsregistry.QueryObj")
                assert len(replicas) == 3, p.log.name
            await asyncio.sleep(1.6)  # silence: now every replica agrees it is inactive
            for p in procs:
                query = comm.string_to_proxy(QueryFProxy, p.locator)
                assert await query.findObjectById("App.Tz.MainObj") == []
    finally:
        for p in procs:
            p.stop()


@pytest.mark.parametrize(
    ("args", "message", "code"),
    [
        (["--store", "mysql"], "--store mysql needs --dsn", 2),
        (["--store", "mysql", "--dsn", "postgres://x@y/z"], "bad DSN", 2),
        (["--heartbeat-timeout", "0"], "--heartbeat-timeout must be > 0", 2),
        (["--retention", "-1"], "--retention must be >= 0", 2),
        (["--store", "mysql", "--dsn", "mysql://root:secret@127.0.0.1:1/db_tars"], "cannot open the mysql store", 1),
    ],
)
def test_unusable_options_fail_clearly(args: list[str], message: str, code: int, tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "k8stars", "registry", "--port", str(free_port()), "--http-port", "0",
            "--data-dir", str(tmp_path), *args]  # fmt: skip
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert out.returncode == code, out.stderr
    assert message in out.stderr
    assert "secret" not in out.stderr and "Traceback" not in out.stderr


def test_environment_variables(tmp_path: Path) -> None:
    port, http_port = free_port(), free_port()
    env = dict(os.environ, K8STARS_REGISTRY_PORT=str(port), K8STARS_REGISTRY_HTTP_PORT=str(http_port),
               K8STARS_DATA_DIR=str(tmp_path / "d"), K8STARS_REGISTRY_HEARTBEAT_TIMEOUT="5",
               POD_IP="127.0.0.1")  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-m", "k8stars", "registry"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not (_listening(port) and _listening(http_port)) and time.monotonic() < deadline:
            time.sleep(0.05)  # the TARS listener comes up before the HTTP one
        assert _listening(port) and _listening(http_port)
        assert (tmp_path / "d" / "registry.db").exists()
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
