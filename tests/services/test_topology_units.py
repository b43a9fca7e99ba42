"""TopologyObj's answers from trace records, without processes: the record parser (TarsGo's and TarsCpp's lines,
with or without the log file's node|app|server head), K8SFramework's aggregation (roots, children, the four times,
depth), graphs by shape, the lists and their filters; the trace key's flags and parameter limits; bad input."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from k8stars.services.log.app import LOG_OBJ, TOPOLOGY_OBJ, LogService, LogServiceOptions
from k8stars.services.log.topology import TopologyImp
from k8stars.services.log.traces import MAX_SPANS, TraceIndex, parse_record, trace_path
from k8stars.tars.errors import TarsRpcError
from k8stars.tars.protocol.logf import LogInfo, LogProxy
from k8stars.tars.protocol.topology import TopologyProxy
from k8stars.tars.rpc import Communicator, trace
from k8stars.testing.procs import free_port

DAY = "20240501"
T1, T2 = "f-" + "1" * 32, "f-" + "2" * 32


def chain(tid: str, t0: int, front_ret: int = 0) -> list[str]:
    """Client -> Test.A.AObj.call -> Test.B.BObj.get, as TarsGo writes the records (date prefix, base64 data)."""
    return [
        f"2024-05-01 10:00:00|{tid}|s1|s1|cs|Test.Client|Test.A.AObj|call|{t0}|0|e30=|",
        f"2024-05-01 10:00:00|{tid}|s1|*|sr|Test.A|Test.A.AObj|call|{t0 + 1}|0||",
        f"2024-05-01 10:00:00|{tid}|s2|s1|cs|Test.A|Test.B.BObj|get|{t0 + 2}|0||",
        f"2024-05-01 10:00:00|{tid}|s2|*|sr|Test.B|Test.B.BObj|get|{t0 + 3}|0||",
        f"2024-05-01 10:00:00|{tid}|s2|*|ss|Test.B|Test.B.BObj|get|{t0 + 5}|0||",
        f"2024-05-01 10:00:00|{tid}|s2|s1|cr|Test.A|Test.B.BObj|get|{t0 + 6}|0||",
        f"2024-05-01 10:00:00|{tid}|s1|*|ss|Test.A|Test.A.AObj|call|{t0 + 8}|{front_ret}||",
        f"2024-05-01 10:00:00|{tid}|s1|s1|cr|Test.Client|Test.A.AObj|call|{t0 + 9}|{front_ret}||",
    ]


def topology(tmp_path: Path, *records: str) -> TopologyImp:
    index = TraceIndex(tmp_path)
    index.add(DAY, list(records))
    return TopologyImp(index)


def test_records_from_every_writer_parse_the_same() -> None:
    go = parse_record("2024-05-01 10:00:00|t|s|p|cs|M|S|f|1700000000000|0|eyJhIjoxfQ==|")
    cpp = parse_record('t|s|p|cs|M|S|f|1700000000000|0|{"a":"x|y"}|')  # raw JSON with a '|' inside
    line = parse_record("10.0.0.7|App|Server|2024-05-01 10:00:00|t|s|p|cs|M|S|f|1700000000000|-1|d|ex\n")
    assert go is not None and cpp is not None and line is not None
    assert (go.trace, go.span, go.parent, go.type, go.master, go.slave, go.function, go.time, go.ret) == (
        "t", "s", "p", "cs", "M", "S", "f", 1700000000000, "0")  # fmt: skip
    assert go.data == "eyJhIjoxfQ==" and cpp.data == '{"a":"x|y"}' and (line.data, line.ret) == ("d", "-1")
    for junk in ("", "no record here", "a|b|c|cs|M|S|f|notatime|0|d|", "|s|p|cs|M|S|f|1|0|d|"):
        assert parse_record(junk) is None, junk


async def test_graph_trace_as_k8sframework(tmp_path: Path) -> None:
    topo = topology(tmp_path, *chain(T1, 1000))
    ret, g = await topo.graphTrace(DAY, T1)
    assert ret == 0
    # the opener with the whole time, each function with its server's time (ss - sr)
    assert [(v.vertex, v.callCount, v.callTime) for v in g.vs] == [
        ("Test.A.AObj.call", 1, 7), ("Test.B.BObj.get", 1, 2), ("Test.Client", 1, 9)]  # fmt: skip
    # each call with its client's time (cr - cs), depth, span and four times
    assert [(e.fromVertex, e.toVertex, e.order, e.callCount, e.callTime, e.spanId) for e in g.es] == [
        ("Test.Client", "Test.A.AObj.call", 1, 1, 9, "s1"),
        ("Test.A.AObj.call", "Test.B.BObj.get", 2, 1, 4, "s2"),
    ]
    assert (g.es[0].csTime, g.es[0].srTime, g.es[0].ssTime, g.es[0].crTime) == (1000, 1001, 1008, 1009)
    assert g.es[0].csData == "e30=" and g.es[0].ret == "0"


async def test_an_incomplete_call_is_shown_but_not_counted(tmp_path: Path) -> None:
    records = [r for r in chain(T1, 1000) if "|ss|Test.B" not in r]  # the back server's answer never logged
    _, g = await topology(tmp_path, *records).graphTrace(DAY, T1)
    assert [(v.vertex, v.callCount) for v in g.vs] == [("Test.A.AObj.call", 1), ("Test.B.BObj.get", 0),
                                                       ("Test.Client", 1)]  # fmt: skip
    assert g.es[1].ssTime == 0 and g.es[1].callCount == 1  # the client side of that call is complete


async def test_graphs_group_traces_of_one_shape(tmp_path: Path) -> None:
    third = [r.replace("Test.B.BObj|get", "Test.C.CObj|get") for r in chain("0-" + "3" * 32, 3000)]
    topo = topology(tmp_path, *chain(T1, 1000), *chain(T2, 2000), *third)
    ret, graphs = await topo.graphServer(DAY, "Test.A.AObj")
    assert ret == 0 and len(graphs) == 2  # A -> B twice, A -> C once
    by_b = next(g for g in graphs if any(v.vertex == "Test.B.BObj" for v in g.vs))
    assert [(v.vertex, v.callCount, v.callTime) for v in by_b.vs] == [
        ("Test.A.AObj", 2, 14), ("Test.B.BObj", 2, 4), ("Test.Client", 2, 18)]  # fmt: skip
    assert [(e.fromVertex, e.toVertex, e.callCount, e.callTime) for e in by_b.es] == [
        ("Test.Client", "Test.A.AObj", 2, 18), ("Test.A.AObj", "Test.B.BObj", 2, 8)]  # fmt: skip
    assert len((await topo.graphServer(DAY, "Test.C"))[1]) == 1  # a module names its servants' vertices too
    assert len((await topo.graphFunction(DAY, "Test.A.AObj.call"))[1]) == 2
    assert len((await topo.graphFunction(DAY, "Test.C.CObj.get"))[1]) == 1
    assert (await topo.listFunction(DAY, "Test.A"))[1] == ["Test.A.AObj.call"]
    every = ["Test.A.AObj.call", "Test.B.BObj.get", "Test.C.CObj.get", "Test.Client"]  # the opener is a vertex too
    assert (await topo.listFunction(DAY, "Test"))[1] == every


async def test_lists_filter_by_server_and_time(tmp_path: Path) -> None:
    topo = topology(tmp_path, *chain(T1, 1000), *chain(T2, 2000))
    assert (await topo.listTrace(DAY, "Test.B"))[1] == [T1, T2]  # by start time
    assert (await topo.listTrace(DAY, "Test.Client"))[1] == [T1, T2]  # the caller's module
    assert (await topo.listTrace(DAY, "Test.Nobody"))[1] == []
    ret, ss = await topo.listTraceSummary(DAY, 0, 10_000, "Test.B.BObj")
    assert ret == 0 and [(s.name, s.startTime, s.endTime) for s in ss] == [(T2, 2000, 2009), (T1, 1000, 1009)]
    assert [s.name for s in (await topo.listTraceSummary(DAY, 1500, 2500, "Test.A"))[1]] == [T2]


async def test_bad_dates_and_unknown_traces(tmp_path: Path) -> None:
    topo = topology(tmp_path, *chain(T1, 1000))
    assert (await topo.graphTrace("2024-05-01", T1))[1].es  # the form TarsWeb sends some operations
    for date in ("2024/05/01", "../../etc", "", "2024050", "2024-0501"):
        assert (await topo.graphTrace(date, T1))[0] == -1
        assert (await topo.listTrace(date, "Test.A"))[0] == -1
        assert (await topo.graphServer(date, "Test.A"))[0] == -1
    ret, g = await topo.graphTrace(DAY, "f-unknown")
    assert ret == 0 and g.vs == [] and g.es == []
    assert (await topo.listTrace("20000101", "Test.A")) == (0, [])  # a day with no file


async def test_a_day_is_read_back_from_its_file(tmp_path: Path) -> None:
    path = tmp_path.joinpath(*trace_path(DAY))
    path.parent.mkdir(parents=True)
    path.write_text("".join(f"10.0.0.7|Test|A|{r}\n" for r in chain(T1, 1000)) + "a line that is no record\n")
    _, g = await TopologyImp(TraceIndex(tmp_path)).graphTrace(DAY, T1)
    assert [e.toVertex for e in g.es] == ["Test.A.AObj.call", "Test.B.BObj.get"]


def test_a_trace_is_bounded(tmp_path: Path) -> None:
    index = TraceIndex(tmp_path)
    index.add(DAY, [f"{T1}|s{i}|s0|cs|M|S|f|{i + 1}|0||" for i in range(MAX_SPANS + 50)])
    assert len(index.day(DAY).traces[T1].spans) == MAX_SPANS


@pytest.mark.parametrize(
    ("trace_id", "flags", "max_bytes"),
    [
        ("f-abc", 15, 1024),
        ("5.8-abc", 5, 8192),
        ("0-abc", 0, 1024),
        ("abc", 0, 1024),
        ("zz-abc", 0, 1024),
        ("1f-abc", 0, 1024),
    ],
)
def test_trace_id_flags_as_tarsgo(trace_id: str, flags: int, max_bytes: int) -> None:
    span = trace.Span(trace_id)
    assert (span.flags, span.max_bytes) == (flags, max_bytes)


def test_trace_keys_and_ids() -> None:
    assert trace.span_from_key("f-abc|s1") == trace.Span("f-abc", "s1")
    assert trace.span_from_key("f-abc|s1|s2") == trace.Span("f-abc", "s1")  # TarsGo's 3-part form
    assert trace.span_from_key("") is None and trace.span_from_key("a|b|c|d") is None
    tid = trace.new_trace_id(params=True, max_kb=4)
    assert tid.startswith("f.4-") and len(tid) == 4 + 32
    with trace.open_trace() as opened:
        assert trace.active() == trace.Span(opened) and opened.startswith("0-")
    assert trace.active() is None


async def test_trace_records_through_logf(tmp_path: Path) -> None:
    """loggerbyInfo with file _t_trace_: K8SFramework's trace file (node|app|server|record), into the chain at once;
    a name with '|' (it would shift the fields) is refused and nothing is written."""
    svc = LogService(LogServiceOptions(log_dir=str(tmp_path), endpoint=f"tcp -h 127.0.0.1 -p {free_port()}"))
    await svc.start()
    try:
        async with Communicator() as comm:
            at = f"@tcp -h 127.0.0.1 -p {svc.endpoint.port}"
            logf = comm.string_to_proxy(LogProxy, LOG_OBJ + at)
            info = LogInfo(appname="Test", servername="Client", sFilename="_t_trace_", sFormat="%Y%m%d")
            await logf.loggerbyInfo(info, [r + "\n" for r in chain(T1, 1000)])
            with pytest.raises(TarsRpcError, match=r"'\|' is not allowed"):
                await logf.loggerbyInfo(LogInfo(appname="Te|st", servername="C", sFilename="_t_trace_"), ["x\n"])
            topo = comm.string_to_proxy(TopologyProxy, TOPOLOGY_OBJ + at)
            day = time.strftime("%Y%m%d")
            assert [e.toVertex for e in (await topo.graphTrace(day, T1)).graph.es] == [
                "Test.A.AObj.call",
                "Test.B.BObj.get",
            ]
    finally:
        await svc.stop()
    (file,) = (tmp_path / "_tars_/_trace_").iterdir()
    lines = file.read_text().splitlines()
    assert len(lines) == 8 and all(line.startswith("127.0.0.1|Test|Client|2024-05-01 10:00:00|") for line in lines)
