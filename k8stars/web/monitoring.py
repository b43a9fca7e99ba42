"""The console's view of the monitoring history: K8SFramework's ``MonitorQuery.query`` asked of
``tars.tarsquerystat.QueryObj`` and ``tars.tarsqueryproperty.QueryObj`` found through the registry (``--locator``),
as tarsweb asks them; the answers turned into rows (sums, rates in %, the change against another day) and small
curves drawn as SVG on the server (no JavaScript library). A day without data is empty rows, never an error."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup

from k8stars.tars.protocol.monitorquery import OP, Condition, MonitorQueryProxy, MonitorQueryReq
from k8stars.tars.rpc import Communicator

QUERYSTAT_OBJ, QUERYPROPERTY_OBJ = "tars.tarsquerystat.QueryObj", "tars.tarsqueryproperty.QueryObj"
STAT_INDEXS = ["succ_count", "timeout_count", "exce_count", "total_time"]
# what a call table may be grouped by (MonitorQuery's stat fields naming the other side or an address)
STAT_GROUPS = {"interface_name": "Function", "master_name": "Caller", "master_ip": "Caller IP",
               "slave_ip": "Server IP"}  # fmt: skip
TIMEOUT_MS = 5000
Reduce = Callable[[list[float]], float]
MINUTES = 1440


class MonitorUnavailable(Exception):
    """The query services cannot answer (no locator, not registered, a refused request); the message says why."""


class Monitor:
    """The query services through the registry; one Communicator for the console's life."""

    def __init__(self, locator: str) -> None:
        self.locator = locator
        self.comm = Communicator(locator=locator, sync_invoke_timeout=TIMEOUT_MS) if locator else None

    async def query(self, servant: str, req: MonitorQueryReq) -> dict[str, list[float]]:
        if self.comm is None:
            raise MonitorUnavailable("the console was started without --locator: it cannot find " + servant)
        proxy = self.comm.string_to_proxy(MonitorQueryProxy, servant).tars_options(timeout_ms=TIMEOUT_MS)
        try:
            ret, rsp = await proxy.query(req)
        except Exception as e:  # not registered, unreachable, timed out: the page says so
            raise MonitorUnavailable(f"{servant}: {e}") from None
        if ret != 0 or rsp.ret != 0:
            raise MonitorUnavailable(f"{servant} refused the query: {rsp.msg or ret}")
        return dict(rsp.result)

    async def close(self) -> None:
        if self.comm is not None:
            await self.comm.close()


def minute_of(tflag: str) -> int:
    """The minute of the day (0..1439) of an ``f_tflag`` (``HHMM``, the minute's end: ``0001`` is 00:00)."""
    hhmm = int(tflag)
    return max(0, min(MINUTES - 1, (hhmm // 100) * 60 + hhmm % 100 - 1))


@dataclass
class Totals:
    """Sums of the stat indexs (counts, total time in ms) over a group, on one day."""

    succ: float = 0.0
    timeout: float = 0.0
    exce: float = 0.0
    time_ms: float = 0.0

    def add(self, values: list[float]) -> None:
        self.succ += values[0]
        self.timeout += values[1]
        self.exce += values[2]
        self.time_ms += values[3]

    @property
    def calls(self) -> float:
        return self.succ + self.timeout + self.exce

    def rate(self, part: float) -> float | None:
        return part * 100.0 / self.calls if self.calls else None

    @property
    def timeout_rate(self) -> float | None:
        return self.rate(self.timeout)

    @property
    def exce_rate(self) -> float | None:
        return self.rate(self.exce)

    @property
    def avg_ms(self) -> float | None:
        return self.time_ms / self.calls if self.calls else None


@dataclass
class Series:
    """One group's numbers on the day shown and the comparison day: totals and calls per minute."""

    key: str
    day: Totals = field(default_factory=Totals)
    other: Totals = field(default_factory=Totals)
    day_minutes: dict[int, Totals] = field(default_factory=dict)
    other_minutes: dict[int, Totals] = field(default_factory=dict)

    @property
    def change(self) -> float | None:
        """Calls against the comparison day, in % (None when that day had none: nothing to compare with)."""
        if not self.other.calls:
            return None
        return (self.day.calls - self.other.calls) * 100.0 / self.other.calls

    def curve(self, bins: int = 96) -> Markup:
        return sparkline(calls_of(self.day_minutes), calls_of(self.other_minutes), bins=bins)


def calls_of(minutes: dict[int, Totals]) -> dict[int, float]:
    return {m: t.calls for m, t in minutes.items()}


def stat_series(day: dict[str, list[float]], other: dict[str, list[float]], until: int | None = None
                ) -> list[Series]:  # fmt: skip
    """Rows from two answers grouped by ``(group, f_tflag)`` (keys ``"<group>,<HHMM>"``); a group only the other
    day had still gets its row (its calls went to zero). ``until``: the last minute of a day still going on (today):
    the other day's totals count its minutes up to then only, so the change compares like with like (its curve is
    whole)."""
    rows: dict[str, Series] = {}
    for answer, is_day in ((day, True), (other, False)):
        for key, values in answer.items():
            group, _, tflag = key.rpartition(",")
            row = rows.setdefault(group, Series(group))
            m = minute_of(tflag)
            if is_day or until is None or m <= until:
                (row.day if is_day else row.other).add(values)
            minutes = row.day_minutes if is_day else row.other_minutes
            minutes.setdefault(m, Totals()).add(values)
    return list(rows.values())


def total(rows: Iterable[Series]) -> Series:
    """The server's row: every group summed."""
    out = Series("all")
    for row in rows:
        for mine, theirs in ((out.day, row.day), (out.other, row.other)):
            mine.add([theirs.succ, theirs.timeout, theirs.exce, theirs.time_ms])
        for mine_m, theirs_m in ((out.day_minutes, row.day_minutes), (out.other_minutes, row.other_minutes)):
            for m, t in theirs_m.items():
                mine_m.setdefault(m, Totals()).add([t.succ, t.timeout, t.exce, t.time_ms])
    return out


@dataclass
class Property:
    """One property (name and policy): its values summed per minute, on the day and the comparison day."""

    name: str
    policy: str
    day_minutes: dict[int, float] = field(default_factory=dict)
    other_minutes: dict[int, float] = field(default_factory=dict)

    @property
    def last(self) -> float | None:
        return self.day_minutes[max(self.day_minutes)] if self.day_minutes else None

    @property
    def peak(self) -> float | None:
        return max(self.day_minutes.values()) if self.day_minutes else None

    @property
    def other_peak(self) -> float | None:
        return max(self.other_minutes.values()) if self.other_minutes else None

    def curve(self, bins: int = 96) -> Markup:
        return sparkline(self.day_minutes, self.other_minutes, bins=bins, reduce=max)


def properties(day: dict[str, list[float]], other: dict[str, list[float]]) -> list[Property]:
    """Properties from two answers grouped by ``(property_name, policy, f_tflag)``."""
    rows: dict[tuple[str, str], Property] = {}
    for answer, is_day in ((day, True), (other, False)):
        for key, values in answer.items():
            rest, _, tflag = key.rpartition(",")
            name, _, policy = rest.rpartition(",")
            row = rows.setdefault((name, policy), Property(name, policy))
            (row.day_minutes if is_day else row.other_minutes)[minute_of(tflag)] = values[0]
    return sorted(rows.values(), key=lambda p: (p.name, p.policy))


SORTS: dict[str, Callable[[Series], Any]] = {
    "key": lambda s: s.key,
    "calls": lambda s: s.day.calls,
    "other": lambda s: s.other.calls,
    "change": lambda s: s.change if s.change is not None else float("-inf"),
    "timeout": lambda s: s.day.timeout_rate or 0.0,
    "exce": lambda s: s.day.exce_rate or 0.0,
    "avg": lambda s: s.day.avg_ms or 0.0,
}


def sort_rows(rows: list[Series], by: str, desc: bool) -> list[Series]:
    return sorted(rows, key=SORTS.get(by, SORTS["calls"]), reverse=desc)


def binned(minutes: dict[int, float], bins: int, reduce: Reduce = sum) -> list[float]:
    """Per-minute values into ``bins`` equal spans of the day (summed for calls; ``max`` for properties)."""
    per = MINUTES / bins
    spans: list[list[float]] = [[] for _ in range(bins)]
    for m, v in minutes.items():
        spans[min(bins - 1, int(m / per))].append(v)
    return [float(reduce(s)) if s else 0.0 for s in spans]


def sparkline(day: dict[int, float], other: dict[int, float], *, bins: int = 96, width: int = 160,
              height: int = 28, reduce: Reduce = sum) -> Markup:  # fmt: skip
    """An inline SVG: the day's curve over the comparison day's (dashed), one scale for both. Only numbers go
    into it, so it is safe as markup."""
    a, b = binned(day, bins, reduce), binned(other, bins, reduce)
    top = max([*a, *b, 0.0]) or 1.0

    def points(values: list[float]) -> str:
        step = width / (bins - 1)
        return " ".join(f"{i * step:.1f},{height - 1 - v / top * (height - 2):.1f}" for i, v in enumerate(values))

    lines = []
    if other:
        lines.append(f'<polyline class="other" vector-effect="non-scaling-stroke" points="{points(b)}"/>')
    if day:  # up to its last minute with data: a day still going on does not drop to zero at the end
        last = min(bins - 1, int(max(day) / (MINUTES / bins)))
        lines.append(f'<polyline class="day" vector-effect="non-scaling-stroke" points="{points(a[: last + 1])}"/>')
    return Markup(
        f'<svg class="curve" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'preserveAspectRatio="none" '
        f'aria-label="calls per minute">{"".join(lines)}</svg>'
    )


def stat_request(date: str, app_server: str, group: str) -> MonitorQueryReq:
    """The calls to ``app_server`` on ``date``, per ``group`` and minute (the callee's name: what tarsweb asks)."""
    return MonitorQueryReq(dataid="tars_stat", date=date, tflag1="0000", tflag2="2360",
                           conditions=[Condition("slave_name", OP.EQ, app_server)], indexs=list(STAT_INDEXS),
                           groupby=[group, "f_tflag"])  # fmt: skip


def property_request(date: str, app_server: str) -> MonitorQueryReq:
    return MonitorQueryReq(dataid="tars_property", date=date, tflag1="0000", tflag2="2360",
                           conditions=[Condition("master_name", OP.EQ, app_server)], indexs=["value"],
                           groupby=["property_name", "policy", "f_tflag"])  # fmt: skip
