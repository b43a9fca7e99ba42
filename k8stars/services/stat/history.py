"""The per-minute history of the reports (what tarsquerystat and tarsqueryproperty answer from), kept by the stat
service that receives them.

Reports are folded in memory into the current minute's series, as K8SFramework's StatServer and PropertyServer do:
``f_date`` is the local date (``YYYYMMDD``) and ``f_tflag`` the minute's end (``HHMM`` = hour * 100 + minute + 1,
so 10:05:xx is ``1006`` and 10:59:xx ``1060``). Every ``flush_interval`` seconds the series that changed are written
with their totals so far (see store.py: rewriting is idempotent); a minute is forgotten once it has ended and been
written. Stopping the service writes what is left, so a restart loses nothing it acknowledged; a write that fails
(the database restarting) is retried at the next flush, the minutes kept meanwhile bounded by ``MAX_PENDING_MINUTES``.

As upstream: calls to the framework's own stat, property, notify and node servers are not kept, nor entries whose
three counts are 0; a caller's ``name@version`` gives the version; a caller-side report's callee is cut to
``App.Server`` and its caller IP is the reporter's address, a callee-side report's callee IP likewise.

Properties per minute: Sum and Count are added up, Max and Min kept as such, Avg (``sum=count`` or a plain value)
averaged over the minute's reports; Distr is stored as 0 (as upstream); any other policy keeps its last value.

Bounds: ``max_series`` series per minute (more are dropped and counted), values cut at 128 characters, and
``retention_days`` days of rows (older ones deleted hourly).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter

from k8stars.service.lifecycle import cancel
from k8stars.services.stat.metrics import ReportError, check_body, parse_number
from k8stars.services.stat.store import PROPERTY, STAT, TEXT_LEN, HistoryStore, Row, Table, series_key
from k8stars.tars.protocol.propertyf import StatPropMsgBody, StatPropMsgHead
from k8stars.tars.protocol.statf import StatMicMsgBody, StatMicMsgHead

log = logging.getLogger("k8stars.services.stat")

FRAMEWORK_CALLEES = frozenset({"tars.tarsnode", "tars.tarsproperty", "tars.tarsstat", "tars.tarsnotify"})
DEFAULT_RETENTION_DAYS = 7
DEFAULT_HISTORY_SERIES = 20000
DEFAULT_FLUSH_INTERVAL = 5.0
MAX_PENDING_MINUTES = 10  # minutes held while the store cannot be written; older ones are dropped (and counted)
PRUNE_INTERVAL = 3600.0

Minute = tuple[str, str]  # (f_date, f_tflag)


def minute_of(epoch: float) -> Minute:
    """The (f_date, f_tflag) of a report received at ``epoch``, in local time as K8SFramework's servers date them."""
    t = time.localtime(epoch)
    return time.strftime("%Y%m%d", t), f"{t.tm_hour * 100 + t.tm_min + 1:04d}"


def callee_server(slave_name: str) -> str:
    """``App.Server`` of ``App.Server.Obj`` (a caller names the servant it called)."""
    parts = slave_name.split(".")
    return ".".join(parts[:2]) if len(parts) > 2 else slave_name


def _cut(text: str) -> str:
    return text[:TEXT_LEN]


@dataclass
class _Series:
    k: int  # store.series_key of its dimensions
    values: list[float]
    count: int = 0  # Avg: the reports averaged


@dataclass
class _MinuteData:
    series: dict[tuple[object, ...], _Series] = field(default_factory=dict)
    dirty: set[tuple[object, ...]] = field(default_factory=set)


@dataclass
class HistoryOptions:
    retention_days: int = DEFAULT_RETENTION_DAYS
    max_series: int = DEFAULT_HISTORY_SERIES  # per minute, calls and properties each
    flush_interval: float = DEFAULT_FLUSH_INTERVAL


class History:
    """The recorder: ``add_calls`` / ``add_properties`` from the servants, ``start`` / ``close`` with the service."""

    def __init__(self, store: HistoryStore, options: HistoryOptions, registry: CollectorRegistry,
                 clock: Callable[[], float] = time.time) -> None:  # fmt: skip
        self.store, self.options, self.clock = store, options, clock
        self.source = os.urandom(4).hex()  # this process's rows (a restarted one must not rewrite its predecessor's)
        self.pending: dict[Table, dict[Minute, _MinuteData]] = {STAT: {}, PROPERTY: {}}
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self.dropped = Counter("k8stars_stat_history_dropped", "Measurements not kept in the history (series cap, "
                               "store unavailable too long)", ["kind", "why"], registry=registry)  # fmt: skip
        self.written = Counter("k8stars_stat_history_rows_written", "History rows written", ["kind"],
                               registry=registry)  # fmt: skip
        self.errors = Counter("k8stars_stat_history_write_errors", "History flushes that failed (retried)",
                              registry=registry)  # fmt: skip

    # --- folding --------------------------------------------------------------------------------------------------
    def _minute(self, table: Table) -> _MinuteData:
        """The current minute's series of ``table`` (once per report: the clock is read once)."""
        return self.pending[table].setdefault(minute_of(self.clock()), _MinuteData())

    def _series(self, data: _MinuteData, table: Table, dims: tuple[object, ...], kind: str) -> _Series | None:
        s = data.series.get(dims)
        if s is None:
            if len(data.series) >= self.options.max_series:
                self.dropped.labels(kind, "max_series").inc()
                return None
            s = data.series[dims] = _Series(series_key(dims), [0.0] * len(table.values))
        data.dirty.add(dims)
        return s

    def add_calls(self, msg: dict[StatMicMsgHead, StatMicMsgBody], from_client: bool, peer: str) -> None:
        data = self._minute(STAT)
        for head, body in msg.items():
            if head.slaveName in FRAMEWORK_CALLEES or not (body.count or body.timeoutCount or body.execCount):
                continue
            try:
                check_body(body)
            except ReportError:
                continue  # StatMetrics counts and logs it
            master, _, version = head.masterName.partition("@")
            if version and master in FRAMEWORK_CALLEES:
                continue
            master_ip, slave_ip, slave = head.masterIp, head.slaveIp, head.slaveName
            if from_client:
                master_ip, slave = peer or master_ip, callee_server(slave)
            else:
                slave_ip = peer or slave_ip
            dims = (_cut(master), _cut(slave), _cut(head.interfaceName), _cut(master_ip), _cut(slave_ip),
                    head.slavePort, head.returnValue, _cut(version or head.tarsVersion))  # fmt: skip
            s = self._series(data, STAT, dims, "stat")
            if s is not None:
                for i, n in enumerate((body.count, body.timeoutCount, body.execCount, body.totalRspTime)):
                    s.values[i] += n

    def add_properties(self, msg: dict[StatPropMsgHead, StatPropMsgBody]) -> None:
        data = self._minute(PROPERTY)
        for head, body in msg.items():
            base = (_cut(head.moduleName), _cut(head.ip), _cut(head.propertyName), _cut(head.setName),
                    _cut(head.setArea), _cut(head.setID))  # fmt: skip
            for info in body.vInfo:
                try:
                    number = _policy_value(info.policy, info.value)
                except ReportError:
                    continue  # StatMetrics counts and logs it
                s = self._series(data, PROPERTY, (*base, _cut(info.policy)), "property")
                if s is not None:
                    _fold_policy(s, info.policy, number)

    # --- writing --------------------------------------------------------------------------------------------------
    async def flush(self) -> None:
        """Write every changed series; forget the minutes that have ended. A failure keeps them for the next try."""
        async with self._lock:
            now = minute_of(self.clock())
            for table, minutes in self.pending.items():
                rows: list[Row] = []
                series: dict[int, Row] = {}
                for (day, flag), data in sorted(minutes.items()):  # oldest first: a series keeps its newest day
                    for dims in data.dirty:
                        s = data.series[dims]
                        series[s.k] = (s.k, *dims, day)
                        rows.append((day, s.k, flag, self.source, *_stored(table, s)))
                try:
                    await self.store.write(table, list(series.values()), rows)
                except Exception as e:  # driver errors share no useful base; the data stays for the next flush
                    self.errors.inc()
                    log.warning("history: writing %d %s row(s) to %s failed (retried): %s", len(rows), table.name,
                                self.store.where, e)  # fmt: skip
                    self._bound(table, minutes)
                    continue
                self.written.labels(table.name).inc(len(rows))
                for minute in list(minutes):
                    minutes[minute].dirty.clear()
                    if minute != now:
                        del minutes[minute]

    def _bound(self, table: Table, minutes: dict[Minute, _MinuteData]) -> None:
        while len(minutes) > MAX_PENDING_MINUTES:
            oldest = min(minutes)
            self.dropped.labels("stat" if table is STAT else "property", "store_unavailable").inc(
                len(minutes.pop(oldest).series)
            )

    async def prune(self) -> int:
        cutoff = time.strftime("%Y%m%d", time.localtime(self.clock() - self.options.retention_days * 86400))
        gone = await self.store.prune(cutoff)
        if gone:
            log.info("history: %d row(s) older than %d day(s) deleted", gone, self.options.retention_days)
        return gone

    async def _run(self) -> None:
        last_prune = 0.0
        while True:
            await asyncio.sleep(self.options.flush_interval)
            await self.flush()
            if time.monotonic() - last_prune >= PRUNE_INTERVAL:
                last_prune = time.monotonic()
                try:
                    await self.prune()
                except Exception as e:  # retried next hour
                    log.warning("history: pruning %s failed: %s", self.store.where, e)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="stat-history")

    async def close(self) -> None:
        """Stop the flushes and write what is left (the service has stopped taking reports)."""
        if self._task is not None:
            await cancel(self._task)
            self._task = None
        with contextlib.suppress(Exception):  # logged by flush; nothing more to do on the way out
            await self.flush()


def _policy_value(policy: str, value: str) -> float:
    if not policy:
        raise ReportError("empty policy")
    if policy == "Distr":
        return 0.0
    if policy == "Avg" and "=" in value:  # TarsCpp's "sum=count"
        total, _, count = value.partition("=")
        n = parse_number(count)
        return parse_number(total) / n if n else parse_number(total)
    return parse_number(value)


def _fold_policy(s: _Series, policy: str, number: float) -> None:
    first = s.count == 0
    s.count += 1
    if policy in ("Sum", "Count"):
        s.values[0] += number
    elif policy == "Max":
        s.values[0] = number if first else max(s.values[0], number)
    elif policy == "Min":
        s.values[0] = number if first else min(s.values[0], number)
    elif policy == "Avg":
        s.values[0] += (number - s.values[0]) / s.count  # the running mean of the minute's reports
    else:
        s.values[0] = number


def _stored(table: Table, s: _Series) -> list[object]:
    if table is STAT:
        return [int(v) for v in s.values]
    return list(s.values)
