"""The monitoring history and the query services: StatF/PropertyF reports sent over TARS to `k8stars stat` are kept
per minute in its store; `k8stars monitor` answers K8SFramework's MonitorQuery.query over TARS (and JSON over HTTP)
from the same store, after restarts of either; conditions are data, unknown fields refused; retention deletes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from prometheus_client import CollectorRegistry

from k8stars.services.monitor.app import QUERYPROPERTY_OBJ, QUERYSTAT_OBJ, MonitorService, MonitorServiceOptions
from k8stars.services.stat.app import PROPERTY_OBJ, STAT_OBJ, StatService, StatServiceOptions
from k8stars.services.stat.history import History, HistoryOptions, minute_of
from k8stars.services.stat.store import HistoryStore
from k8stars.tars.protocol.monitorquery import OP, Condition, MonitorQueryProxy, MonitorQueryReq, MonitorQueryRsp
from k8stars.tars.protocol.propertyf import PropertyFProxy, StatPropInfo, StatPropMsgBody, StatPropMsgHead
from k8stars.tars.protocol.statf import StatFProxy, StatMicMsgBody, StatMicMsgHead
from k8stars.tars.rpc import Communicator
from k8stars.testing.mariadb import SqlSpec, sql_spec

EP = "tcp -h 127.0.0.1 -p 0 -t 60000"
INDEXS = ["succ_count", "timeout_count", "exce_count", "total_time"]


def stat_options(data: Path) -> StatServiceOptions:
    return StatServiceOptions(stat_endpoint=EP, property_endpoint=EP, http_port=-1, history="sqlite",
                              data_dir=str(data))  # fmt: skip


@pytest.fixture
async def monitor(tmp_path: Path) -> AsyncIterator[MonitorService]:
    svc = MonitorService(MonitorServiceOptions(stat_endpoint=EP, property_endpoint=EP, http_port=0,
                                               data_dir=str(tmp_path)))  # fmt: skip
    await svc.start()
    try:
        yield svc
    finally:
        await svc.stop()


async def query(svc: MonitorService, req: MonitorQueryReq, servant: str = QUERYSTAT_OBJ) -> MonitorQueryRsp:
    async with Communicator() as comm:
        proxy = comm.string_to_proxy(MonitorQueryProxy, f"{servant}@{svc.endpoint(servant)}")
        ret, rsp = await proxy.query(req)
    assert ret == rsp.ret
    return rsp


def head(caller: str, callee: str, fn: str, ret: int = 0) -> StatMicMsgHead:
    return StatMicMsgHead(caller, callee, fn, "10.0.0.1", "10.0.0.2", 20001, ret, tarsVersion="go")


async def report(svc: StatService, calls: dict[StatMicMsgHead, StatMicMsgBody], from_client: bool = False) -> None:
    async with Communicator() as comm:
        stat = comm.string_to_proxy(StatFProxy, f"{STAT_OBJ}@{svc.endpoint(STAT_OBJ)}")
        assert await stat.reportMicMsg(calls, from_client) == 0


async def test_reports_survive_restarts_and_are_queried(tmp_path: Path, monitor: MonitorService) -> None:
    today = minute_of(time.time())[0]
    for run in range(2):  # the second run is a restart of the stat service on the same store
        stat = StatService(stat_options(tmp_path))
        await stat.start()
        try:
            await report(
                stat,
                {
                    head("Test.Client", "Test.EchoServer", "echo"): StatMicMsgBody(3, 1, 1, {}, 50, 30, 1),
                    head("Test.Client", "Test.EchoServer", "ping"): StatMicMsgBody(1, 0, 0, {}, 2, 2, 2),
                },
            )
            await report(stat, {head("Test.Client", "Test.EchoServer.EchoObj", "echo"): StatMicMsgBody(2, 0, 0, {}, 8,
                                                                                                        4, 4)},
                         from_client=True)  # callee cut to App.Server, caller IP the reporter's  # fmt: skip
            async with Communicator() as comm:
                props = comm.string_to_proxy(PropertyFProxy, f"{PROPERTY_OBJ}@{stat.endpoint(PROPERTY_OBJ)}")
                body = StatPropMsgBody([StatPropInfo("Sum", "12"), StatPropInfo("Max", "7"), StatPropInfo("Avg", "x")])
                assert await props.reportPropMsg({StatPropMsgHead("Test.EchoServer", "10.0.0.2", "qlen"): body}) == 0
        finally:
            await stat.stop()  # writes what the last flush had not
        req = MonitorQueryReq(date=today, conditions=[Condition("slave_name", OP.EQ, "Test.EchoServer")],
                              indexs=INDEXS, groupby=["interface_name"])  # fmt: skip
        rsp = await query(monitor, req)
        assert rsp.ret == 0, rsp.msg
        n = run + 1
        assert rsp.result == {"echo": [5.0 * n, 1.0 * n, 1.0 * n, 58.0 * n], "ping": [1.0 * n, 0, 0, 2.0 * n]}
    by_ip = await query(monitor, MonitorQueryReq(date=today, indexs=["succ_count"], groupby=["master_ip", "slave_ip"]))
    # as upstream: the callee side's callee IP and the caller side's caller IP are the reporting connection's
    assert by_ip.result == {"10.0.0.1,127.0.0.1": [8.0], "127.0.0.1,10.0.0.2": [4.0]}
    prop = await query(monitor, MonitorQueryReq(date=today, indexs=["value"], groupby=["property_name", "policy"]),
                       QUERYPROPERTY_OBJ)  # fmt: skip
    assert prop.result == {"qlen,Max": [14.0], "qlen,Sum": [24.0]}  # two runs' rows summed; the bad Avg refused

    async with aiohttp.ClientSession() as http:
        url = f"http://127.0.0.1:{monitor.http_port}/api/query/stat"
        body = {"date": today, "indexs": ["succ_count", "total_time"], "groupby": ["interface_name"],
                "conditions": [{"field": "interface_name", "op": "EQ", "val": "ping"}]}  # fmt: skip
        async with http.post(url, json=body) as r:
            assert r.status == 200 and await r.json() == {"ret": 0, "msg": "", "result": {"ping": [2.0, 4.0]}}
        async with http.post(url, json={**body, "groupby": ["nope"]}) as r:
            answer = await r.json()
            assert r.status == 400 and answer["ret"] == -1 and "groupby 'nope'" in answer["msg"]


@pytest.fixture
async def history(tmp_path: Path) -> AsyncIterator[tuple[HistoryStore, list[float]]]:
    """A store filled through the recorder at chosen times: today 10:05 and 10:06, and two days before."""
    store = HistoryStore("sqlite", data_dir=tmp_path)
    await store.open()
    now = [time.mktime((2026, 3, 4, 10, 5, 30, 0, 0, -1))]
    rec = History(store, HistoryOptions(max_series=3), CollectorRegistry(), clock=lambda: now[0])
    rec.add_calls(
        {
            head("A.Caller", "B.Server", "f"): StatMicMsgBody(4, 0, 0, {}, 40, 20, 5),
            head("A.Caller", "B.Server", "g", 2): StatMicMsgBody(0, 0, 3, {}, 9, 3, 3),
        },
        False,
        "10.0.0.9",
    )
    now[0] += 60
    rec.add_calls(
        {
            head("A.Caller", "B.Server", "f"): StatMicMsgBody(6, 2, 0, {}, 80, 30, 5),
            head("C.Caller", "B.Server", "f"): StatMicMsgBody(1, 0, 0, {}, 1, 1, 1),
            head("tars.tarsnode", "tars.tarsstat", "reportMicMsg"): StatMicMsgBody(9, 0, 0, {}, 1, 1, 1),
            head("D.Caller", "B.Server", "zero"): StatMicMsgBody(0, 0, 0, {}, 0, 0, 0),
        },
        False,
        "10.0.0.9",
    )
    await rec.flush()
    now[0] -= 2 * 86400
    rec.add_calls({head("A.Caller", "B.Server", "f"): StatMicMsgBody(100, 0, 0, {}, 100, 1, 1)}, False, "")
    await rec.close()
    try:
        yield store, now
    finally:
        await store.close()


async def test_minutes_windows_conditions_groupby(history: tuple[HistoryStore, list[float]],
                                                  monitor: MonitorService) -> None:  # fmt: skip
    day = "20260304"

    async def q(**fields: object) -> dict[str, list[float]]:
        rsp = await query(monitor, MonitorQueryReq(**{"date": day, "indexs": INDEXS, **fields}))  # type: ignore[arg-type]
        assert rsp.ret == 0, rsp.msg
        return rsp.result

    # per-minute buckets (f_tflag is the minute's end, as K8SFramework's), and a window within the day
    assert await q(groupby=["f_tflag"]) == {"1006": [4, 0, 3, 49], "1007": [7, 2, 0, 81]}
    assert await q(groupby=["f_tflag"], tflag1="1007", tflag2="2360") == {"1007": [7, 2, 0, 81]}
    assert await q(groupby=["f_date"]) == {day: [11, 2, 3, 130]}
    assert await q() == {"": [11, 2, 3, 130]}
    # a comparison day: two days before has its own numbers, the day before none (empty, not an error)
    assert await q(date="20260302", groupby=["f_tflag"]) == {"1007": [100, 0, 0, 100]}
    assert await q(date="2026-03-03", groupby=["f_tflag"]) == {}
    assert await q(date="2026-03-04", groupby=["f_date"]) == {"2026-03-04": [11, 2, 3, 130]}  # as it was asked
    # groupby of each kind, several at once; the callee-side report's callee IP is the reporter's address
    assert await q(groupby=["master_name"]) == {"A.Caller": [10, 2, 3, 129], "C.Caller": [1, 0, 0, 1]}
    assert (await q(groupby=["interface_name", "slave_ip"])) == {"f,10.0.0.9": [11, 2, 0, 121],
                                                                 "g,10.0.0.9": [0, 0, 3, 9]}  # fmt: skip
    assert await q(groupby=["f_tflag", "return_value"]) == {"1006,0": [4, 0, 0, 40], "1006,2": [0, 0, 3, 9],
                                                            "1007,0": [7, 2, 0, 81]}  # fmt: skip
    # as TarsWeb's MonitorStatService asks: the whole day, LIKE on the callee, f_date first, then the comparison day
    web = {"dataid": "tars_stat", "tflag1": "0000", "tflag2": "2360", "groupby": ["f_date", "interface_name"],
           "conditions": [Condition("slave_name", OP.LIKE, "B.Server")]}  # fmt: skip
    assert await q(**web) == {f"{day},f": [11, 2, 0, 121], f"{day},g": [0, 0, 3, 9]}
    assert await q(**{**web, "date": "20260303"}) == {}
    # each OP
    cases = {
        OP.EQ: ("master_name", "C.Caller", {"1007": [1, 0, 0, 1]}),
        OP.GT: ("f_tflag", "1006", {"1007": [7, 2, 0, 81]}),
        OP.GTE: ("f_tflag", "1006", {"1006": [4, 0, 3, 49], "1007": [7, 2, 0, 81]}),
        OP.LT: ("return_value", "2", {"1006": [4, 0, 0, 40], "1007": [7, 2, 0, 81]}),
        OP.LTE: ("f_tflag", "1006", {"1006": [4, 0, 3, 49]}),
        OP.LIKE: ("master_name", "A.%", {"1006": [4, 0, 3, 49], "1007": [6, 2, 0, 80]}),
    }
    for op, (name, val, want) in cases.items():
        assert await q(groupby=["f_tflag"], conditions=[Condition(name, op, val)]) == want, op
    # conditions are data: a quote in a value matches nothing, it is not SQL
    injected = [Condition("master_name", OP.EQ, "x' OR '1'='1")]
    assert await q(groupby=["f_tflag"], conditions=injected) == {}
    assert await q(conditions=[Condition("master_name", OP.LIKE, "%' OR 1=1 --")]) == {}


async def test_bad_requests_are_refused_with_a_reason(history: tuple[HistoryStore, list[float]],
                                                      monitor: MonitorService) -> None:  # fmt: skip
    bad = {
        "condition field 'slave_name; DROP TABLE t_monitor_stat'": MonitorQueryReq(
            date="20260304",
            indexs=["succ_count"],
            conditions=[Condition("slave_name; DROP TABLE t_monitor_stat", OP.EQ, "x")],
        ),
        "index 'value'": MonitorQueryReq(date="20260304", indexs=["value"]),
        "groupby 'policy'": MonitorQueryReq(date="20260304", indexs=["succ_count"], groupby=["policy"]),
        "date 'today'": MonitorQueryReq(date="today", indexs=["succ_count"]),
        "tflag1 '9'": MonitorQueryReq(date="20260304", tflag1="9", indexs=["succ_count"]),
        "indexs: name at least one": MonitorQueryReq(date="20260304"),
        "dataid 'tars_property'": MonitorQueryReq(dataid="tars_property", date="20260304", indexs=["succ_count"]),
        "'x' is not a number": MonitorQueryReq(
            date="20260304", indexs=["succ_count"], conditions=[Condition("slave_port", OP.GT, "x")]
        ),
    }
    for why, req in bad.items():
        rsp = await query(monitor, req)
        assert rsp.ret == -1 and why in rsp.msg, (why, rsp)
    still = await query(monitor, MonitorQueryReq(date="20260304", indexs=["succ_count"]))
    assert still.result == {"": [11.0]}  # the table is still there


async def test_series_cap_and_retention(history: tuple[HistoryStore, list[float]], monitor: MonitorService) -> None:
    store, now = history
    registry = CollectorRegistry()
    rec = History(store, HistoryOptions(max_series=2, retention_days=1), registry, clock=lambda: now[0] + 2 * 86400)
    rec.add_calls({head(f"X{i}.Caller", "B.Server", "h"): StatMicMsgBody(1, 0, 0, {}, 1, 1, 1) for i in range(5)},
                  False, "")  # fmt: skip
    await rec.close()
    assert registry.get_sample_value("k8stars_stat_history_dropped_total", {"kind": "stat", "why": "max_series"}) == 3
    got = await query(monitor, MonitorQueryReq(date="20260304", indexs=["succ_count"], groupby=["interface_name"]))
    assert got.result["h"] == [2.0]
    # one day kept: the 2nd of March goes, the 4th stays
    assert await rec.prune() == 1
    assert (await query(monitor, MonitorQueryReq(date="20260302", indexs=["succ_count"]))).result == {}
    assert (await query(monitor, MonitorQueryReq(date="20260304", indexs=["succ_count"]))).result == {"": [13.0]}


@pytest.fixture(params=["sqlite", "mysql"])
def spec(request: pytest.FixtureRequest, tmp_path: Path) -> SqlSpec:
    return sql_spec(str(request.param), request, tmp_path)


async def test_replicas_share_one_store_and_failed_writes_are_retried(spec: SqlSpec) -> None:
    """Two stat replicas over one store answer as one would; a write the store refuses is kept and retried."""
    options = [StatServiceOptions(stat_endpoint=EP, property_endpoint=EP, http_port=-1, history=spec.kind,
                                  data_dir=str(spec.data_dir), dsn=spec.dsn) for _ in range(2)]  # fmt: skip
    replicas = [StatService(o) for o in options]
    where = {"data_dir": str(spec.data_dir), "dsn": spec.dsn}
    monitor = MonitorService(MonitorServiceOptions(stat_endpoint=EP, property_endpoint=EP, http_port=-1,
                                                   store=spec.kind, **where))  # type: ignore[arg-type]  # fmt: skip
    for svc in replicas:
        await svc.start()
    await monitor.start()
    try:
        for i, svc in enumerate(replicas):
            await report(svc, {head("Test.Client", "Test.Echo", "echo"): StatMicMsgBody(i + 1, 0, 0, {}, 10, 5, 5)})
        first = replicas[0].history
        assert first is not None
        await first.store.db.close()  # the store goes away under the first replica
        await first.flush()
        errors = replicas[0].metrics.registry.get_sample_value("k8stars_stat_history_write_errors_total")
        assert errors == 1
        await first.store.db.open()
        today = minute_of(time.time())[0]
        req = MonitorQueryReq(date=today, indexs=["succ_count", "total_time"], groupby=["slave_name"])
    finally:
        for svc in replicas:
            await svc.stop()
    try:
        rsp = await query(monitor, req)
        assert rsp.result == {"Test.Echo": [3.0, 20.0]}  # 1 + 2 calls, each replica's rows summed
    finally:
        await monitor.stop()


async def test_property_policies_per_minute(tmp_path: Path, monitor: MonitorService) -> None:
    """Sum and Count add up, Max and Min keep theirs, Avg averages TarsCpp's sum=count and plain values, Distr is 0
    (as upstream), a bad value is refused alone."""
    store = HistoryStore("sqlite", data_dir=tmp_path)
    await store.open()
    now = time.mktime((2026, 3, 4, 9, 0, 10, 0, 0, -1))
    rec = History(store, HistoryOptions(), CollectorRegistry(), clock=lambda: now)
    ph = StatPropMsgHead("A.Server", "10.0.0.3", "latency")
    for values in ({"Sum": "3", "Count": "1", "Max": "7", "Min": "2", "Avg": "10=2", "Distr": "0|1,10|2"},
                   {"Sum": "4", "Count": "2", "Max": "5", "Min": "1", "Avg": "6", "Distr": "0|3"},
                   {"Max": "nan?"}):  # fmt: skip
        rec.add_properties({ph: StatPropMsgBody([StatPropInfo(p, v) for p, v in values.items()])})
    await rec.close()
    await store.close()
    req = MonitorQueryReq(dataid="tars_property", date="20260304", indexs=["value"], groupby=["f_tflag", "policy"])
    rsp = await query(monitor, req, QUERYPROPERTY_OBJ)
    assert rsp.result == {"0901,Avg": [5.5], "0901,Count": [3.0], "0901,Distr": [0.0], "0901,Max": [7.0],
                          "0901,Min": [1.0], "0901,Sum": [7.0]}  # fmt: skip


async def test_a_version_1_store_is_migrated(tmp_path: Path) -> None:
    """A monitor.db made by the first version (the dimensions in every row) is brought to the current tables."""
    from k8stars.services.stat.store import SCHEMA
    from k8stars.sql import Schema, database

    v1 = database("sqlite", Schema("monitor", [SCHEMA.steps[0]]), path=tmp_path / "monitor.db")
    await v1.open()
    await v1.close()
    store = HistoryStore("sqlite", data_dir=tmp_path)
    await store.open()
    try:
        assert await store.db.fetch("SELECT version FROM t_k8stars_schema WHERE store = 'monitor'") == [(2,)]
        assert await store.db.columns("t_monitor_stat") == set()  # version 1's table is gone
        assert "last_date" in await store.db.columns("t_monitor_stat_series")
    finally:
        await store.close()


def test_bad_options_exit_2_naming_them() -> None:
    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if k != "POD_NAMESPACE" and not k.startswith("K8STARS_")}
    for argv, why in ((["monitor", "--store", "mysql"], "--store mysql needs --dsn"),
                      (["stat", "--history-days", "0"], "--history-days 0"),
                      (["stat", "--history", "mysql", "--dsn", "postgres://x"], "--dsn: bad DSN"),
                      (["kevent", "--days", "1"], "--namespace is required")):  # fmt: skip
        done = subprocess.run([sys.executable, "-m", "k8stars", *argv], cwd=root, capture_output=True, text=True,
                              timeout=60, env=env)  # fmt: skip
        assert done.returncode == 2 and why in done.stderr, (argv, done.stderr)
