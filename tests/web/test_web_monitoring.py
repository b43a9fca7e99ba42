"""The monitoring page: StatF and PropertyF reports sent to `k8stars stat` through the registry are kept per minute;
the console finds `tars.tarsquerystat.QueryObj` / `tars.tarsqueryproperty.QueryObj` (`k8stars monitor`) through the
same registry and shows a server's calls per function, caller or IP against another day, sortable, rates in %, a
curve per row; a comparison day without data is empty, not an error; a console without a locator says so."""

from __future__ import annotations

import asyncio
import math
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import Browser, add_account, web_console
from prometheus_client import CollectorRegistry
from test_servers import tserver

from k8stars.kube.client import Kube
from k8stars.kube.resources import TSERVER
from k8stars.services.monitor.app import MonitorService, MonitorServiceOptions
from k8stars.services.stat.app import StatService, StatServiceOptions
from k8stars.services.stat.history import History, HistoryOptions
from k8stars.services.stat.store import HistoryStore
from k8stars.tars.protocol.propertyf import PropertyFProxy, StatPropInfo, StatPropMsgBody, StatPropMsgHead
from k8stars.tars.protocol.queryf import QueryFProxy
from k8stars.tars.protocol.statf import StatFProxy, StatMicMsgBody, StatMicMsgHead
from k8stars.tars.rpc import Communicator
from k8stars.testing.cluster import Cluster
from k8stars.testing.procs import free_port, stop_process, wait_port

EP = "tcp -h 127.0.0.1 -p 0 -t 60000"
QUERY_OBJS = ("tars.tarsstat.StatObj", "tars.tarsquerystat.QueryObj", "tars.tarsqueryproperty.QueryObj")
DAY = 86400.0


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[str]:
    """`k8stars registry` as a process; yields its locator."""
    port = free_port()
    log = (tmp_path / "registry.log").open("ab")
    argv = [sys.executable, "-m", "k8stars", "registry", "--port", str(port), "--data-dir", str(tmp_path / "reg"),
            "--http-port", "0"]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_port(port, proc)
        yield f"tars.tarsregistry.QueryObj@tcp -h 127.0.0.1 -p {port}"
    finally:
        stop_process(proc)
        log.close()


@pytest.fixture
async def services(registry: str, tmp_path: Path) -> AsyncIterator[StatService]:
    """`k8stars stat` (history in SQLite) and `k8stars monitor` over it, both registered with the registry."""
    data = tmp_path / "data"
    stat = StatService(StatServiceOptions(stat_endpoint=EP, property_endpoint=EP, http_port=-1, history="sqlite",
                                          data_dir=str(data), locator=registry,
                                          history_options=HistoryOptions(flush_interval=0.2)))  # fmt: skip
    monitor = MonitorService(MonitorServiceOptions(stat_endpoint=EP, property_endpoint=EP, http_port=-1,
                                                   data_dir=str(data), locator=registry))  # fmt: skip
    await stat.start()
    await monitor.start()
    try:
        async with Communicator() as comm:
            query = comm.string_to_proxy(QueryFProxy, registry).tars_options(timeout_ms=1000)
            deadline = time.monotonic() + 30
            for servant in QUERY_OBJS:
                while not (await query.findObjectById4Any(servant)).activeEp:
                    assert time.monotonic() < deadline, f"{servant} not registered"
                    await asyncio.sleep(0.2)
        yield stat
    finally:
        await monitor.stop()
        await stat.stop()


@pytest.fixture
async def monitored_console(k8s_cluster: Cluster, namespace: str, registry: str) -> AsyncIterator[str]:
    async with web_console(k8s_cluster, namespace, locator=registry) as url:
        yield url


def head(caller: str, fn: str, ip: str = "10.0.0.1") -> StatMicMsgHead:
    return StatMicMsgHead(caller, "Test.HelloServer", fn, ip, "10.0.0.2", 20001, 0, tarsVersion="py")


async def report_today(registry: str) -> None:
    """What a server's callee side reports: found by name through the registry, as every TARS server finds it."""
    async with Communicator(locator=registry) as comm:
        stat = comm.string_to_proxy(StatFProxy, "tars.tarsstat.StatObj")
        calls = {
            head("Test.Client", "echo"): StatMicMsgBody(90, 5, 5, {}, 900, 40, 1),
            head("Test.Other", "ping", "10.0.0.3"): StatMicMsgBody(10, 0, 0, {}, 5, 1, 0),
        }
        assert await stat.reportMicMsg(calls, False) == 0
        props = comm.string_to_proxy(PropertyFProxy, "tars.tarsproperty.PropertyObj")
        body = StatPropMsgBody([StatPropInfo("Sum", "12"), StatPropInfo("Max", "7")])
        assert await props.reportPropMsg({StatPropMsgHead("Test.HelloServer", "10.0.0.2", "queue"): body}) == 0


async def record_yesterday(data: Path) -> None:
    """The day before, through the recorder at that time (the same writer the stat service uses)."""
    store = HistoryStore("sqlite", data_dir=data)
    await store.open()
    try:
        rec = History(store, HistoryOptions(), CollectorRegistry(), clock=lambda: time.time() - DAY)
        rec.add_calls({head("Test.Client", "echo"): StatMicMsgBody(50, 0, 0, {}, 100, 5, 1)}, False, "10.0.0.9")
        await rec.close()
    finally:
        await store.close()


async def record_a_day(data: Path) -> None:
    """Test.CartServer's calls every 15 minutes of yesterday and of today until now, through the recorder at those
    times: the docs' screenshot shows whole curves."""
    store = HistoryStore("sqlite", data_dir=data)
    await store.open()
    try:
        now = time.time()
        start = time.mktime((*time.localtime(now - DAY)[:3], 0, 0, 30, 0, 0, -1))  # yesterday 00:00:30
        clock = [start]
        rec = History(store, HistoryOptions(), CollectorRegistry(), clock=lambda: clock[0])
        while clock[0] < now - 120:
            hour = time.localtime(clock[0]).tm_hour + time.localtime(clock[0]).tm_min / 60
            busy = 40 + int(200 * math.exp(-((hour - 14) ** 2) / 18))  # the afternoon peak
            today = clock[0] >= start + DAY
            calls = {
                StatMicMsgHead("Test.Shop", "Test.CartServer", fn, "10.0.0.5", "10.0.0.6", 20002, 0): StatMicMsgBody(
                    busy * share + (7 if today else 0), busy // 40, busy // 80 * share, {}, busy * 3 * share, 30, 1
                )
                for fn, share in (("addItem", 3), ("listItems", 5), ("checkout", 1))
            }
            rec.add_calls(calls, False, "10.0.0.9")
            await rec.flush()
            clock[0] += 15 * 60
        await rec.close()
    finally:
        await store.close()


async def keys(b: Browser) -> list[str]:
    return [str(await r.get_attribute("data-key")) for r in await b.page.locator("#calls tr.call").all()]


async def cells(b: Browser, key: str) -> list[str]:
    return [c.strip() for c in await b.page.locator(f"#calls tr.call[data-key='{key}'] td").all_inner_texts()]


async def test_monitoring_page(kube: Kube, namespace: str, services: StatService, registry: str,
                               monitored_console: str, console: str, browser: Any, tmp_path: Path) -> None:  # fmt: skip
    await kube.create(TSERVER, namespace, tserver("Test", "HelloServer"))
    await kube.create(TSERVER, namespace, tserver("Test", "CartServer"))
    await add_account(kube, namespace, "dev", "dev-pass", ("developer", "Test"))
    await add_account(kube, namespace, "payer", "payer-pass", ("operator", "Pay"))
    await record_yesterday(tmp_path / "data")
    await report_today(registry)
    dev, payer, plain = [await Browser.open(browser, b) for b in (monitored_console, monitored_console, console)]
    try:
        await dev.login("dev", "dev-pass")
        page = "/servers/test-helloserver/monitoring"

        async def reported() -> bool:  # the stat service writes its current minute every 0.2 s
            await dev.goto(page)
            return await dev.page.locator("#calls tr.call").count() == 2

        deadline = time.monotonic() + 30
        while not await reported():
            assert time.monotonic() < deadline, await dev.page.inner_text("main")
            await asyncio.sleep(0.5)
        assert await keys(dev) == ["echo", "ping"]  # by calls, most first
        echo = await cells(dev, "echo")
        # 100 calls against 50 the day before: +100 %; 5 timeouts and 5 exceptions of 100: 5 %; 900 ms / 100 calls
        assert echo[:7] == ["echo", "100", "50", "+100.0%", "5.00%", "5.00%", "9.00"], echo
        assert await dev.page.locator("#calls tr.call[data-key=echo] svg polyline").count() == 2  # both days
        ping = await cells(dev, "ping")
        assert ping[1:4] == ["10", "—", "—"], ping  # nothing the day before: no change to show
        total = [c.strip() for c in await dev.page.locator("#calls tfoot td").all_inner_texts()]
        assert total[:4] == ["all", "110", "50", "+120.0%"], total
        assert "queue" in await dev.page.inner_text("#properties")
        await record_a_day(tmp_path / "data")
        await dev.goto("/servers/test-cartserver/monitoring")
        assert await dev.page.locator("#calls tr.call").count() == 3
        await dev.shot("monitoring.png")
        await dev.goto(page)
        # Sorting: by name, then by average time, lowest first (header links)
        await dev.page.click("#calls th >> text=Function")
        assert await keys(dev) == ["ping", "echo"]  # desc by name
        await dev.page.click("#calls th >> text=Function")
        assert await keys(dev) == ["echo", "ping"]
        await dev.goto(page + "?sort=avg&desc=")
        assert await keys(dev) == ["ping", "echo"]
        # By caller and by caller IP
        await dev.page.select_option("#days select[name=group]", "master_name")
        await dev.page.click("#days button")
        await dev.page.wait_for_load_state()
        assert sorted(await keys(dev)) == ["Test.Client", "Test.Other"]
        await dev.goto(page + "?group=master_ip&sort=key&desc=")
        assert await keys(dev) == ["10.0.0.1", "10.0.0.3"]
        # A comparison day without data (Tars#310, #702): empty, not an error and not zeros
        two_days_ago = time.strftime("%Y-%m-%d", time.localtime(time.time() - 2 * DAY))
        await dev.page.fill("#days input[name=other]", two_days_ago)
        await dev.page.click("#days button")
        await dev.page.wait_for_load_state()
        assert await dev.page.locator("#monitor-error").count() == 0
        assert (await cells(dev, "10.0.0.1"))[2:4] == ["—", "—"]
        # A day without any data: the page says so
        await dev.goto(page + "?date=2020-01-02&other=2020-01-01")
        assert "no calls reported on 2020-01-02" in await dev.page.inner_text("#calls")
        # A junk date or group is the default, never an error; names are data
        response = await dev.goto(page + "?date=x'%20OR%201=1&group=nope&sort=nope")
        assert response.status == 200 and await dev.page.locator("#calls tr.call").count() == 2
        # Roles: an operator of another app sees no such server; nothing is written here (GET only)
        await payer.login("payer", "payer-pass")
        assert (await payer.goto(page)).status == 404
        assert await payer.forge(page, {"_csrf": await payer.csrf()}) == 405
        # A console without --locator shows the page and why there are no numbers
        await add_account(kube, namespace, "dev2", "dev2-pass", ("developer", "*"))
        await plain.login("dev2", "dev2-pass")
        assert (await plain.goto(page)).status == 200
        assert "without --locator" in await plain.page.inner_text("#monitor-error")
        dev.assert_clean()
        payer.assert_clean("status of 404", "status of 405")
        plain.assert_clean()
    finally:
        for b in (dev, payer, plain):
            await b.close()
