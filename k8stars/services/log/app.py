"""``k8stars log``: the remote log service as a process.

One listener (``--endpoint``) serves ``tars.tarslog.LogObj`` and ``AdminObj`` (the usual ``tars.*`` commands, plus
``tars.logstat``: the counters). Records are written under ``--log-dir`` with TarsFramework LogServer's names
(see ``naming``), optionally echoed to stdout (``--stdout``) for ``kubectl logs``. With ``--locator`` the service
registers itself as application ``tars``, server ``tarslog``, so every server's ``log=tars.tarslog.LogObj``
resolves by name.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field

from k8stars import __version__
from k8stars.services.base import APPLICATION, Registrations, node_address, run_service, setup_logging
from k8stars.services.log.naming import NamingRules, check_part
from k8stars.services.log.servant import LogImp
from k8stars.services.log.writer import DEFAULT_MAX_OPEN, DEFAULT_MAX_PENDING, LogWriter
from k8stars.tars.endpoint import Endpoint
from k8stars.tars.rpc import AdapterConfig, Application
from k8stars.tars.rpc.application import AdminServant, ServerSettings

log = logging.getLogger("k8stars.services.log")

SERVER = "tarslog"
LOG_OBJ = "tars.tarslog.LogObj"
DEFAULT_ENDPOINT = "tcp -h 127.0.0.1 -p 10005 -t 60000"  # LogObj's port in a classic TARS install
DEFAULT_LOG_DIR = "/usr/local/app/tars/remote_app_log"  # TarsFramework's logpath of tarslog


class LogServiceError(ValueError):
    """An option that cannot work; the message names it."""


@dataclass
class LogServiceOptions:
    log_dir: str = DEFAULT_LOG_DIR
    endpoint: str = DEFAULT_ENDPOINT
    locator: str = ""  # the registry's QueryObj proxy; empty: no self-registration
    node_name: str = ""  # the address registered (default: the endpoint's host)
    log_level: str = "INFO"
    stdout: bool = False  # also one line per record on stdout
    ip_prefix: bool = True  # TarsFramework's <log> ipfix: each line starts with the sender's node name
    max_pending: int = DEFAULT_MAX_PENDING
    max_open: int = DEFAULT_MAX_OPEN
    hourly: list[str] = field(default_factory=list)  # App.Server written hourly (%Y%m%d%H)
    log_types: list[str] = field(default_factory=list)  # App.Server.file=TYPE ([N]day, [N]hour, [N]minute)

    def parsed_endpoint(self) -> Endpoint:
        try:
            ep = Endpoint.parse(self.endpoint)
        except ValueError as e:
            raise LogServiceError(f"--endpoint: {e}") from None
        if ep.protocol != "tcp":  # remote loggers call LogF over TCP
            raise LogServiceError(f"--endpoint: {self.endpoint!r} must be a tcp endpoint")
        return ep

    def rules(self) -> NamingRules:
        types: dict[str, str] = {}
        for item in self.log_types:
            key, sep, value = item.partition("=")
            if not sep or key.count(".") < 1 or not value:
                raise LogServiceError(f"--log-type {item!r}: expected App.Server.file=TYPE (day, 2hour, 10minute)")
            types[key] = value
        for item in self.hourly:
            if item.count(".") != 1 or not all(item.split(".")):
                raise LogServiceError(f"--hourly {item!r}: expected App.Server")
        return NamingRules(hourly=frozenset(self.hourly), log_types=types)

    def check(self) -> None:
        if not self.log_dir:
            raise LogServiceError("--log-dir is empty")
        if self.max_pending < 1024:
            raise LogServiceError(f"--max-pending {self.max_pending}: must be at least 1024 bytes")
        if self.max_open < 1:
            raise LogServiceError(f"--max-open-files {self.max_open}: must be at least 1")
        if self.locator and "@" not in self.locator:
            raise LogServiceError(
                f"--locator {self.locator!r}: expected tars.tarsregistry.QueryObj@tcp -h HOST -p PORT"
            )
        self.parsed_endpoint()
        self.rules()
        for item in self.hourly:
            for part in item.split("."):
                check_part("--hourly", part)


class LogService:
    """Writer, LogObj + AdminObj listener and self-registration, started and stopped as one."""

    def __init__(self, options: LogServiceOptions) -> None:
        try:
            options.check()
        except ValueError as e:  # a BadLogName from --hourly
            raise LogServiceError(str(e)) from None
        self.options = options
        self.writer = LogWriter(options.log_dir, max_pending=options.max_pending, max_open=options.max_open,
                                stdout=sys.stdout if options.stdout else None)  # fmt: skip
        adapter = AdapterConfig(LOG_OBJ + "Adapter", options.parsed_endpoint(), LOG_OBJ, max_conns=100000)
        settings = ServerSettings(app=APPLICATION, server=SERVER, log_level=options.log_level, adapters=[adapter])
        self.app = Application(settings)
        self.app.register_admin_command("tars.logstat", self._stat, "the log service's counters")
        self.stopping = self.app.stopping  # AdminObj.shutdown ends run() too
        self._registrations: Registrations | None = None

    def _stat(self, _command: str, _params: str) -> str:
        w = self.writer
        return f"{w.root}: {w.counters}, pending {w.pending_bytes} bytes, open files {w.open_files}"

    @property
    def endpoint(self) -> Endpoint:
        return self.app.adapter_endpoint(LOG_OBJ)

    @property
    def node(self) -> str:
        return node_address(self.options.node_name, self.endpoint)

    async def start(self) -> None:
        try:
            self.writer.start()
        except OSError as e:
            raise OSError(e.errno, f"--log-dir {self.options.log_dir}: {e.strerror or e}") from None
        try:
            adapter = self.app.server.adapters[LOG_OBJ + "Adapter"]
            adapter.add_servant(LOG_OBJ, LogImp(self.writer, self.options.rules(), ip_prefix=self.options.ip_prefix))
            adapter.add_servant("AdminObj", AdminServant(self.app))
            await self.app.start()
            if self.options.locator:
                self._registrations = Registrations(self.options.locator)
                self._registrations.add(SERVER, LOG_OBJ, self.node, self.endpoint)
        except BaseException:
            await self.stop()
            raise
        registered = f", registering as {self.node} through {self.options.locator}" if self.options.locator else ""
        log.info("log %s: %s@%s, files under %s%s", __version__, LOG_OBJ, self.endpoint, self.writer.root, registered)

    async def stop(self) -> None:
        if self._registrations is not None:
            await self._registrations.close()
            self._registrations = None
        await self.app.stop()
        await self.writer.stop()  # after the listener: the last calls' records are written too
        log.info("log: %s", self.writer.counters)

    async def run(self) -> None:
        """Serve until SIGTERM, SIGINT or AdminObj.shutdown, then stop (deregistering)."""
        await run_service(self)


async def serve(
    *,
    log_dir: str = DEFAULT_LOG_DIR,
    endpoint: str = DEFAULT_ENDPOINT,
    locator: str | None = None,
    node_name: str | None = None,
    stdout: bool = False,
    ip_prefix: bool = True,
    max_pending: int = DEFAULT_MAX_PENDING,
    max_open_files: int = DEFAULT_MAX_OPEN,
    hourly: tuple[str, ...] = (),
    log_type: tuple[str, ...] = (),
    log_level: str = "INFO",
) -> None:
    """Run the log service until stopped (what ``k8stars log`` does). LogServiceError for bad options."""
    setup_logging(log_level)  # on stderr, so --stdout carries the records only
    options = LogServiceOptions(
        log_dir=log_dir, endpoint=endpoint, locator=locator or "", node_name=node_name or "", log_level=log_level,
        stdout=stdout, ip_prefix=ip_prefix, max_pending=max_pending, max_open=max_open_files, hourly=list(hourly),
        log_types=list(log_type),
    )  # fmt: skip
    await LogService(options).run()
