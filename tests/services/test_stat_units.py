"""StatMetrics without the network: how StatF and PropertyF reports become Prometheus series (the interval buckets,
the result counters, the property policies), the optional labels, the series cap and refused entries."""

from __future__ import annotations

import logging

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from k8stars.services.stat.metrics import ReportError, StatMetrics, StatOptions, parse_distr
from k8stars.tars.protocol.propertyf import StatPropInfo, StatPropMsgBody, StatPropMsgHead
from k8stars.tars.protocol.statf import StatMicMsgBody, StatMicMsgHead

Sample = tuple[str, dict[str, str], float]


def scrape(m: StatMetrics) -> list[Sample]:
    text = generate_latest(m.registry).decode()
    return [(s.name, s.labels, s.value) for f in text_string_to_metric_families(text) for s in f.samples]


def value(samples: list[Sample], name: str, **labels: str) -> float:
    found = [v for n, ls, v in samples if n == name and all(ls.get(k) == x for k, x in labels.items())]
    assert len(found) == 1, f"{name} {labels}: {len(found)} samples"
    return found[0]


def head(function: str = "echo", ret: int = 0, **kw: str | int) -> StatMicMsgHead:
    fields: dict[str, str | int] = {"masterName": "Test.Client", "slaveName": "Test.EchoServer",
                                     "interfaceName": function, "masterIp": "127.0.0.5", "slaveIp": "127.0.0.6",
                                     "slavePort": 20001, "returnValue": ret, "tarsVersion": "1.4.5"}  # fmt: skip
    return StatMicMsgHead(**{**fields, **kw})  # type: ignore[arg-type]


def body(ok: int = 0, timeout: int = 0, exc: int = 0, intervals: dict[int, int] | None = None,
         total_ms: int = 0) -> StatMicMsgBody:  # fmt: skip
    return StatMicMsgBody(count=ok, timeoutCount=timeout, execCount=exc, intervalCount=intervals or {},
                          totalRspTime=total_ms, maxRspTime=0, minRspTime=0)  # fmt: skip


def test_results_and_histogram_from_tars_intervals() -> None:
    m = StatMetrics()
    # as TarsGo sends it: every point present, a call counted under the first point it is below
    points = dict.fromkeys((5, 10, 50, 100, 200, 500, 1000, 2000, 3000), 0)
    m.add_calls({head(): body(ok=3, exc=1, intervals={**points, 5: 2, 100: 1}, total_ms=60)}, True)
    # a second interval: deltas add up; a call of 3 s or more is in no interval, only in +Inf
    m.add_calls({head(): body(ok=1, timeout=1, intervals={**points, 10: 1}, total_ms=3008)}, True)
    s = scrape(m)
    labels = {"caller": "Test.Client", "callee": "Test.EchoServer", "function": "echo", "source": "client",
              "tars_version": "1.4.5", "callee_set": ""}  # fmt: skip
    assert value(s, "tars_rpc_calls_total", result="success", **labels) == 4
    assert value(s, "tars_rpc_calls_total", result="timeout", **labels) == 1
    assert value(s, "tars_rpc_calls_total", result="exception", **labels) == 1
    bucket = {le: value(s, "tars_rpc_response_seconds_bucket", le=le, **labels)
              for le in ("0.005", "0.01", "0.05", "0.1", "0.2", "3.0", "+Inf")}  # fmt: skip
    assert bucket == {"0.005": 2, "0.01": 3, "0.05": 3, "0.1": 4, "0.2": 4, "3.0": 4, "+Inf": 6}
    assert value(s, "tars_rpc_response_seconds_count", **labels) == 6
    assert value(s, "tars_rpc_response_seconds_sum", **labels) == pytest.approx(3.068)
    assert not [ls for n, ls, _ in s if n == "tars_rpc_calls_total" and "callee_ip" in ls]  # IPs off by default


def test_points_outside_the_standard_set_and_server_side_reports() -> None:
    m = StatMetrics()
    # 7 ms is not a standard point: its calls are below 7, hence below 10; 5000 is above all: +Inf only
    m.add_calls({head(): body(ok=4, intervals={7: 1, 5000: 2, 10: 1})}, False)
    s = scrape(m)
    assert value(s, "tars_rpc_response_seconds_bucket", le="0.005", source="server") == 0
    assert value(s, "tars_rpc_response_seconds_bucket", le="0.01", source="server") == 2
    assert value(s, "tars_rpc_response_seconds_bucket", le="3.0", source="server") == 2
    assert value(s, "tars_rpc_response_seconds_bucket", le="+Inf", source="server") == 4


def test_optional_ip_and_return_code_labels_and_sets() -> None:
    m = StatMetrics(StatOptions(ip_labels=True, ret_label=True))
    m.add_calls({head(ret=-7, slaveSetName="sz", slaveSetArea="a", slaveSetID="1"): body(timeout=1)}, True)
    s = scrape(m)
    assert value(s, "tars_rpc_calls_total", result="timeout", caller_ip="127.0.0.5", callee_ip="127.0.0.6",
                 callee_port="20001", ret="-7", callee_set="sz.a.1") == 1  # fmt: skip


def test_properties_by_policy() -> None:
    m = StatMetrics()
    h = StatPropMsgHead(moduleName="Test.EchoServer", ip="127.0.0.6", propertyName="queue")
    infos = [StatPropInfo("Sum", "10"), StatPropInfo("Count", "2"), StatPropInfo("Avg", "5"), StatPropInfo("Max", "9"),
             StatPropInfo("Min", "1"), StatPropInfo("Distr", "0|0,10|2,100|0")]  # fmt: skip
    assert m.add_properties({h: StatPropMsgBody(infos)}) == 0
    assert m.add_properties({h: StatPropMsgBody([StatPropInfo("Sum", "5"), StatPropInfo("Max", "3"),
                                                 StatPropInfo("Distr", "10|1")])}) == 0  # fmt: skip
    s = scrape(m)
    base = {"server": "Test.EchoServer", "property": "queue", "set": ""}
    assert value(s, "tars_property_total", policy="Sum", **base) == 15
    assert value(s, "tars_property_total", policy="Count", **base) == 2
    assert value(s, "tars_property_value", policy="Avg", **base) == 5
    assert value(s, "tars_property_value", policy="Max", **base) == 3  # the last interval's, not a running max
    assert value(s, "tars_property_value", policy="Min", **base) == 1
    assert value(s, "tars_property_distr_total", bucket="10", **base) == 3
    assert value(s, "tars_property_distr_total", bucket="100", **base) == 0


def test_refused_entries_are_counted_and_the_rest_kept(caplog: pytest.LogCaptureFixture) -> None:
    m = StatMetrics()
    assert m.add_calls({head("bad"): body(ok=-1), head("good"): body(ok=1)}, True) == 1
    h = StatPropMsgHead(moduleName="A.B", ip="", propertyName="p")
    bad = [StatPropInfo("Avg", "abc"), StatPropInfo("Distr", "10"), StatPropInfo("", "1"), StatPropInfo("Sum", "-1"),
           StatPropInfo("Sum", "2")]  # fmt: skip
    assert m.add_properties({h: StatPropMsgBody(bad)}) == 4
    s = scrape(m)
    assert value(s, "k8stars_stat_invalid_entries_total", kind="stat") == 1
    assert value(s, "k8stars_stat_invalid_entries_total", kind="property") == 4
    assert value(s, "tars_rpc_calls_total", function="good", result="success") == 1
    assert not [ls for n, ls, _ in s if n == "tars_rpc_calls_total" and ls["function"] == "bad"]
    assert value(s, "tars_property_total", policy="Sum") == 2
    assert "'abc' is not a number" in caplog.text


def test_series_cap_drops_new_series_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    m = StatMetrics(StatOptions(max_series=3))
    with caplog.at_level(logging.WARNING, "k8stars.services.stat"):
        m.add_calls({head(f"f{i}"): body(ok=1) for i in range(5)}, True)
        m.add_calls({head("f0"): body(ok=1)}, True)  # an existing series still counts
    s = scrape(m)
    assert m.series_count == 3
    assert value(s, "k8stars_stat_series") == 3
    assert value(s, "k8stars_stat_dropped_series_total", kind="stat") == 2
    assert value(s, "tars_rpc_calls_total", function="f0", result="success") == 2
    assert "dropped" in caplog.text and "--max-series 3" in caplog.text


def test_label_values_are_bounded() -> None:
    m = StatMetrics()
    m.add_calls({head("f" * 5000): body(ok=1)}, True)
    assert value(scrape(m), "tars_rpc_calls_total", result="success", function="f" * 128) == 1


def test_parse_distr() -> None:
    assert parse_distr("0|1, 10|2") == [("0", 1.0), ("10", 2.0)]
    assert parse_distr("") == []
    with pytest.raises(ReportError, match=r"expected bound\|count"):
        parse_distr("10-2")
