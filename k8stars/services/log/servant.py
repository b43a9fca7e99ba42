"""The Log servant (LogF): each call's records are named as TarsFramework's LogServer names them and queued for the
writer. A name that cannot be a file under the log directory is refused (TARSSERVERUNKNOWNERR with the reason) and
nothing is written."""

from __future__ import annotations

import time

from k8stars.services.log.naming import BadLogName, NamingRules, check_part, info_path, logger_path, time_suffix
from k8stars.services.log.traces import DAY_FORMAT, TRACE_FILE, TraceIndex, trace_path
from k8stars.services.log.writer import LogWriter
from k8stars.tars.errors import TarsRpcError
from k8stars.tars.protocol.logf import LogInfo, LogServant
from k8stars.tars.rpc import current
from k8stars.tars.untrusted import printable


def node_name() -> str:
    """Who sent the call, as TarsCpp's Current::getHostName: the context's node_name, else the peer's address
    (escaped: it starts every line the call writes, and must not start a forged one)."""
    cur = current()
    return printable(cur.context.get("node_name") or cur.peer_host)


class LogImp(LogServant):
    def __init__(self, writer: LogWriter, rules: NamingRules, *, ip_prefix: bool = True,
                 traces: TraceIndex | None = None) -> None:  # fmt: skip
        self.writer, self.rules, self.ip_prefix = writer, rules, ip_prefix
        self.traces = traces

    def _refuse(self, e: BadLogName) -> TarsRpcError:
        self.writer.counters.refused += 1
        self.writer.warn("refused", "log: refused a call from %s: %s", node_name(), e)
        return TarsRpcError(f"tars.tarslog: {e}")

    async def logger(self, app: str, server: str, file: str, format: str, buffer: list[str]) -> None:
        try:
            path = logger_path(app, server, file, format, time.time(), self.rules)
        except BadLogName as e:
            raise self._refuse(e) from None
        prefix = node_name() + "|" if self.ip_prefix else ""
        self.writer.add(path, buffer, prefix, f"{app}.{server}/{file}" if file else f"{app}.{server}")

    async def loggerbyInfo(self, info: LogInfo, buffer: list[str]) -> None:
        if info.sFilename == TRACE_FILE:
            return self._trace(info, buffer)
        try:
            path = info_path(info, time.time(), self.rules)
        except BadLogName as e:
            raise self._refuse(e) from None
        prefix = node_name() + info.sSepar if self.ip_prefix else ""
        app_server = f"{info.appname}.{info.servername}"
        self.writer.add(path, buffer, prefix, f"{app_server}/{info.sFilename}" if info.sFilename else app_server)

    def _trace(self, info: LogInfo, buffer: list[str]) -> None:
        """Trace records, as K8SFramework's LogServer keeps them: one file a day for every server,
        ``_tars_/_trace_/_tars_._trace___t_trace__YYYYMMDD.log``, each line ``[node|]app|server|record``; and
        into the call chain (TopologyObj)."""
        try:
            for what, value in (("app", info.appname), ("server", info.servername)):
                check_part(what, value)
                if "|" in value:  # it separates the fields of a trace line
                    raise BadLogName(f"{what} {value!r}: '|' is not allowed in a trace record's name")
        except BadLogName as e:
            raise self._refuse(e) from None
        day = time_suffix(DAY_FORMAT, time.time())
        head = f"{info.appname}|{info.servername}|"
        prefix = node_name() + "|" + head if self.ip_prefix else head
        self.writer.add(trace_path(day), buffer, prefix, f"{info.appname}.{info.servername}/{TRACE_FILE}")
        if self.traces is not None:
            self.traces.add(day, buffer)
