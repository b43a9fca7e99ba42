"""Call statistics reported to ``tars.tarsstat.StatObj`` (StatF.reportMicMsg), as TarsCpp and TarsGo do.

Each finished call is counted under its StatMicMsgHead — caller module and IP, callee ``App.Server``, function,
callee IP and port, return code — as success, timeout or exception, with total/max/min response time and a count
per time interval. The intervals are TarsGo's points (5, 10, 50, 100, 200, 500, 1000, 2000, 3000 ms): a call
counts in the first point it is below; every point is present from the first call on; a call of 3 s or more counts in
none (so the stat service sees the same histogram a TarsGo client sends). Every ``report-interval`` the tallies go
out in one reportMicMsg(bFromClient=true) and start again; a failed report is dropped (logged at debug), as TarsGo
does, and the process never waits on it.

A server reports its own side too (bFromClient=false), as TarsGo's does: per function and return code, caller
``stat_from_server`` (``one_way_client`` for one-way calls), callee this server at its IP, a success or an exception
per request, timed from its arrival to its answer.

Memory is bounded: at most ``MAX_HEADS`` distinct heads are kept between reports; calls under new heads beyond
that are counted in ``dropped`` and logged once per report.
"""

from __future__ import annotations

import bisect
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from k8stars.tars.errors import TarsRpcError
from k8stars.tars.protocol.statf import StatFProxy, StatMicMsgBody, StatMicMsgHead
from k8stars.tars.rpc.periodic import SEND_TIMEOUT_MS, Periodic

if TYPE_CHECKING:
    from k8stars.tars.rpc.proxy import Communicator

log = logging.getLogger("k8stars.tars.rpc")

TIME_POINTS = (5, 10, 50, 100, 200, 500, 1000, 2000, 3000)  # ms, TarsGo's timePoint
MAX_HEADS = 10000

OK, TIMEOUT, EXCEPTION = 0, 1, 2


@dataclass(slots=True)
class Tally:
    count: int = 0
    timeouts: int = 0
    exceptions: int = 0
    total_ms: int = 0
    max_ms: int = 0
    min_ms: int = 0
    intervals: list[int] = field(default_factory=lambda: [0] * len(TIME_POINTS))

    def add(self, outcome: int, elapsed_ms: int) -> None:
        if outcome == OK:
            self.count += 1
        elif outcome == TIMEOUT:
            self.timeouts += 1
        else:
            self.exceptions += 1
        first = self.count + self.timeouts + self.exceptions == 1
        self.total_ms += elapsed_ms
        self.max_ms = max(self.max_ms, elapsed_ms)
        self.min_ms = elapsed_ms if first else min(self.min_ms, elapsed_ms)
        slot = bisect.bisect_right(TIME_POINTS, elapsed_ms)  # the first point the time is below
        if slot < len(TIME_POINTS):
            self.intervals[slot] += 1


def callee_of(servant: str) -> str:
    """``App.Server`` of ``App.Server.Obj`` (the slaveName TARS reports)."""
    parts = servant.split(".")
    return ".".join(parts[:2]) if len(parts) >= 2 else servant


class StatReporter:
    """One per communicator: ``record`` from the call path (cheap, no I/O), ``run`` reports periodically."""

    def __init__(self, comm: Communicator, stat_obj: str, module: str, master_ip: str, interval_s: float) -> None:
        self.comm = comm
        self.stat_obj = stat_obj
        self.module = module or "unknown"
        self.master_ip = master_ip
        self.tallies: dict[tuple[str, str, str, int, int], Tally] = {}
        self.served: dict[tuple[str, str, int], Tally] = {}  # (caller kind, function, return code), server side
        self.dropped = 0
        self.reported = 0  # reports sent (for tests and viewstatus)
        self.periodic = Periodic(self.flush, interval_s, "tars-stat-report")

    def record(self, servant: str, func: str, host: str, port: int, ret: int, outcome: int, elapsed_ms: int) -> None:
        if servant == self.stat_obj.split("@", 1)[0]:
            return  # the reports themselves are not counted
        key = (callee_of(servant), func, host, port, ret)
        tally = self.tallies.get(key)
        if tally is None:
            if len(self.tallies) >= MAX_HEADS:
                self.dropped += 1
                return
            tally = self.tallies[key] = Tally()
        tally.add(outcome, elapsed_ms)
        self.periodic.started()

    def record_served(self, func: str, oneway: bool, ret: int, elapsed_ms: int) -> None:
        key = ("one_way_client" if oneway else "stat_from_server", func, ret)
        tally = self.served.get(key)
        if tally is None:
            if len(self.served) >= MAX_HEADS:
                self.dropped += 1
                return
            tally = self.served[key] = Tally()
        tally.add(EXCEPTION if ret else OK, elapsed_ms)
        self.periodic.started()

    def _messages(self) -> tuple[dict[Any, Any], dict[Any, Any]]:
        """(the client side's report, the server side's report)."""

        def body(t: Tally) -> StatMicMsgBody:
            return StatMicMsgBody(count=t.count, timeoutCount=t.timeouts, execCount=t.exceptions,
                                  intervalCount=dict(zip(TIME_POINTS, t.intervals, strict=True)),
                                  totalRspTime=t.total_ms, maxRspTime=t.max_ms, minRspTime=t.min_ms)  # fmt: skip

        client = {StatMicMsgHead(masterName=self.module, slaveName=callee, interfaceName=func, masterIp=self.master_ip,
                                 slaveIp=host, slavePort=port, returnValue=ret): body(t)
                  for (callee, func, host, port, ret), t in self.tallies.items()}  # fmt: skip
        server = {StatMicMsgHead(masterName=caller, slaveName=self.module, interfaceName=func, masterIp="",
                                 slaveIp=self.master_ip, slavePort=0, returnValue=ret): body(t)
                  for (caller, func, ret), t in self.served.items()}  # fmt: skip
        return client, server

    async def flush(self) -> None:
        """Send what was counted since the last report, then start again (a failed report is dropped)."""
        if self.dropped:
            log.warning("stat: %d calls under more than %d distinct heads were not counted", self.dropped, MAX_HEADS)
            self.dropped = 0
        if not self.tallies and not self.served:
            return
        (client, server), self.tallies, self.served = self._messages(), {}, {}
        try:
            proxy = self.comm.string_to_proxy(StatFProxy, self.stat_obj).tars_options(timeout_ms=SEND_TIMEOUT_MS)
            for msg, from_client in ((client, True), (server, False)):
                if msg:
                    await proxy.reportMicMsg(msg, from_client)
            self.reported += 1
        except (TarsRpcError, ValueError) as e:
            log.debug("stat report to %s failed: %s", self.stat_obj, e)

    async def close(self) -> None:
        """Stop the loop and send what is left (bounded)."""
        await self.periodic.close()
