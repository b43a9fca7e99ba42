"""``k8stars up``: the TARS framework on one machine, as it runs on Kubernetes.

The registry (``k8stars registry`` with its SQLite store), the config service (``k8stars config`` with its SQLite
store, registered as ``tars.tarsconfig`` so servers' ``config=tars.tarsconfig.ConfigObj`` resolves), the stat service
(``k8stars stat``, registered as ``tars.tarsstat`` and ``tars.tarsproperty`` so ``stat=`` and ``property=`` resolve;
its ``/metrics`` on a free port; its per-minute history in ``<data>/stat/monitor.db``), the query services
(``k8stars monitor`` over that history, registered as ``tars.tarsquerystat`` and ``tars.tarsqueryproperty``), the
notify service (``k8stars notify`` with its SQLite store, registered as
``tars.tarsnotify`` so ``notify=tars.tarsnotify.NotifyObj`` resolves), the log service (``k8stars log`` writing
under ``<data>/log/files``, registered as ``tars.tarslog`` so ``log=tars.tarslog.LogObj`` resolves) and the example
services, each under its own ``tarscli supervisor`` with its own loopback address (127.0.0.11, .12, ...) standing in
for a pod IP and its own ``$TARS_PATH`` under the data directory. Everything is stopped cleanly on Ctrl-C or
SIGTERM: the supervisors first (each runs prestop and deregisters its service), then the web console, the admin
registry, the log, notify, query, stat and config services (each deregisters itself), then the registry.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import secrets
import signal
import socket
import sys
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import k8stars
from k8stars.paths import data_home
from k8stars.tars.errors import TarsError
from k8stars.tars.protocol.queryf import QueryFProxy
from k8stars.tars.rpc import Communicator
from k8stars.tarscli.env import CHECK_STATUS_FILE, META_FILE, SERVER_INFO_FILE, read_text, write_atomic
from k8stars.tarscli.meta import MetaError, ServerInfo
from k8stars.tarscli.ports import can_bind
from k8stars.tarscli.proc import Child, stop_group
from k8stars.tarscli.upconsole import ConsoleOptions, start_console

REGISTRY_START_TIMEOUT = 20.0
REGISTRY_STOP_TIMEOUT = 5.0
SERVICE_START_TIMEOUT = 30.0  # an example service under its supervisor, until it reports active
SUPERVISOR_STOP_TIMEOUT = 20.0
REGISTER_TIMEOUT = 20.0  # a framework service, until the registry lists its servants as active
FRAMEWORK_STOP_TIMEOUT = 5.0
CONFIG_OBJ = "tars.tarsconfig.ConfigObj"
STAT_OBJS = ("tars.tarsstat.StatObj", "tars.tarsproperty.PropertyObj")
NOTIFY_OBJ = "tars.tarsnotify.NotifyObj"
LOG_OBJ = "tars.tarslog.LogObj"
MONITOR_OBJS = ("tars.tarsquerystat.QueryObj", "tars.tarsqueryproperty.QueryObj")
ADMINREG_OBJ = "tars.tarsAdminRegistry.AdminRegObj"


class LocalError(RuntimeError):
    """The local framework cannot start."""


@dataclass(frozen=True)
class LocalService:
    """An example service: its meta file and the start script that runs it from the source tree."""

    application: str
    server: str
    objects: tuple[str, ...]
    module: str  # python -m <module> --config FILE

    @property
    def name(self) -> str:
        return f"{self.application}.{self.server}"

    def meta(self, locator: str) -> str:
        adapters = "".join(f"  - object: {o}\n" for o in self.objects)
        return f'application: {self.application}\nserver: {self.server}\nlocator: "{locator}"\nadapters:\n{adapters}'

    def start_script(self, root: Path) -> str:
        return (
            "#!/bin/sh\n"
            "# written by `k8stars up`: run the example from the source tree with the config tarscli generated\n"
            f'export PYTHONPATH="{root}${{PYTHONPATH:+:$PYTHONPATH}}"\n'
            f'exec "{sys.executable}" -m {self.module} --config "$TARS_CONFIG"\n'
        )


EXAMPLES = (LocalService("TestApp", "HelloServer", ("HelloObj",), "examples.hello.server"),)


@dataclass(frozen=True)
class FrameworkProcess:
    """A framework service `k8stars up` runs beside the registry: what to call it, its process, its log."""

    what: str
    child: Child
    log: Path


def source_root() -> Path | None:
    """The checkout k8stars runs from, if the examples are there (an editable install)."""
    root = Path(k8stars.__file__).resolve().parents[1]
    return root if (root / "examples" / "hello" / "server.py").is_file() else None


def default_data_dir() -> Path:
    return data_home() / "up"


def _say(text: str) -> None:
    print(text, flush=True)


async def _registry_ready(locator: str, child: Child, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    async with Communicator() as comm:
        query = comm.string_to_proxy(QueryFProxy, locator).tars_options(timeout_ms=500)
        while True:
            if not child.running:
                raise LocalError(f"the registry exited (code {child.returncode})")
            try:
                await query.findObjectById4Any("tars.tarsregistry.QueryObj")
                return
            except TarsError:
                if time.monotonic() > deadline:
                    raise LocalError(f"the registry did not answer within {timeout:.0f} s") from None
                await asyncio.sleep(0.2)


async def _servants_registered(locator: str, child: Child, servants: tuple[str, ...], what: str,
                               timeout: float) -> None:  # fmt: skip
    """Until the registry lists each of ``servants`` as active (``what`` names the service in errors)."""
    deadline = time.monotonic() + timeout
    async with Communicator() as comm:
        query = comm.string_to_proxy(QueryFProxy, locator).tars_options(timeout_ms=500)
        for servant in servants:
            while True:
                if not child.running:
                    raise LocalError(f"the {what} exited (code {child.returncode})")
                with contextlib.suppress(TarsError):
                    if (await query.findObjectById4Any(servant)).activeEp:
                        break
                if time.monotonic() > deadline:
                    raise LocalError(f"the {what} did not register {servant} within {timeout:.0f} s")
                await asyncio.sleep(0.2)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _child_env() -> dict[str, str]:
    """The framework's processes run the k8stars this process runs (a checkout first on their path)."""
    env = dict(os.environ)
    root = str(Path(k8stars.__file__).resolve().parents[1])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


async def _service_ready(tars_path: Path, child: Child, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    state = ""
    while time.monotonic() < deadline and child.running:
        state = (read_text(tars_path / "data" / CHECK_STATUS_FILE) or "").strip()
        if state == "active":
            break
        await asyncio.sleep(0.2)
    return state if child.running else f"supervisor exited ({child.returncode})"


class LocalFramework:
    def __init__(self, data_dir: Path, registry_port: int, first_ip: str, config_port: int = 0,
                 console: ConsoleOptions | None = None) -> None:  # fmt: skip
        self.data_dir = data_dir
        self.console_options = console  # None: no Kubernetes API given, no console (upconsole.py says why)
        self.log_http_port = 0  # the log files' view the console reads: a free one, at start
        self.registry_port = registry_port
        self.config_port = config_port  # 0: a free port, chosen at start
        self.first_ip = ipaddress.IPv4Address(first_ip)
        self.locator = f"tars.tarsregistry.QueryObj@tcp -h 127.0.0.1 -p {registry_port}"
        self.registry: Child | None = None
        self.framework: list[FrameworkProcess] = []  # in start order: config, stat, monitor, notify, log, adminreg, web
        self.stat_ports: tuple[int, int, int] = (0, 0, 0)  # StatObj, PropertyObj, /metrics: free ones, at start
        self.monitor_ports: tuple[int, int, int] = (0, 0, 0)  # the two QueryObj, the JSON view: free ones, at start
        self.notify_port = 0  # a free one, at start
        self.log_port = 0  # a free one, at start
        self.adminreg_port = 0  # a free one, at start (server commands to the supervisors' node servants)
        self.supervisors: dict[str, tuple[Child, Path, str]] = {}  # name -> (child, TARS_PATH, pod IP)

    async def start(self) -> None:
        if not self.first_ip.is_loopback:
            raise LocalError(f"{self.first_ip} is not a loopback address")
        if not can_bind("tcp", "127.0.0.1", self.registry_port):
            raise LocalError(f"127.0.0.1:{self.registry_port} is in use (another `k8stars up` or registry?)")
        if self.config_port and not can_bind("tcp", "127.0.0.1", self.config_port):
            raise LocalError(f"127.0.0.1:{self.config_port} is in use (another `k8stars up` or config service?)")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        await self._start_registry()
        await self._start_config()
        await self._start_stat()
        await self._start_monitor()
        await self._start_notify()
        await self._start_log()
        await self._start_adminreg()
        if self.console_options is not None:
            try:
                console = await start_console(self.console_options, self.data_dir, self.locator,
                                              f"http://127.0.0.1:{self.log_http_port}", _child_env(),
                                              self.log_token_file)  # fmt: skip
            except RuntimeError as e:
                raise LocalError(str(e)) from None
            self.framework.append(FrameworkProcess("web console", console, self.data_dir / "web" / "web.log"))
        root = source_root()
        if root is None:
            _say("k8stars up: the examples are not installed (no editable install): registry, config and stat only")
            return
        for i, svc in enumerate(EXAMPLES):
            self._start_service(svc, str(self.first_ip + i), root)
        for name, (child, path, _) in self.supervisors.items():
            state = await _service_ready(path, child, SERVICE_START_TIMEOUT)
            if state != "active":
                _say(f"k8stars up: {name} is not active yet ({state or 'no state'}); see {path / 'log'}")

    async def _start_registry(self) -> None:
        reg_dir = self.data_dir / "registry"
        reg_dir.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "k8stars", "registry", "--host", "127.0.0.1", "--port", str(self.registry_port),
                "--data-dir", str(reg_dir), "--http-port", "0"]  # fmt: skip
        self.registry = Child(argv, cwd=reg_dir, env=_child_env(), output=reg_dir / "registry.log")
        await _registry_ready(self.locator, self.registry, REGISTRY_START_TIMEOUT)

    @property
    def config_dir(self) -> Path:
        return self.data_dir / "config"

    @property
    def config_endpoint(self) -> str:
        return f"tcp -h 127.0.0.1 -p {self.config_port} -t 60000"

    async def _start_config(self) -> None:
        """``k8stars config`` over ``<data>/config/config.db``, registering itself through the registry."""
        self.config_dir.mkdir(parents=True, exist_ok=True)
        self.config_port = self.config_port or _free_port()
        argv = [sys.executable, "-m", "k8stars", "config", "--store", "sqlite", "--data-dir", str(self.config_dir),
                "--endpoint", self.config_endpoint, "--locator", self.locator, "--node-name", "127.0.0.1"]  # fmt: skip
        await self._launch("config service", argv, self.config_dir / "config.log", (CONFIG_OBJ,))

    @property
    def stat_dir(self) -> Path:
        return self.data_dir / "stat"

    async def _start_stat(self) -> None:
        """``k8stars stat`` (StatObj, PropertyObj, /metrics), registering both servants through the registry."""
        self.stat_dir.mkdir(parents=True, exist_ok=True)
        self.stat_ports = (_free_port(), _free_port(), _free_port())
        stat, prop, http = self.stat_ports
        argv = [sys.executable, "-m", "k8stars", "stat", "--stat-endpoint", f"tcp -h 127.0.0.1 -p {stat} -t 60000",
                "--property-endpoint", f"tcp -h 127.0.0.1 -p {prop} -t 60000", "--http-port", str(http),
                "--locator", self.locator, "--node-name", "127.0.0.1", "--history", "sqlite",
                "--data-dir", str(self.stat_dir)]  # fmt: skip
        await self._launch("stat service", argv, self.stat_dir / "stat.log", STAT_OBJS)

    async def _start_monitor(self) -> None:
        """``k8stars monitor`` over the stat service's ``<data>/stat/monitor.db``, registering both QueryObj."""
        self.monitor_ports = (_free_port(), _free_port(), _free_port())
        stat, prop, http = self.monitor_ports
        argv = [sys.executable, "-m", "k8stars", "monitor", "--stat-endpoint", f"tcp -h 127.0.0.1 -p {stat} -t 60000",
                "--property-endpoint", f"tcp -h 127.0.0.1 -p {prop} -t 60000", "--http-port", str(http),
                "--locator", self.locator, "--node-name", "127.0.0.1", "--store", "sqlite",
                "--data-dir", str(self.stat_dir)]  # fmt: skip
        await self._launch("query service", argv, self.stat_dir / "monitor.log", MONITOR_OBJS)

    @property
    def notify_dir(self) -> Path:
        return self.data_dir / "notify"

    async def _start_notify(self) -> None:
        """``k8stars notify`` over ``<data>/notify/notify.db``, registering itself through the registry."""
        self.notify_dir.mkdir(parents=True, exist_ok=True)
        self.notify_port = _free_port()
        argv = [sys.executable, "-m", "k8stars", "notify", "--store", "sqlite", "--data-dir", str(self.notify_dir),
                "--endpoint", f"tcp -h 127.0.0.1 -p {self.notify_port} -t 60000", "--locator", self.locator,
                "--node-name", "127.0.0.1"]  # fmt: skip
        await self._launch("notify service", argv, self.notify_dir / "notify.log", (NOTIFY_OBJ,))

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "log"

    @property
    def log_token_file(self) -> Path:
        """The bearer token of the log files' view, shared with the console (this user's only, new at each start)."""
        return self.log_dir / "http-token"

    async def _start_log(self) -> None:
        """``k8stars log`` writing under ``<data>/log/files``, registering itself through the registry."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.log_port, self.log_http_port = _free_port(), _free_port()
        write_atomic(self.log_token_file, secrets.token_urlsafe(32), 0o600)  # the files' view: the console's only
        argv = [sys.executable, "-m", "k8stars", "log", "--log-dir", str(self.log_dir / "files"),
                "--http-port", str(self.log_http_port), "--http-token-file", str(self.log_token_file),
                "--endpoint", f"tcp -h 127.0.0.1 -p {self.log_port} -t 60000", "--locator", self.locator,
                "--node-name", "127.0.0.1"]  # fmt: skip
        await self._launch("log service", argv, self.log_dir / "log.log", (LOG_OBJ,))

    async def _start_adminreg(self) -> None:
        """``k8stars adminreg`` without Kubernetes (nodeName is the pod IP), registering itself through the registry."""
        self.adminreg_port = _free_port()
        argv = [sys.executable, "-m", "k8stars", "adminreg", "--endpoint",
                f"tcp -h 127.0.0.1 -p {self.adminreg_port} -t 60000", "--locator", self.locator,
                "--node-name", "127.0.0.1"]  # fmt: skip
        if self.console_options is not None:  # the console's pods are that namespace's: found as the chart finds them
            o = self.console_options
            argv += ["--namespace", o.namespace, "--kubeconfig", str(o.kubeconfig)]
        await self._launch("admin registry", argv, self.data_dir / "adminreg.log", (ADMINREG_OBJ,))

    async def _launch(self, what: str, argv: list[str], log: Path, servants: tuple[str, ...]) -> None:
        """Start a framework service (in its log's directory) and wait until the registry lists its servants."""
        child = Child(argv, cwd=log.parent, env=_child_env(), output=log)
        self.framework.append(FrameworkProcess(what, child, log))
        await _servants_registered(self.locator, child, servants, what, REGISTER_TIMEOUT)

    def _start_service(self, svc: LocalService, ip: str, root: Path) -> None:
        tars_path = self.data_dir / svc.name
        (tars_path / "bin").mkdir(parents=True, exist_ok=True)
        (tars_path / "log").mkdir(parents=True, exist_ok=True)
        write_atomic(tars_path / "bin" / META_FILE, svc.meta(self.locator))
        write_atomic(tars_path / "bin" / "start.sh", svc.start_script(root), mode=0o755)
        env = dict(_child_env(), TARS_PATH=str(tars_path), POD_IP=ip, TARS_LOCATOR=self.locator,
                   TARS_PRESTOP_WAITTIME="1s", TARS_TERMINATION_GRACE_PERIOD="15s", TARS_REPORT_INTERVAL="10s",
                   TARS_CHECK_INTERVAL="2s", PYTHONUNBUFFERED="1")  # fmt: skip
        argv = [sys.executable, "-m", "k8stars.tarscli", "supervisor"]
        child = Child(argv, cwd=tars_path, env=env, output=tars_path / "log" / "supervisor.out")
        self.supervisors[svc.name] = (child, tars_path, ip)

    def describe(self) -> str:
        lines = [f"k8stars up: the TARS framework on this machine (data in {self.data_dir})", "",
                 f"  registry  {self.locator}  (tars.tarsregistry.Registry on the same port)",
                 f"            log {self.data_dir / 'registry' / 'registry.log'}",
                 f"  config    {CONFIG_OBJ}@{self.config_endpoint}  (SQLite store {self.config_dir / 'config.db'})",
                 f"            log {self.config_dir / 'config.log'}",
                 f"  stat      {STAT_OBJS[0]} (port {self.stat_ports[0]}), {STAT_OBJS[1]} (port "
                 f"{self.stat_ports[1]}), metrics http://127.0.0.1:{self.stat_ports[2]}/metrics",
                 f"            log {self.stat_dir / 'stat.log'}",
                 f"  monitor   {MONITOR_OBJS[0]} (port {self.monitor_ports[0]}), {MONITOR_OBJS[1]} (port "
                 f"{self.monitor_ports[1]}), JSON http://127.0.0.1:{self.monitor_ports[2]}/api/query/stat",
                 f"            log {self.stat_dir / 'monitor.log'}",
                 f"  notify    {NOTIFY_OBJ}@tcp -h 127.0.0.1 -p {self.notify_port}  (SQLite store "
                 f"{self.notify_dir / 'notify.db'})",
                 f"            log {self.notify_dir / 'notify.log'}",
                 f"  log       {LOG_OBJ}@tcp -h 127.0.0.1 -p {self.log_port}  (files under "
                 f"{self.log_dir / 'files'})",
                 f"            log {self.log_dir / 'log.log'}",
                 f"  adminreg  {ADMINREG_OBJ}@tcp -h 127.0.0.1 -p {self.adminreg_port}  (nodeName: a pod IP)",
                 f"            log {self.data_dir / 'adminreg.log'}"]  # fmt: skip
        if self.console_options is not None:
            o = self.console_options
            lines += [f"  web       http://127.0.0.1:{o.port}  (namespace {o.namespace} of {o.kubeconfig})",
                      f"            log {self.data_dir / 'web' / 'web.log'}"]  # fmt: skip
        for name, (child, path, ip) in self.supervisors.items():
            state = (read_text(path / "data" / CHECK_STATUS_FILE) or "?").strip()
            lines += ["", f"  {name}  pod IP {ip}  state {state}  (tarscli supervisor pid {child.pid})"]
            try:
                info = ServerInfo.load(path / "data" / SERVER_INFO_FILE)
            except MetaError:
                continue
            for a in info.conf.adapters:
                lines.append(f"    {info.conf.servant(a):<36} {a.endpoint}")
            lines.append(f"    {'AdminObj (local)':<36} {info.conf.local}")
            lines.append(f"    {'tars.tarsnode.ServerObj (tarscli)':<36} {info.node.partition('@')[2]}")
            lines.append(f"    {'TARS_PATH':<36} {path}")
        if self.supervisors:
            lines += ["", "Try:", f"  k8stars call --locator '{self.locator}' --idl examples/hello/Hello.tars "
                      "TestApp.HelloServer.HelloObj sayHello '{\"name\": \"world\"}'",
                      f"  k8stars config put --data-dir {self.config_dir} TestApp.HelloServer hello.conf",
                      "  k8stars call 'AdminObj@tcp -h HOST -p PORT' notify "
                      "'{\"command\": \"tars.loadconfig hello.conf\"}'   # AdminObj (local) above",
                      f"  k8stars notify list --data-dir {self.notify_dir} TestApp.HelloServer"]  # fmt: skip
        lines += ["", "Ctrl-C stops everything."]
        return "\n".join(lines)

    async def watch(self, stop: asyncio.Event) -> int:
        """Until ``stop`` is set or the registry dies (exit code 1). A supervisor that dies is only reported."""
        assert self.registry is not None
        reported: set[str] = set()
        while not stop.is_set():
            if not self.registry.running:
                _say(f"k8stars up: the registry exited (code {self.registry.returncode}); stopping")
                return 1
            for fp in self.framework:
                if not fp.child.running and fp.what not in reported:
                    reported.add(fp.what)
                    _say(f"k8stars up: the {fp.what} exited ({fp.child.returncode}); see {fp.log}")
            for name, (child, path, _) in self.supervisors.items():
                if not child.running and name not in reported:
                    reported.add(name)
                    _say(f"k8stars up: the supervisor of {name} exited ({child.returncode}); see {path / 'log'}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)
        return 0

    async def stop(self) -> None:
        """Supervisors first (their prestop needs the registry), then the registry; every wait is bounded."""
        for child, _, _ in self.supervisors.values():
            if child.running:
                os.kill(child.pid, signal.SIGTERM)
        await asyncio.gather(*(_stop(c, SUPERVISOR_STOP_TIMEOUT) for c, _, _ in self.supervisors.values()))
        # then the console and the framework services in reverse start order (the log and notify services take the
        # supervisors' last records; each deregisters itself, so all before the registry)
        for fp in reversed(self.framework):
            if fp.child.running:
                os.kill(fp.child.pid, signal.SIGTERM)
            await _stop(fp.child, FRAMEWORK_STOP_TIMEOUT)
        if self.registry is not None:
            if self.registry.running:
                os.kill(self.registry.pid, signal.SIGTERM)
            await _stop(self.registry, REGISTRY_STOP_TIMEOUT)


async def _stop(child: Child, timeout: float) -> None:
    if not await child.wait_for(timeout):
        await stop_group(child.pid, 1.0)
        await child.wait_for(2.0)


async def _until_stopped(work: Coroutine[Any, Any, None], stop: asyncio.Event) -> bool:
    """Run ``work`` unless Ctrl-C comes first (then it is cancelled): True if it completed."""
    task = asyncio.ensure_future(work)
    waiter = asyncio.ensure_future(stop.wait())
    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    if not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return False
    task.result()
    return True


async def run_local(data_dir: str | None = None, registry_port: int = 17890, first_ip: str = "127.0.0.11",
                    config_port: int = 0, console: ConsoleOptions | None = None) -> int:  # fmt: skip
    """Start everything, print where it listens, run until Ctrl-C/SIGTERM, stop everything. Returns the exit code."""
    local = LocalFramework(Path(data_dir) if data_dir else default_data_dir(), registry_port, first_ip, config_port,
                           console)  # fmt: skip
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    code = 0
    try:
        if await _until_stopped(local.start(), stop):
            _say(local.describe())
            code = await local.watch(stop)
    except LocalError as e:
        _say(f"k8stars up: {e}")
        code = 1
    finally:
        _say("k8stars up: stopping")
        await local.stop()
        _say("k8stars up: stopped")
    return code
