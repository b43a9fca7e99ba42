"""Client call statistics: a communicator with `stat=` reports reportMicMsg(bFromClient=true) to a StatF servant,
with TarsGo's heads, counts and time intervals; a closing communicator sends what is left."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from examples.hello.gen.hello import HelloProxy
from examples.hello.server import SERVANT, HelloImp
from k8stars.tars import errors
from k8stars.tars.protocol.statf import StatFServant, StatMicMsgBody, StatMicMsgHead
from k8stars.tars.rpc import Application, Communicator, Server
from k8stars.tars.rpc.proxy import CommunicatorConfig
from k8stars.tars.rpc.stat import MAX_HEADS, TIME_POINTS, StatReporter

STAT_OBJ = "tars.tarsstat.StatObj"


class StatCollector(StatFServant):
    def __init__(self) -> None:
        self.reports: list[tuple[dict[StatMicMsgHead, StatMicMsgBody], bool]] = []
        self.arrived = asyncio.Event()

    async def reportMicMsg(self, msg: dict[StatMicMsgHead, StatMicMsgBody], bFromClient: bool) -> int:
        self.reports.append((msg, bFromClient))
        self.arrived.set()
        return 0

    async def reportSampleMsg(self, msg: list[Any]) -> int:
        return 0


class Failing(HelloImp):
    async def sayHello(self, name: str) -> str:
        if name == "fail":
            raise errors.TarsRpcError("no", code=7)
        return await super().sayHello(name)


@pytest.fixture
async def servers() -> AsyncIterator[tuple[Server, StatCollector]]:
    srv = Server(grace_seconds=1)
    collector = StatCollector()
    srv.add_servant(Failing(), SERVANT, "tcp -h 127.0.0.1 -p 0 -t 60000")
    srv.add_servant(collector, STAT_OBJ, "tcp -h 127.0.0.1 -p 0 -t 60000")
    await srv.start()
    yield srv, collector
    await srv.stop(0)


def _merged(reports: list[tuple[dict[StatMicMsgHead, StatMicMsgBody], bool]]) -> dict[tuple[str, int], Any]:
    out: dict[tuple[str, int], Any] = {}
    for msg, from_client in reports:
        assert from_client is True
        for head, body in msg.items():
            out[(head.interfaceName, head.returnValue)] = (head, body)
    return out


async def test_calls_are_reported_with_tarsgo_heads_and_intervals(servers: tuple[Server, StatCollector]) -> None:
    srv, collector = servers
    hello_ep = srv.adapters[SERVANT + "Adapter"].endpoint
    stat_ep = srv.adapters[STAT_OBJ + "Adapter"].endpoint
    config = CommunicatorConfig(stat=f"{STAT_OBJ}@{stat_ep}", report_interval=200, module_name="Test.Caller",
                                node_name="127.0.0.9")  # fmt: skip
    async with Communicator(config) as comm:
        hello = comm.string_to_proxy(HelloProxy, f"{SERVANT}@{hello_ep}")
        for _ in range(3):
            assert await hello.sayHello("x") == "hello x"
        with pytest.raises(errors.TarsRpcError):
            await hello.sayHello("fail")
        with pytest.raises(errors.InvokeTimeoutError):
            await hello.tars_options(timeout_ms=50).sleep(300)
        await asyncio.wait_for(collector.arrived.wait(), 5)  # the periodic report
    reports = _merged(collector.reports)
    head, body = reports[("sayHello", 0)]
    assert (head.masterName, head.masterIp, head.slaveName) == ("Test.Caller", "127.0.0.9", "TestApp.HelloServer")
    assert (head.slaveIp, head.slavePort) == (hello_ep.host, hello_ep.port)
    assert (body.count, body.timeoutCount, body.execCount) == (3, 0, 0)
    assert sorted(body.intervalCount) == list(TIME_POINTS) and sum(body.intervalCount.values()) == 3
    assert 0 <= body.minRspTime <= body.maxRspTime and body.totalRspTime >= body.maxRspTime
    _, failed = reports[("sayHello", 7)]
    assert (failed.count, failed.execCount) == (0, 1)
    _, timed_out = reports[("sleep", -7)]
    assert timed_out.timeoutCount == 1 and timed_out.minRspTime >= 50
    assert all(h.slaveName != "tars.tarsstat" for h, _ in reports.values())  # reports are not counted themselves


async def test_closing_sends_what_is_left_and_no_stat_means_no_reports(servers: tuple[Server, StatCollector]) -> None:
    srv, collector = servers
    hello_ep = srv.adapters[SERVANT + "Adapter"].endpoint
    stat_ep = srv.adapters[STAT_OBJ + "Adapter"].endpoint
    async with Communicator() as plain:  # no stat= : nothing is counted
        assert plain.stat is None
        await plain.string_to_proxy(HelloProxy, f"{SERVANT}@{hello_ep}").sayHello("y")
    config = CommunicatorConfig(stat=f"{STAT_OBJ}@{stat_ep}", report_interval=3_600_000, module_name="Test.Caller")
    async with Communicator(config) as comm:
        await comm.string_to_proxy(HelloProxy, f"{SERVANT}@{hello_ep}").sayHello("z")
    assert len(collector.reports) == 1  # sent on close, long before its interval
    (body,) = collector.reports[0][0].values()
    assert body.count == 1


async def test_heads_are_bounded() -> None:
    reporter = StatReporter(Communicator(), "tars.tarsstat.StatObj@tcp -h 127.0.0.1 -p 1", "M", "127.0.0.1", 3600)
    for i in range(MAX_HEADS + 5):
        reporter.record("A.B.Obj", f"f{i}", "127.0.0.1", 1, 0, 0, 1)
    assert len(reporter.tallies) == MAX_HEADS and reporter.dropped == 5
    assert reporter.periodic.task is not None
    reporter.periodic.task.cancel()


async def test_an_application_reports_its_own_side(servers: tuple[Server, StatCollector], tmp_path: Path) -> None:
    """A server whose config names a stat servant reports what it served (bFromClient=false), as TarsGo's does:
    caller stat_from_server (one_way_client for one-way calls), callee this server, per function and result."""
    from tests.conftest import free_port
    from tests.tars.test_rpc import CONFIG

    srv, collector = servers
    stat_ep = srv.adapters[STAT_OBJ + "Adapter"].endpoint
    port = free_port()
    conf = tmp_path / "HelloServer.conf"
    text = CONFIG.format(admin=free_port(), port=port)
    client = f"modulename=TestApp.HelloServer\n      stat={STAT_OBJ}@{stat_ep}\n      report-interval=3600000"
    conf.write_text(text.replace("modulename=TestApp.HelloServer", client))
    app = Application.from_config(conf)
    app.add_servant(Failing(), SERVANT)
    await app.start()
    try:
        async with Communicator() as comm:
            hello = comm.string_to_proxy(HelloProxy, f"{SERVANT}@tcp -h 127.0.0.1 -p {port}")
            assert await hello.sayHello("a") == "hello a"
            with pytest.raises(errors.TarsRpcError):
                await hello.sayHello("fail")
            await hello.tars_options(oneway=True).sayHello("b")
            await asyncio.sleep(0.2)
    finally:
        await app.stop()  # the last report goes out as the communicator closes
    served = {(h.masterName, h.interfaceName, h.returnValue): (h, b) for msg, client in collector.reports
              if not client for h, b in msg.items()}  # fmt: skip
    head, body = served[("stat_from_server", "sayHello", 0)]
    assert (head.slaveName, head.slaveIp, body.count, body.execCount) == ("TestApp.HelloServer", "127.0.0.1", 1, 0)
    assert served[("stat_from_server", "sayHello", 7)][1].execCount == 1
    assert served[("one_way_client", "sayHello", 0)][1].count == 1
