"""Fixtures for tarscli's tests: a registry process, pods (a TARS_PATH plus a `tarscli supervisor` process),
lookups, and a NotifyF receiver. Every process is started by us and stopped by its PID; every wait is bounded;
everything listens on 127.0.0.0/8."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from k8stars.tars.endpoint import Endpoint
from k8stars.tars.errors import TarsError
from k8stars.tars.protocol.notifyf import NotifyServant, ReportInfo
from k8stars.tars.protocol.queryf import QueryFProxy
from k8stars.tars.protocol.tarsregistry import AdapterConf, onStartupReq, tarsregistryProxy
from k8stars.tars.rpc import Communicator, Server
from tests.conftest import free_port  # the repository root is on sys.path (tests/conftest.py)

ROOT = Path(__file__).resolve().parents[2]
TARSCLI = [sys.executable, "-m", "k8stars.tarscli"]

# Fast timings for tests: a check every second, a heartbeat to the registry every 2 s, 1 s of prestop wait.
FAST_ENV = {
    "TARS_CHECK_INTERVAL": "1s",
    "TARS_REPORT_INTERVAL": "2s",
    "TARS_PRESTOP_WAITTIME": "1s",
    "TARS_TERMINATION_GRACE_PERIOD": "30s",
    "TARS_RESTART_BACKOFF": "500ms",
    "PYTHONUNBUFFERED": "1",
}


async def wait_for(pred: Callable[[], object], timeout: float, what: str, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while True:
        result = pred()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(interval)


def stop_pid(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


class RegistryProc:
    """``k8stars registry`` (SQLite store) on 127.0.0.1, as a process that can be stopped and started again."""

    def __init__(self, tmp: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.tmp = tmp
        self.proc: subprocess.Popen[bytes] | None = None
        self.runs = 0

    @property
    def locator(self) -> str:
        return f"tars.tarsregistry.QueryObj@tcp -h 127.0.0.1 -p {self.port}"

    def argv(self, data_dir: Path) -> list[str]:
        return [sys.executable, "-m", "k8stars", "registry", "--host", "127.0.0.1", "--port", str(self.port),
                "--data-dir", str(data_dir), "--http-port", "0", "--heartbeat-timeout", "20"]  # fmt: skip

    async def start(self, fresh: bool = False) -> None:
        self.runs += 1
        data_dir = self.tmp / (f"registry-{self.runs}" if fresh else "registry")
        data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.tmp / f"registry-{self.runs}.log", "wb")
        self.proc = subprocess.Popen(self.argv(data_dir), stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        log.close()
        await wait_for(self.answers, 20, "the registry to answer")

    async def answers(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"registry exited {self.proc.returncode}")
        try:
            await lookup(self.locator, "tars.tarsregistry.QueryObj")
        except TarsError:
            return False
        return True

    def stop(self) -> None:
        if self.proc is not None:
            stop_pid(self.proc)


@pytest.fixture
async def registry(tmp_path: Path) -> AsyncIterator[RegistryProc]:
    reg = RegistryProc(tmp_path)
    await reg.start()
    yield reg
    reg.stop()


async def lookup(locator: str, obj: str) -> tuple[list[Endpoint], list[Endpoint]]:
    """(active, inactive) endpoints of ``obj``."""
    async with Communicator() as comm:
        q = comm.string_to_proxy(QueryFProxy, locator).tars_options(timeout_ms=1000)
        res = await q.findObjectById4Any(obj)
    return [Endpoint.from_endpointf(e) for e in res.activeEp], [Endpoint.from_endpointf(e) for e in res.inactiveEp]


async def active_hosts(locator: str, obj: str) -> list[str]:
    return sorted(e.host for e in (await lookup(locator, obj))[0])


async def wait_active_hosts(locator: str, obj: str, hosts: list[str], timeout: float = 10) -> None:
    """Until the registry lists exactly ``hosts`` as active: an agent turns active locally before its keepAlive
    reaches the registry, so a lookup right after must poll."""
    deadline = time.monotonic() + timeout
    last: list[str] = []
    while time.monotonic() < deadline:
        last = await active_hosts(locator, obj)
        if last == hosts:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{obj}: active hosts {last}, expected {hosts} within {timeout}s")


async def all_hosts(locator: str, obj: str) -> list[str]:
    active, inactive = await lookup(locator, obj)
    return sorted(e.host for e in active + inactive)


def hello_start() -> str:
    return f'cd "{ROOT}" && exec "{sys.executable}" -m examples.hello.server'


def peer_start(peer: str) -> str:
    from k8stars.testing import peers

    argv = peers.peer_command(peer, "echo-server")  # type: ignore[arg-type]
    return "exec " + " ".join(f'"{a}"' for a in argv)


@dataclass
class Pod:
    """A TARS_PATH with a meta file and start.sh, run by `tarscli supervisor` with POD_IP=ip."""

    tars_path: Path
    app: str
    server: str
    ip: str
    locator: str
    start_cmd: str
    objects: tuple[str, ...] = ("EchoObj",)
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        (self.tars_path / "bin").mkdir(parents=True, exist_ok=True)
        adapters = "".join(f"  - object: {o}\n" for o in self.objects)
        (self.tars_path / "bin" / "_server_meta.yaml").write_text(
            f"version: v1\napplication: {self.app}\nserver: {self.server}\nlocator: '{self.locator}'\n"
            f"adapters:\n{adapters}"
        )
        start = self.tars_path / "bin" / "start.sh"
        start.write_text(f"#!/bin/sh\n{self.start_cmd}\n")
        start.chmod(0o755)

    @property
    def name(self) -> str:
        return f"{self.app}.{self.server}"

    def servant(self, obj: str | None = None) -> str:
        return f"{self.name}.{obj or self.objects[0]}"

    def full_env(self, **extra: str) -> dict[str, str]:
        # start scripts call `tarscli`: the console script sits next to this interpreter
        path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
        return {**os.environ, **FAST_ENV, "PATH": path, "TARS_PATH": str(self.tars_path), "POD_IP": self.ip,
                **self.env, **extra}  # fmt: skip

    def start(self, wrapper: tuple[str, ...] = (), **extra: str) -> None:
        out = open(self.tars_path / "supervisor.out", "ab")
        self.proc = subprocess.Popen([*wrapper, *TARSCLI, "supervisor"], env=self.full_env(**extra), stdout=out,
                                     stderr=subprocess.STDOUT, cwd=self.tars_path)  # fmt: skip
        out.close()

    def data(self, name: str) -> Path:
        return self.tars_path / "data" / name

    def state(self) -> str:
        try:
            return self.data("check_status").read_text().strip()
        except FileNotFoundError:
            return ""

    def service_pid(self) -> int | None:
        try:
            return int(self.data("service.pid").read_text().split()[0])
        except (FileNotFoundError, ValueError, IndexError):
            return None

    def log(self) -> str:
        try:
            return (self.tars_path / "log" / "supervisor.log").read_text()
        except FileNotFoundError:
            return ""

    async def wait_state(self, state: str, timeout: float = 20.0) -> None:
        def ok() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"supervisor of {self.name} exited {self.proc.returncode}:\n{self.log()[-3000:]}")
            return self.state() == state

        try:
            await wait_for(ok, timeout, f"{self.name} to be {state}")
        except AssertionError as e:
            raise AssertionError(f"{e}; state {self.state()!r}\n{self.log()[-3000:]}") from None

    async def tarscli(self, *args: str, **extra: str) -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(
            *TARSCLI,
            *args,
            env=self.full_env(**extra),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode is not None
        return proc.returncode, out.decode()

    async def wait_exit(self, timeout: float) -> int:
        assert self.proc is not None
        await wait_for(lambda: self.proc is not None and self.proc.poll() is not None, timeout, f"{self.name} exit")
        return self.proc.returncode

    def rss_kb(self) -> int:
        assert self.proc is not None
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(status.split("VmRSS:")[1].split()[0])

    def kill(self) -> None:
        """Stop the supervisor and whatever is left of its service, by PID."""
        if self.proc is not None:
            stop_pid(self.proc, 20)
        pid = self.service_pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)


@pytest.fixture
def pods(tmp_path: Path) -> Iterator[Callable[..., Pod]]:
    made: list[Pod] = []

    def make(name: str, ip: str, locator: str, start_cmd: str, **kw: object) -> Pod:
        app, server = name.split(".")
        pod = Pod(tmp_path / f"{name}-{ip}", app, server, ip, locator, start_cmd, **kw)  # type: ignore[arg-type]
        made.append(pod)
        return pod

    yield make
    for pod in made:
        pod.kill()


class NotifyReceiver(NotifyServant):
    def __init__(self) -> None:
        self.reports: list[ReportInfo] = []

    async def reportNotifyInfo(self, info: ReportInfo) -> None:
        self.reports.append(info)


@pytest.fixture
async def notify(registry: RegistryProc) -> AsyncIterator[NotifyReceiver]:
    """tars.tarsnotify.NotifyObj served in the test, registered with the registry like a framework server."""
    receiver = NotifyReceiver()
    server = Server(grace_seconds=0)
    adapter = server.add_servant(receiver, "tars.tarsnotify.NotifyObj", "tcp -h 127.0.0.1 -p 0 -t 60000")
    await server.start()
    ep = str(adapter.endpoint)
    async with Communicator() as comm:
        reg = comm.string_to_proxy(tarsregistryProxy, f"tars.tarsregistry.Registry@tcp -h 127.0.0.1 -p {registry.port}")
        conf = AdapterConf(servant="tars.tarsnotify.NotifyObj", endpoint=ep, protocol="tars", maxConns=100,
                           threadNum=1, queueCap=100, queueTimeout=1000)  # fmt: skip
        await reg.onStartup(onStartupReq(nodeName="127.0.0.1", application="tars", server="tarsnotify",
                                         adapters=[conf], State="active"))  # fmt: skip
    yield receiver
    await server.stop(0)
