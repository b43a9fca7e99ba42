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
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

from k8stars.service.options import ServiceError, TarsServiceOptions
from k8stars.service.tars import TarsService, tars_adapter
from k8stars.services.log.naming import NamingRules, check_part
from k8stars.services.log.servant import LogImp
from k8stars.services.log.writer import DEFAULT_MAX_OPEN, DEFAULT_MAX_PENDING, LogWriter
from k8stars.tars.endpoint import Endpoint
from k8stars.tars.rpc import AdapterConfig

log = logging.getLogger("k8stars.services.log")

SERVER = "tarslog"
LOG_OBJ = "tars.tarslog.LogObj"
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

    error: ClassVar[type[ServiceError]] = LogServiceError

    @classmethod
    def from_cli(cls, *, max_open_files: int = DEFAULT_MAX_OPEN, hourly: tuple[str, ...] = (),
                 log_type: tuple[str, ...] = (), **given: Any) -> Self:  # fmt: skip
        return super().from_cli(max_open=max_open_files, hourly=list(hourly), log_types=list(log_type), **given)

    def parsed_endpoint(self) -> Endpoint:
        return self.parse_endpoint("--endpoint", self.endpoint, tcp=True)  # remote loggers call LogF over TCP

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
        self.adapter(LOG_OBJ).add_servant(LOG_OBJ, LogImp(self.writer, rules, ip_prefix=self.options.ip_prefix))
        await self.start_tars(parts)
        self.register(parts, self.options.locator, (SERVER, LOG_OBJ))

    async def _close_writer(self) -> None:
        """After the listener: the last calls' records are written too."""
        await self.writer.stop()
        log.info("log: %s", self.writer.counters)

    def describe(self) -> str:
        return f"{LOG_OBJ}@{self.endpoint}, files under {self.writer.root}"
