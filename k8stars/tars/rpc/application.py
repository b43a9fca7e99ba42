"""A TARS server process: its config file, adapters, servants, AdminObj on ``local``, and node heartbeats.

app = Application.from_config("HelloServer.conf")
app.add_servant(HelloImp(), "TestApp.HelloServer.HelloObj")   # servant name of one of the config's adapters
await app.run()                                                 # until AdminObj.shutdown or SIGTERM
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from k8stars import __version__
from k8stars.tars.config import Domain, TarsConfig
from k8stars.tars.endpoint import Endpoint
from k8stars.tars.errors import TarsRpcError
from k8stars.tars.protocol.adminf import AdminFServant
from k8stars.tars.protocol.configf import ConfigInfo, ConfigProxy
from k8stars.tars.protocol.nodef import ServerFProxy, ServerInfo
from k8stars.tars.rpc import trace
from k8stars.tars.rpc.processes import parse_processes
from k8stars.tars.rpc.proxy import Communicator, CommunicatorConfig
from k8stars.tars.rpc.remotelog import RemoteLogHandler
from k8stars.tars.rpc.server import AdapterConfig, Server
from k8stars.tars.stub import Servant

log = logging.getLogger("k8stars.tars.rpc")

AdminCommand = Callable[[str, str], Awaitable[str] | str]  # (command, params) -> reply text
HEARTBEAT_INTERVAL = 10.0  # seconds between ServerF.keepAlive calls, as TarsCpp and TarsGo do

# TARS's level names, plus Python's WARNING (what --log-level takes elsewhere) so it never falls to DEBUG.
_LOG_LEVELS = {"NONE": logging.CRITICAL + 10, "ERROR": logging.ERROR, "WARN": logging.WARNING,
               "WARNING": logging.WARNING, "INFO": logging.INFO, "DEBUG": logging.DEBUG,
               "TARS": logging.DEBUG}  # fmt: skip


@dataclass
class ServerSettings:
    """The ``<tars><application><server>`` values an application uses."""

    app: str = ""
    server: str = ""
    local: str = ""
    node: str = ""
    localip: str = "127.0.0.1"
    basepath: str = ""
    datapath: str = ""
    logpath: str = ""
    log_level: str = "DEBUG"
    config: str = ""  # the config service's servant (config=tars.tarsconfig.ConfigObj), for load_config
    log: str = ""  # the log service's servant (log=tars.tarslog.LogObj), for remote_log_handler
    processes: int = 1  # processes=N (or max: one per core): processes serving the adapters (rpc/processes.py)
    adapters: list[AdapterConfig] = field(default_factory=list)


def _int(d: Domain, key: str, default: int) -> int:
    try:
        return int(d.params.get(key, default))
    except ValueError:
        return default


def settings_from_config(conf: TarsConfig) -> ServerSettings:
    server = conf.domain("/tars/application/server")
    if server is None:
        raise ValueError("config has no <tars><application><server> domain")
    p = server.params
    s = ServerSettings(
        app=p.get("app", ""),
        server=p.get("server", ""),
        local=p.get("local", ""),
        node=p.get("node", ""),
        localip=p.get("localip", "127.0.0.1"),
        basepath=p.get("basepath", ""),
        datapath=p.get("datapath", ""),
        logpath=p.get("logpath", ""),
        log_level=p.get("logLevel", p.get("loglevel", "DEBUG")),
        config=p.get("config", ""),
        log=p.get("log", ""),
        processes=parse_processes(p.get("processes", "1")),
    )
    for name, d in server.domains.items():
        if "endpoint" not in d.params:
            continue
        s.adapters.append(
            AdapterConfig(
                name=name,
                endpoint=Endpoint.parse(d.params["endpoint"]),
                servant=d.params.get("servant", ""),
                protocol=d.params.get("protocol", "tars"),
                threads=_int(d, "threads", 1),
                max_conns=_int(d, "maxconns", 200000),
                queue_cap=_int(d, "queuecap", 10000),
                queue_timeout_ms=_int(d, "queuetimeout", 60000),
            )
        )
    return s


class ConfigLoadError(RuntimeError):
    """A config file that could not be fetched from the config service or written; the message says why."""


def _check_filename(filename: str) -> str:
    name = filename.strip()
    # the name comes back as a path under basepath: a config service must not be able to write elsewhere
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise ConfigLoadError(f"{filename!r} is not a plain file name")
    return name


async def fetch_config(comm: Communicator, config_obj: str, info: ConfigInfo, basepath: Path) -> str:
    """``info.filename`` from the config service ``config_obj``, written into ``basepath`` (TarsCpp's ``addConfig``;
    the pod agent's node servant ``addFile`` too); returns its content. ConfigLoadError says what failed."""
    name = _check_filename(info.filename)
    try:
        proxy = comm.string_to_proxy(ConfigProxy, config_obj)
        ret, content = await proxy.loadConfigByInfo(info)
    except Exception as e:  # TarsRpcError, a bad proxy string, no locator: all reported the same way
        raise ConfigLoadError(f"config service {config_obj}: {e}") from None
    if ret != 0:
        raise ConfigLoadError(f"config service {config_obj} answered {ret}: {content}")
    try:
        _write_file(basepath / name, content)
    except OSError as e:
        raise ConfigLoadError(f"cannot write {basepath / name}: {e}") from None
    return str(content)


def _write_file(path: Path, content: str) -> None:
    """Atomically, keeping the previous version as ``<name>.bak`` when it differs (TarsCpp keeps backups too)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and path.read_text(encoding="utf-8", errors="replace") != content:
        os.replace(path, path.with_name(path.name + ".bak"))
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(content)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Application:
    """A TARS server with its AdminObj, a communicator for its own calls, and heartbeats to its node."""

    def __init__(self, settings: ServerSettings, comm: Communicator | None = None, config_path: str = "") -> None:
        self.settings = settings
        self.config_path = config_path
        self.comm = comm or Communicator()
        self.server = Server(processes=settings.processes, on_first_gone=self.request_stop)
        self.admin_commands: dict[str, tuple[AdminCommand, str]] = {}
        self.started_at = time.time()
        self.stopping = asyncio.Event()  # set by request_stop, AdminObj.shutdown, SIGTERM/SIGINT in run()
        self._tasks: list[asyncio.Task[None]] = []
        self._log_handlers: list[RemoteLogHandler] = []
        for cfg in settings.adapters:
            self.server.add_adapter(cfg)
        if settings.local:
            self.server.add_servant(AdminServant(self), "AdminObj", settings.local, shared=False)
        self._builtin_commands()
        self._trace_log: RemoteLogHandler | None = None
        if settings.log and self.comm.tracer is None:  # traced calls write their records to the _t_trace_ log
            self.comm.tracer = trace.Tracer(self.comm.config.module_name or self.name, self._trace_handler)

    def _trace_handler(self) -> RemoteLogHandler:
        if self._trace_log is None:
            self._trace_log = self.remote_log_handler(trace.TRACE_FILE)
        return self._trace_log

    @classmethod
    def from_config(cls, path: str | Path) -> Application:
        conf = TarsConfig.load(path)
        return cls(settings_from_config(conf), Communicator(CommunicatorConfig.from_config(conf)), str(path))

    @property
    def name(self) -> str:
        return f"{self.settings.app}.{self.settings.server}"

    def add_servant(self, servant: Servant, name: str) -> None:
        """Serve ``servant`` on the config's adapter whose ``servant=`` is ``name``."""
        for adapter in self.server.adapters.values():
            if adapter.config.servant == name:
                adapter.add_servant(name, servant)
                return
        known = ", ".join(a.config.servant for a in self.server.adapters.values()) or "none"
        raise ValueError(f"no adapter serves {name} (configured: {known})")

    def register_admin_command(self, command: str, handler: AdminCommand, help_text: str = "") -> None:
        self.admin_commands[command] = (handler, help_text)

    @property
    def basepath(self) -> Path:
        """Where fetched config files go: ``basepath`` of the config, else the current directory."""
        return Path(self.settings.basepath or ".")

    async def load_config(self, filename: str, app_only: bool = False) -> str:
        """Fetch ``filename`` from the config service (``config=`` in ``<tars><application><server>``) and write it
        into basepath, as TarsCpp's ``addConfig`` does; returns its content. ``app_only``: the app-level file.
        The request names this server and its ``localip`` as host, so a pod gets its pod-level version.
        ConfigLoadError says what failed."""
        if not self.settings.config:
            raise ConfigLoadError("no config service: the server config has no config= (tars.application.server)")
        s = self.settings
        info = ConfigInfo(appname=s.app, servername=s.server, filename=filename, bAppOnly=app_only, host=s.localip)
        return await fetch_config(self.comm, s.config, info, self.basepath)

    def adapter_endpoint(self, servant: str) -> Endpoint:
        for a in self.server.adapters.values():
            if a.config.servant == servant or servant in a.dispatchers:  # a second servant on an adapter too
                return a.endpoint
        raise KeyError(servant)

    async def start(self) -> None:
        for a in self.server.adapters.values():
            if not a.dispatchers:
                raise ValueError(f"adapter {a.config.name} has no servant: add_servant({a.config.servant!r})")
        _set_log_level(self.settings.log_level)
        for a in self.server.adapters.values():
            if a.config.servant != "AdminObj":  # the server's own side of its calls, with stat= in the config
                a.stat = self.comm.stat
                a.tracer = self.comm.tracer
        await self.server.start()
        if self.settings.node and not self.server.is_copy:  # the node knows the first process (its pid)
            self._tasks.append(asyncio.create_task(self._heartbeat()))

    async def run(self) -> None:
        """Start, serve until shutdown (AdminObj.shutdown, SIGTERM or SIGINT), then stop gracefully."""
        await self.start()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, self.stopping.set)
            except (NotImplementedError, RuntimeError):
                pass
        await self.stopping.wait()
        await self.stop()

    def request_stop(self) -> None:
        self.stopping.set()

    def remote_log_handler(self, file: str = "", time_format: str = "%Y%m%d") -> RemoteLogHandler:
        """A logging handler sending to the log service (``log=`` of the server config) into this server's
        ``file`` log (TarsGo's remote day log by default); closed by :meth:`stop`."""
        if not self.settings.log:
            raise ValueError("no log service: the server config has no log= (tars.application.server)")
        handler = RemoteLogHandler(self.comm, self.settings.log, self.settings.app, self.settings.server, file,
                                   time_format, self.comm.config.set_division)  # fmt: skip
        self._log_handlers.append(handler)
        return handler

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await self.server.stop()
        for handler in self._log_handlers:
            await handler.aclose()
        await self.comm.close()

    async def _heartbeat(self) -> None:
        """keepAlive per adapter every 10 s and reportVersion once, to the node agent (tarsnode or tarscli)."""
        node = self.comm.string_to_proxy(ServerFProxy, self.settings.node)
        pid = os.getpid()
        reported = False
        while True:
            try:
                if not reported:
                    await node.reportVersion(self.settings.app, self.settings.server, __version__)
                    reported = True
                for adapter in [*self.server.adapters.values()]:
                    name = adapter.config.name
                    await node.keepAlive(ServerInfo(self.settings.app, self.settings.server, pid, name))
            except TarsRpcError as e:
                log.debug("keepAlive to node failed: %s", e)
            await asyncio.sleep(HEARTBEAT_INTERVAL)

    # -- admin commands -------------------------------------------------------------------------------------
    def _builtin_commands(self) -> None:
        self.register_admin_command("tars.help", self._cmd_help, "list the commands")
        self.register_admin_command("tars.viewstatus", self._cmd_viewstatus, "server status")
        self.register_admin_command("tars.setloglevel", self._cmd_setloglevel, "NONE|ERROR|WARN|INFO|DEBUG|TARS")
        self.register_admin_command("tars.connection", self._cmd_connection, "connections per adapter")
        self.register_admin_command("tars.viewversion", self._cmd_viewversion, "framework version")
        self.register_admin_command("tars.loadconfig", self._cmd_loadconfig,
                                    "FILE: fetch FILE from the config service into basepath")  # fmt: skip

    def _cmd_help(self, cmd: str, params: str) -> str:
        return "\n".join(f"{name}: {h}" for name, (_, h) in sorted(self.admin_commands.items()))

    def _cmd_viewstatus(self, cmd: str, params: str) -> str:
        lines = [f"server: {self.name}", f"pid: {os.getpid()}", f"uptime: {time.time() - self.started_at:.0f}s"]
        if self.server.copies is not None:
            lines.append(f"processes: {self.server.processes} (copies: {' '.join(map(str, self.server.copies.pids))})")
        for a in self.server.adapters.values():
            st = a.stats
            lines.append(
                f"{a.config.name}: endpoint={a.endpoint} servant={a.config.servant} conns={len(a.connections)}"
                f" requests={st.requests} inflight={st.inflight} errors={st.errors} overloads={st.overloads}"
                f" queuetimeouts={st.queue_timeouts} queuecap={a.config.queue_cap}"
                f" queuetimeout={a.config.queue_timeout_ms} maxconns={a.config.max_conns}"
            )
        budgets = {id(a.budget): a.budget for a in self.server.adapters.values()}
        lines += [f"limits: {b.describe()}" for b in budgets.values()]
        return "\n".join(lines)

    def _cmd_setloglevel(self, cmd: str, params: str) -> str:
        level = params.strip().upper()
        if level not in _LOG_LEVELS:
            return f"{cmd} {params}: unknown level (NONE|ERROR|WARN|INFO|DEBUG|TARS)"
        _set_log_level(level)
        self.settings.log_level = level
        return f"{cmd} {level} succ"

    def _cmd_connection(self, cmd: str, params: str) -> str:
        lines = []
        for a in self.server.adapters.values():
            lines.append(f"{a.config.name} ({len(a.connections)} connections)")
            lines += [f"  {c.peer[0]}:{c.peer[1]}" for c in a.connections if c.peer]
        return "\n".join(lines)

    def _cmd_viewversion(self, cmd: str, params: str) -> str:
        return f"k8stars {__version__} (TARS protocol 1/2/3/5)"

    async def _cmd_loadconfig(self, cmd: str, params: str) -> str:
        filename = params.strip()
        if not filename:
            return f"{cmd} failed: give a file name ({cmd} FILE fetches FILE from the config service into basepath)"
        try:
            await self.load_config(filename)
        except ConfigLoadError as e:
            return f"{cmd} {filename} failed: {e}"
        return f"{cmd} {filename} succ: written to {self.basepath / filename}"

    async def notify(self, command: str) -> str:
        cmd, _, params = command.strip().partition(" ")
        entry = self.admin_commands.get(cmd)
        if entry is None:
            return ""
        result = entry[0](cmd, params)
        if not isinstance(result, str):
            result = await result
        return result


def _set_log_level(level: str) -> None:
    logging.getLogger().setLevel(_LOG_LEVELS.get(level.upper(), logging.DEBUG))


class AdminServant(AdminFServant):
    """AdminObj: shutdown, notify (admin commands), getPid."""

    def __init__(self, app: Application) -> None:
        self.app = app

    async def shutdown(self) -> None:
        # answer first, stop after: the caller must get its reply
        asyncio.get_running_loop().call_later(0.05, self.app.request_stop)

    async def notify(self, command: str) -> str:
        return await self.app.notify(command)

    async def getPid(self) -> int:
        return os.getpid()
