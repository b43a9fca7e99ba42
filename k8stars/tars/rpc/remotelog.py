"""Remote logging to ``tars.tarslog.LogObj`` (LogF.loggerbyInfo), as TarsGo's RemoteTimeWriter does: a standard
:class:`logging.Handler` whose records are sent in batches, every second or every ``BATCH`` lines::

    handler = app.remote_log_handler("access")     # App.Server_access_YYYYMMDD.log on the log server
    logging.getLogger("access").addHandler(handler)

The LogInfo is TarsGo's default one: day files (``%Y%m%d``), file name suffix and app-name prefix on, ``_`` between
the parts, ``|`` as separator. Lines are the records as this handler's formatter makes them (by default
``YYYY-mm-dd HH:MM:SS|LEVEL|message``), each ending in a newline as TarsGo's do (a classic log server writes the
buffer as it is).

Nothing ever waits for the log server: ``emit`` only queues (records from other threads are sent by the event loop's
next batch); at most ``queue_size`` lines wait, the rest are dropped and counted (``dropped``, logged once per
batch); a batch that cannot be sent is dropped and counted (``failed``). ``close()`` (Application.stop calls it)
sends what is left, bounded to one second.
"""

from __future__ import annotations

import collections
import logging
from typing import TYPE_CHECKING

from k8stars.tars.errors import TarsRpcError
from k8stars.tars.protocol.logf import LogInfo, LogProxy
from k8stars.tars.rpc.periodic import SEND_TIMEOUT_MS, Periodic

if TYPE_CHECKING:
    from k8stars.tars.rpc.proxy import Communicator

log = logging.getLogger("k8stars.tars.rpc")

BATCH = 2000  # lines per loggerbyInfo, TarsGo's remoteLogMaxNumOneTime
INTERVAL_S = 1.0  # TarsGo's remoteLogInterval
QUEUE_SIZE = 100_000
DEFAULT_FORMAT = logging.Formatter("%(asctime)s|%(levelname)s|%(message)s", "%Y-%m-%d %H:%M:%S")


class RemoteLogHandler(logging.Handler):
    def __init__(self, comm: Communicator, log_obj: str, app: str, server: str, file: str = "",
                 time_format: str = "%Y%m%d", set_division: str = "",
                 queue_size: int = QUEUE_SIZE) -> None:  # fmt: skip
        super().__init__()
        self.setFormatter(DEFAULT_FORMAT)
        self.comm, self.log_obj = comm, log_obj
        self.app, self.server, self.file = app, server, file
        self.time_format, self.set_division = time_format, set_division
        self.queue_size = queue_size
        self.pending: collections.deque[str] = collections.deque()  # appends are thread-safe
        self.dropped = self.failed = self.sent = 0
        self.periodic = Periodic(self.send, INTERVAL_S, "tars-remote-log")

    def emit(self, record: logging.LogRecord) -> None:
        if len(self.pending) >= self.queue_size:
            self.dropped += 1
            return
        try:
            self.pending.append(self.format(record) + "\n")  # a log server appends lines as sent, as TarsGo's are
        except Exception:
            self.handleError(record)
            return
        try:
            self.periodic.started()
        except RuntimeError:  # no running loop (another thread): the loop's next batch takes the line
            pass

    def queue_line(self, line: str) -> None:
        """Queue a line already formatted (ending in a newline), as ``emit`` does a record: trace records."""
        if len(self.pending) >= self.queue_size:
            self.dropped += 1
            return
        self.pending.append(line)
        self.periodic.started()

    def _info(self) -> LogInfo:
        return LogInfo(appname=self.app, servername=self.server, sFilename=self.file, sFormat=self.time_format,
                       setdivision=self.set_division, bHasSufix=True, bHasAppNamePrefix=True,
                       bHasSquareBracket=False, sConcatStr="_", sSepar="|")  # fmt: skip

    async def send(self) -> None:
        """Send what is queued, in batches of at most BATCH lines."""
        if self.dropped:
            log.warning("remote log %s: %d lines dropped (more than %d waiting)", self.file, self.dropped,
                        self.queue_size)  # fmt: skip
            self.dropped = 0
        while self.pending:
            lines = [self.pending.popleft() for _ in range(min(BATCH, len(self.pending)))]
            try:
                proxy = self.comm.string_to_proxy(LogProxy, self.log_obj).tars_options(timeout_ms=SEND_TIMEOUT_MS)
                await proxy.loggerbyInfo(self._info(), lines)
                self.sent += len(lines)
            except (TarsRpcError, ValueError) as e:
                self.failed += len(lines)
                log.debug("remote log to %s failed: %s", self.log_obj, e)

    async def aclose(self) -> None:
        """Stop the batches and send what is left (bounded)."""
        await self.periodic.close()
