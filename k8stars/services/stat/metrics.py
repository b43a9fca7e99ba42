"""StatF and PropertyF reports folded into Prometheus series.

TARS reporters send deltas: every report interval (10 s by default) a client or server sends what happened since its
previous report, then starts again. Prometheus wants running totals, so each series here accumulates the deltas
(counters and histograms) or keeps the last value (gauges for Avg, Max, Min).

Call statistics (StatF.reportMicMsg) become, per caller, callee, function, source (client or server side), callee
set and TARS version (and, when asked, caller/callee IPs, callee port and return code):

* ``tars_rpc_calls_total{result=success|timeout|exception}`` from count / timeoutCount / execCount;
* ``tars_rpc_response_seconds`` a histogram built from intervalCount. TARS counts a call under the first time point
  p (ms) it is *below* (TarsGo and TarsCpp: 5, 10, 50, 100, 200, 500, 1000, 2000, 3000), and a call of 3000 ms or
  more under no point. Bucket ``le=p/1000`` is the cumulative count of the points up to p; because TARS's bound is
  strict and times are whole milliseconds, a call of exactly p ms sits in the next bucket (the buckets never
  over-count). A point that is not one of the nine is folded into the smallest of them above it (still a true
  upper bound); a point above 3000 only into ``+Inf``. ``+Inf`` and ``_count`` are count + timeoutCount +
  execCount (or the sum of the intervals if a reporter sent more of those), ``_sum`` is totalRspTime.

Properties (PropertyF.reportPropMsg), per server (moduleName), property and set (and IP when asked):

* ``tars_property_total{policy=Sum|Count}``: the reported Sums and Counts added up (counters: a negative one is
  refused);
* ``tars_property_value{policy=Avg|Max|Min|...}``: the last reported value (gauges; any policy that is not Sum, Count or
  Distr is kept this way);
* ``tars_property_distr_total{bucket}``: Distr's ``bound|count,...`` pairs added up per bound (counters: TARS's
  reporters do not agree on the bucket edges, so they are not presented as a histogram).

Memory is bounded by ``max_series`` (and label values are cut at 128 characters): a report that would create a
series beyond it is dropped, counted in ``k8stars_stat_dropped_series_total{kind}`` and logged (the first drop, then
every 1000th).
"""

from __future__ import annotations

import bisect
import logging
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from k8stars.tars.protocol.propertyf import StatPropMsgBody, StatPropMsgHead
from k8stars.tars.protocol.statf import StatMicMsgBody, StatMicMsgHead

log = logging.getLogger("k8stars.services.stat")

TIME_POINTS_MS = (5, 10, 50, 100, 200, 500, 1000, 2000, 3000)  # TarsGo's and TarsCpp's interval points
DEFAULT_MAX_SERIES = 20000
RESULTS = ("success", "timeout", "exception")
COUNTED_POLICIES = ("Sum", "Count")
LOG_EVERY = 1000  # after the first drop, one log line per this many
MAX_LABEL_LEN = 128  # as TarsCpp trims names it reports (127): bounds the memory of one series, whatever arrives


class ReportError(ValueError):
    """An entry of a report that cannot be a measurement (negative counts, a non-numeric value)."""


@dataclass
class StatOptions:
    max_series: int = DEFAULT_MAX_SERIES
    ip_labels: bool = False  # caller_ip, callee_ip, callee_port (one series per pod: off by default)
    ret_label: bool = False  # the return code (business codes can be many: off by default)


@dataclass(slots=True)
class CallSeries:
    results: list[int] = field(default_factory=lambda: [0, 0, 0])  # success, timeout, exception
    buckets: list[int] = field(default_factory=lambda: [0] * len(TIME_POINTS_MS))  # per point, not cumulative
    total: int = 0  # the +Inf bucket
    sum_ms: int = 0


def set_division(name: str, area: str, group: str) -> str:
    """``name.area.group`` of a TARS set, "" outside sets."""
    return f"{name}.{area}.{group}" if name else ""


def check_body(body: StatMicMsgBody) -> None:
    numbers = [body.count, body.timeoutCount, body.execCount, body.totalRspTime, *body.intervalCount.values()]
    if any(n < 0 for n in numbers) or any(p <= 0 for p in body.intervalCount):
        raise ReportError("negative count, time or interval point")


def _point_slot(point_ms: int) -> int | None:
    """The bucket a TARS interval point's count belongs to: the smallest standard point >= it; None above all."""
    slot = bisect.bisect_left(TIME_POINTS_MS, point_ms)
    return slot if slot < len(TIME_POINTS_MS) else None


def parse_distr(value: str) -> list[tuple[str, float]]:
    """Distr's ``bound|count,bound|count`` (TarsGo and TarsCpp) as (bound, count) pairs."""
    pairs: list[tuple[str, float]] = []
    for item in filter(None, value.split(",")):
        bound, sep, count = item.partition("|")
        if not sep or not bound.strip():
            raise ReportError(f"Distr item {item!r}: expected bound|count")
        pairs.append((bound.strip(), parse_number(count)))
    return pairs


def parse_number(text: str) -> float:
    try:
        n = float(text)
    except ValueError:
        raise ReportError(f"value {text!r} is not a number") from None
    if not math.isfinite(n):
        raise ReportError(f"value {text!r} is not finite")
    return n


class StatMetrics(Collector):
    """The accumulated series, the service's own counters, and the Prometheus registry that exposes both."""

    def __init__(self, options: StatOptions | None = None) -> None:
        self.options = options or StatOptions()
        self.calls: dict[tuple[str, ...], CallSeries] = {}
        self.prop_totals: dict[tuple[str, ...], float] = {}  # (server, property, set[, ip], policy)
        self.prop_gauges: dict[tuple[str, ...], float] = {}
        self.prop_distr: dict[tuple[str, ...], float] = {}  # (server, property, set[, ip], bucket)
        self._drops: dict[str, int] = {}  # what the dropped counter says, for the log line's rhythm
        r = self.registry = CollectorRegistry()
        self.reports = Counter("k8stars_stat_reports", "Reports received, by servant function", ["function"],
                               registry=r)  # fmt: skip
        self.dropped = Counter("k8stars_stat_dropped_series", "Measurements dropped: their series would pass "
                               "--max-series", ["kind"], registry=r)  # fmt: skip
        self.invalid = Counter("k8stars_stat_invalid_entries", "Report entries refused (negative counts, "
                               "non-numeric values)", ["kind"], registry=r)  # fmt: skip
        self.samples = Counter("k8stars_stat_samples", "reportSampleMsg entries received (not kept)", registry=r)
        series = Gauge("k8stars_stat_series", "Series held (the cap is --max-series)", registry=r)
        series.set_function(lambda: self.series_count)
        r.register(self)

    @property
    def series_count(self) -> int:
        return len(self.calls) + len(self.prop_totals) + len(self.prop_gauges) + len(self.prop_distr)

    def _admit(self, table: Mapping[tuple[str, ...], object], key: tuple[str, ...], kind: str) -> bool:
        """Whether ``key`` may be written: it exists, or a new series still fits under the cap."""
        if key in table or self.series_count < self.options.max_series:
            return True
        self.dropped.labels(kind).inc()
        n = self._drops[kind] = self._drops.get(kind, 0) + 1
        if n == 1 or n % LOG_EVERY == 0:
            log.warning("%s: %d measurement(s) dropped so far, %d series held (--max-series %d)", kind, n,
                        self.series_count, self.options.max_series)  # fmt: skip
        return False

    # --- StatF ----------------------------------------------------------------------------------------------------
    def call_labels(self) -> list[str]:
        names = ["caller", "callee", "function", "source", "callee_set", "tars_version"]
        if self.options.ip_labels:
            names += ["caller_ip", "callee_ip", "callee_port"]
        if self.options.ret_label:
            names.append("ret")
        return names

    def _call_key(self, head: StatMicMsgHead, from_client: bool) -> tuple[str, ...]:
        key = [head.masterName, head.slaveName, head.interfaceName, "client" if from_client else "server",
               set_division(head.slaveSetName, head.slaveSetArea, head.slaveSetID), head.tarsVersion]  # fmt: skip
        if self.options.ip_labels:
            key += [head.masterIp, head.slaveIp, str(head.slavePort)]
        if self.options.ret_label:
            key.append(str(head.returnValue))
        return tuple(v[:MAX_LABEL_LEN] for v in key)

    def add_calls(self, msg: dict[StatMicMsgHead, StatMicMsgBody], from_client: bool) -> int:
        """Fold one reportMicMsg in; returns how many entries were refused as invalid."""
        self.reports.labels("reportMicMsg").inc()
        refused = 0
        for head, body in msg.items():
            try:
                check_body(body)
            except ReportError as e:
                refused += 1
                self.invalid.labels("stat").inc()
                log.warning("reportMicMsg %s -> %s.%s: %s", head.masterName, head.slaveName, head.interfaceName, e)
                continue
            key = self._call_key(head, from_client)
            if not self._admit(self.calls, key, "stat"):
                continue
            self._fold(self.calls.setdefault(key, CallSeries()), body)
        return refused

    @staticmethod
    def _fold(series: CallSeries, body: StatMicMsgBody) -> None:
        for i, n in enumerate((body.count, body.timeoutCount, body.execCount)):
            series.results[i] += n
        in_intervals = 0
        for point, n in body.intervalCount.items():
            in_intervals += n
            slot = _point_slot(point)
            if slot is not None:
                series.buckets[slot] += n
        # +Inf is every call; a reporter whose intervals say more than its counts is believed on the larger number
        series.total += max(body.count + body.timeoutCount + body.execCount, in_intervals)
        series.sum_ms += body.totalRspTime

    # --- PropertyF ------------------------------------------------------------------------------------------------
    def prop_labels(self) -> list[str]:
        return ["server", "property", "set"] + (["ip"] if self.options.ip_labels else [])

    def _prop_key(self, head: StatPropMsgHead) -> tuple[str, ...]:
        key: tuple[str, ...] = (head.moduleName, head.propertyName)
        key = (*key, set_division(head.setName, head.setArea, head.setID))
        key = (*key, head.ip) if self.options.ip_labels else key
        return tuple(v[:MAX_LABEL_LEN] for v in key)

    def add_properties(self, msg: dict[StatPropMsgHead, StatPropMsgBody]) -> int:
        """Fold one reportPropMsg in; returns how many policy values were refused as invalid."""
        self.reports.labels("reportPropMsg").inc()
        refused = 0
        for head, body in msg.items():
            base = self._prop_key(head)
            for info in body.vInfo:
                try:
                    self._add_policy(base, info.policy, info.value)
                except ReportError as e:
                    refused += 1
                    self.invalid.labels("property").inc()
                    log.warning("reportPropMsg %s %s %s: %s", head.moduleName, head.propertyName, info.policy, e)
        return refused

    def _add_policy(self, base: tuple[str, ...], policy: str, value: str) -> None:
        if not policy:
            raise ReportError("empty policy")
        if policy == "Distr":
            for bound, count in parse_distr(value):
                if count < 0:
                    raise ReportError(f"Distr count {count} is negative")
                key = (*base, bound[:MAX_LABEL_LEN])
                if self._admit(self.prop_distr, key, "property"):
                    self.prop_distr[key] = self.prop_distr.get(key, 0.0) + count
            return
        number = parse_number(value)
        key = (*base, policy[:MAX_LABEL_LEN])
        if policy in COUNTED_POLICIES:
            if number < 0:  # a Prometheus counter never goes down: a negative delta would read as a reset
                raise ReportError(f"{policy} {value} is negative (kept as a counter)")
            if self._admit(self.prop_totals, key, "property"):
                self.prop_totals[key] = self.prop_totals.get(key, 0.0) + number
        elif self._admit(self.prop_gauges, key, "property"):
            self.prop_gauges[key] = number

    # --- exposition -----------------------------------------------------------------------------------------------
    def collect(self) -> Iterator[Metric]:
        labels = self.call_labels()
        calls = CounterMetricFamily("tars_rpc_calls", "TARS calls reported to StatF, by result", labels=[*labels,
                                    "result"])  # fmt: skip
        seconds = HistogramMetricFamily("tars_rpc_response_seconds", "Response times from StatF's interval counts "
                                        "(docs/stat.md: how TARS intervals map to buckets)", labels=labels)  # fmt: skip
        for key, s in self.calls.items():
            for result, n in zip(RESULTS, s.results, strict=True):
                calls.add_metric([*key, result], n)
            seconds.add_metric(list(key), self._buckets(s), s.sum_ms / 1000.0)
        yield calls
        yield seconds
        plabels = self.prop_labels()
        totals = CounterMetricFamily("tars_property", "Property Sum and Count values added up",
                                     labels=[*plabels, "policy"])  # fmt: skip
        for key, v in self.prop_totals.items():
            totals.add_metric(list(key), v)
        yield totals
        gauges = GaugeMetricFamily("tars_property_value", "Property values of other policies (Avg, Max, Min): the last "
                                   "reported", labels=[*plabels, "policy"])  # fmt: skip
        for key, v in self.prop_gauges.items():
            gauges.add_metric(list(key), v)
        yield gauges
        distr = CounterMetricFamily("tars_property_distr", "Property Distr counts added up per reported bound",
                                    labels=[*plabels, "bucket"])  # fmt: skip
        for key, v in self.prop_distr.items():
            distr.add_metric(list(key), v)
        yield distr

    @staticmethod
    def _buckets(s: CallSeries) -> list[tuple[str, float]]:
        out: list[tuple[str, float]] = []
        running = 0
        for point, n in zip(TIME_POINTS_MS, s.buckets, strict=True):
            running += n
            out.append((repr(point / 1000.0), running))
        out.append(("+Inf", max(s.total, running)))
        return out
