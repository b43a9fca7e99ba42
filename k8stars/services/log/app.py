"""``k8stars log``: the remote log service as a process.

One listener (``--endpoint``) serves ``tars.tarslog.LogObj``, ``tars.tarslog.TopologyObj`` (the call chain built
from the ``_t_trace_`` records, see ``topology``) and ``AdminObj`` (the usual ``tars.*`` commands, plus
``tars.logstat``: the counters). Records are written under ``--log-dir`` with TarsFramework LogServer's names
(see ``naming``), optionally echoed to stdout (``--stdout``) for ``kubectl logs``. With ``--locator`` the service
registers itself as application ``tars``, server ``tarslog``, so every server's ``log=tars.tarslog.LogObj``
resolves by name.
"""

from __future__ import annotations

import logging
import sys
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Self

from prometheus_client import CollectorRegistry

from k8stars.service.bearer import TokenFile
from k8stars.service.http import metrics_app, serve_http
from k8stars.service.options import ServiceError, TarsServiceOptions
from k8stars.service.tars import TarsService, tars_adapter
from k8stars.services.log.files import add_routes
from k8stars.services.log.naming import NamingRules, check_part
from k8stars.services.log.servant import LogImp
from k8stars.services.log.topology import TopologyImp
from k8stars.services.log.traces import TraceIndex
from k8stars.services.log.writer import DEFAULT_MAX_OPEN, DEFAULT_MAX_PENDING, LogWriter
from k8stars.tars.endpoint import Endpoint
from k8stars.tars.rpc import AdapterConfig

log = logging.getLogger("k8stars.services.log")

SERVER = "tarslog"
LOG_OBJ = "tars.tarslog.LogObj"
TOPOLOGY_OBJ = "tars.tarslog.TopologyObj"  # the call chain, on LogObj's listener
DEFAULT_ENDPOINT = "tcp -h 127.0.0.1 -p 10005 -t 60000"  # LogObj's port in a classic TARS install
DEFAULT_LOG_DIR = "/usr/local/app/tars/remote_app_log"  # TarsFramework's logpath of tarslog


class LogServiceError(ServiceError):
    """An option that cannot work; the message names it."""


@dataclass(kw_only=True)
class LogServiceOptions(TarsServiceOptions):
    log_dir: str = DEFAULT_LOG_DIR
    endpoint: str = DEFAULT_ENDPOINT
    stdout: bool = False  # also one line per record on stdout
    ip_prefix: bool = True  # TarsFramework's <log> ipfix: each line starts with the sender's node name
    max_pending: int = DEFAULT_MAX_PENDING
    max_open: int = DEFAULT_MAX_OPEN
    hourly: list[str] = field(default_factory=list)  # App.Server written hourly (%Y%m%d%H)
    log_types: list[str] = field(default_factory=list)  # App.Server.file=TYPE ([N]day, [N]hour, [N]minute)
    http_host: str = "127.0.0.1"
    http_port: int = -1  # the files' HTTP view for the console (files.py), /metrics, /healthz; -1: none
    http_token_file: str = ""  # the bearer token that view asks for (a mounted Secret); empty: an open view

    error: ClassVar[type[ServiceError]] = LogServiceError

    @classmethod
    def from_cli(cls, *, max_open_files: int = DEFAULT_MAX_OPEN, hourly: tuple[str, ...] = (),
                 log_type: tuple[str, ...] = (), **given: Any) -> Self:  # fmt: skip
        return super().from_cli(max_open=max_open_files, hourly=list(hourly), log_types=list(log_type), **given)

    def parsed_endpoint(self) -> Endpoint:
        return self.parse_endpoint("--endpoint", self.endpoint, tcp=True)  # remote loggers call LogF over TCP

    def http_token(self) -> TokenFile | None:
        """The token the files view asks for (``--http-token-file``), None for an open view."""
        return TokenFile(self.http_token_file, "--http-token-file") if self.http_token_file else None

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
        super().check()
        if not -1 <= self.http_port <= 65535:
            raise LogServiceError(f"--http-port {self.http_port}: expected 0..65535 (or -1 for none)")
        if self.http_token_file:
            if self.http_port < 0:
                raise LogServiceError("--http-token-file needs --http-port (the files view it closes)")
            try:
                TokenFile(self.http_token_file, "--http-token-file").read()
            except (OSError, ValueError) as e:
                raise LogServiceError(str(e)) from None
        self.parsed_endpoint()
        self.rules()
        try:
            for item in self.hourly:
                for part in item.split("."):
                    check_part("--hourly", part)
        except ValueError as e:  # a BadLogName
            raise LogServiceError(str(e)) from None


class LogService(TarsService[LogServiceOptions]):
    """Writer, LogObj + AdminObj listener and self-registration, started and stopped as one."""

    name, server = "log", SERVER

    def __init__(self, options: LogServiceOptions) -> None:
        super().__init__(options)
        self.writer = LogWriter(options.log_dir, max_pending=options.max_pending, max_open=options.max_open,
                                stdout=sys.stdout if options.stdout else None)  # fmt: skip
        self.traces = TraceIndex(options.log_dir)
        self.http_port = 0
        self.app.register_admin_command("tars.logstat", self._stat, "the log service's counters")

    def adapters(self) -> list[AdapterConfig]:
        return [tars_adapter(LOG_OBJ, self.options.parsed_endpoint())]

    def _stat(self, _command: str, _params: str) -> str:
        w = self.writer
        return f"{w.root}: {w.counters}, pending {w.pending_bytes} bytes, open files {w.open_files}"

    @property
    def endpoint(self) -> Endpoint:
        return self.app.adapter_endpoint(LOG_OBJ)

    async def open(self, parts: AsyncExitStack) -> None:
        try:
            self.writer.start()
        except OSError as e:
            raise OSError(e.errno, f"--log-dir {self.options.log_dir}: {e.strerror or e}") from None
        parts.push_async_callback(self._close_writer)
        rules = self.options.rules()
        logs = LogImp(self.writer, rules, ip_prefix=self.options.ip_prefix, traces=self.traces)
        self.adapter(LOG_OBJ).add_servant(LOG_OBJ, logs)
        self.adapter(LOG_OBJ).add_servant(TOPOLOGY_OBJ, TopologyImp(self.traces))
        await self.start_tars(parts)
        if self.options.http_port >= 0:
            app = metrics_app(CollectorRegistry(), lambda: f"log dir {self.writer.root}")
            add_routes(app, Path(self.options.log_dir), self.options.http_token())
            self.http_port = await serve_http(parts, app, self.options.http_host, self.options.http_port)
            if not self.options.http_token_file:
                log.warning("the files view on %s:%d is open (no --http-token-file): whoever reaches it reads "
                            "every server's logs", self.options.http_host, self.http_port)  # fmt: skip
        self.register(parts, self.options.locator, (SERVER, LOG_OBJ), (SERVER, TOPOLOGY_OBJ))

    async def _close_writer(self) -> None:
        """After the listener: the last calls' records are written too."""
        await self.writer.stop()
        log.info("log: %s", self.writer.counters)

    def describe(self) -> str:
        return f"{LOG_OBJ} and {TOPOLOGY_OBJ}@{self.endpoint}, files under {self.writer.root}"
