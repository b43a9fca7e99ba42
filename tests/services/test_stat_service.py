"""`k8stars stat`: StatF and PropertyF reports sent through TARS RPC (our client, the wire format) show up in
/metrics; a real TarsGo v1.4.6 server, finding tars.tarsstat.StatObj and tars.tarsproperty.PropertyObj by name
through the registry the stat process registered them with, reports its calls and a property that end up there too.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from k8stars.services.stat.app import PROPERTY_OBJ, STAT_OBJ, StatService, StatServiceError, StatServiceOptions
from k8stars.services.stat.metrics import StatOptions
from k8stars.tars.protocol.adminf import AdminFProxy
from k8stars.tars.protocol.propertyf import PropertyFProxy, StatPropInfo, StatPropMsgBody, StatPropMsgHead
from k8stars.tars.protocol.queryf import QueryFProxy
from k8stars.tars.protocol.statf import StatFProxy, StatMicMsgBody, StatMicMsgHead, StatSampleMsg
from k8stars.tars.rpc import Communicator, ServantProxy
from k8stars.tars.rpc.dynamic import find_interface
from k8stars.testing.peers import GO_SRC, peer_command
from k8stars.testing.procs import free_port, stop_process, wait_port

ROOT = Path(__file__).resolve().parents[2]
Sample = tuple[str, dict[str, str], float]
EP = "tcp -h 127.0.0.1 -p 0 -t 60000"


async def scrape(port: int) -> list[Sample]:
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/metrics") as r:
        assert r.status == 200
        text = await r.text()
    return [(s.name, s.labels, s.value) for f in text_string_to_metric_families(text) for s in f.samples]


def value(samples: list[Sample], name: str, **labels: str) -> float | None:
    found = [v for n, ls, v in samples if n == name and all(ls.get(k) == x for k, x in labels.items())]
    assert len(found) <= 1, f"{name} {labels}: {len(found)} samples"
    return found[0] if found else None


@pytest.fixture
async def service() -> AsyncIterator[StatService]:
    svc = StatService(StatServiceOptions(stat_endpoint=EP, property_endpoint=EP, http_port=0))
    await svc.start()
    try:
        yield svc
    finally:
        await svc.stop()


async def test_reports_through_rpc_appear_in_metrics(service: StatService) -> None:
    stat_ep, prop_ep = service.endpoint(STAT_OBJ), service.endpoint(PROPERTY_OBJ)
    assert stat_ep.port != prop_ep.port
    head = StatMicMsgHead("Test.Client", "Test.HelloServer", "sayHello", "127.0.0.5", "127.0.0.6", 20001, 0,
                          tarsVersion="k8stars")  # fmt: skip
    body = StatMicMsgBody(2, 1, 0, {5: 1, 10: 0, 50: 1, 100: 0, 200: 0, 500: 0, 1000: 0, 2000: 0, 3000: 0}, 3020, 3000,
                          4)  # fmt: skip
    prop = StatPropMsgHead("Test.HelloServer", "127.0.0.6", "queue_len", iPropertyVer=2)
    async with Communicator() as comm:
        stat = comm.string_to_proxy(StatFProxy, f"{STAT_OBJ}@tcp -h 127.0.0.1 -p {stat_ep.port}")
        assert await stat.reportMicMsg({head: body}, True) == 0
        assert await stat.reportSampleMsg([StatSampleMsg("u1", "a", "b", "f", "", "", 1, 1, 0)]) == 0
        props = comm.string_to_proxy(PropertyFProxy, f"{PROPERTY_OBJ}@tcp -h 127.0.0.1 -p {prop_ep.port}")
        report = StatPropMsgBody([StatPropInfo("Sum", "12"), StatPropInfo("Max", "7"), StatPropInfo("Avg", "x")])
        assert await props.reportPropMsg({prop: report}) == 0  # the bad Avg is refused, the rest kept
        admin = comm.string_to_proxy(AdminFProxy, f"AdminObj@{service.admin_endpoint}")
        assert "tars.viewstatus" in await admin.notify("tars.help")
    s = await scrape(service.http_port)
    labels = {"caller": "Test.Client", "callee": "Test.HelloServer", "function": "sayHello", "source": "client",
              "tars_version": "k8stars"}  # fmt: skip
    assert value(s, "tars_rpc_calls_total", result="success", **labels) == 2
    assert value(s, "tars_rpc_calls_total", result="timeout", **labels) == 1
    assert value(s, "tars_rpc_response_seconds_bucket", le="0.005", **labels) == 1
    assert value(s, "tars_rpc_response_seconds_bucket", le="0.05", **labels) == 2
    assert value(s, "tars_rpc_response_seconds_bucket", le="+Inf", **labels) == 3
    assert value(s, "tars_rpc_response_seconds_sum", **labels) == pytest.approx(3.02)
    assert value(s, "tars_property_total", server="Test.HelloServer", property="queue_len", policy="Sum") == 12
    assert value(s, "tars_property_value", server="Test.HelloServer", property="queue_len", policy="Max") == 7
    assert value(s, "k8stars_stat_invalid_entries_total", kind="property") == 1
    assert value(s, "k8stars_stat_samples_total") == 1
    assert value(s, "k8stars_stat_reports_total", function="reportMicMsg") == 1
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{service.http_port}/healthz") as r:
        assert r.status == 200 and (await r.text()).startswith("ok series=")


async def test_our_python_client_reports_calls_and_properties(service: StatService) -> None:
    """k8stars's own Communicator with stat= and property= (k8stars/tars/rpc/stat.py, property.py): the client view
    of its calls and a property, sent when it closes, end up in /metrics."""
    from examples.hello.gen.hello import HelloProxy
    from examples.hello.server import SERVANT, HelloImp
    from k8stars.tars.rpc import Count, Server, Sum
    from k8stars.tars.rpc.proxy import CommunicatorConfig

    hello = Server(grace_seconds=1)
    hello.add_servant(HelloImp(), SERVANT, EP)
    await hello.start()
    try:
        stat_ep, prop_ep = service.endpoint(STAT_OBJ), service.endpoint(PROPERTY_OBJ)
        config = CommunicatorConfig(stat=f"{STAT_OBJ}@{stat_ep}", property=f"{PROPERTY_OBJ}@{prop_ep}",
                                    module_name="Test.PyClient", report_interval=60000)  # fmt: skip
        async with Communicator(config) as comm:
            proxy = comm.string_to_proxy(HelloProxy, f"{SERVANT}@{hello.adapters[SERVANT + 'Adapter'].endpoint}")
            greeted = comm.property_report("greeted", Sum(), Count())
            for name in ("a", "bb"):
                assert await proxy.sayHello(name) == f"hello {name}"
                greeted.report(len(name))
        # closing the communicator sent what it had counted (the interval, 60 s, never came)
    finally:
        await hello.stop(0)
    s = await scrape(service.http_port)
    mine = {"caller": "Test.PyClient", "callee": "TestApp.HelloServer", "function": "sayHello", "source": "client"}
    assert value(s, "tars_rpc_calls_total", result="success", **mine) == 2
    assert value(s, "tars_rpc_response_seconds_count", **mine) == 2
    assert value(s, "tars_property_total", server="Test.PyClient", property="greeted", policy="Sum") == 3
    assert value(s, "tars_property_total", server="Test.PyClient", property="greeted", policy="Count") == 2


def test_bad_options() -> None:
    for opts, why in [
        (StatServiceOptions(stat_endpoint="tcp -h"), "--stat-endpoint"),
        (StatServiceOptions(property_endpoint="udp -h 127.0.0.1 -p 1"), "must be a tcp endpoint"),
        (StatServiceOptions(stat_endpoint="tcp -h 127.0.0.1 -p 7", property_endpoint="tcp -h 127.0.0.1 -p 7"),
         "must differ"),
        (StatServiceOptions(metrics=StatOptions(max_series=0)), "--max-series 0"),
        (StatServiceOptions(http_port=70000), "--http-port 70000"),
        (StatServiceOptions(locator="127.0.0.1:17890"), "--locator"),
    ]:  # fmt: skip
        with pytest.raises(StatServiceError, match=why):
            opts.check()
    r = subprocess.run([sys.executable, "-m", "k8stars", "stat", "--stat-endpoint", "nonsense"], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)  # fmt: skip
    assert r.returncode == 2 and "error: --stat-endpoint" in r.stderr, r
    with socket.socket() as taken:  # a port in use is no bad option: exit 1, naming it
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        argv = [sys.executable, "-m", "k8stars", "stat", "--http-port", str(port), "--stat-endpoint", EP,
                "--property-endpoint", EP]  # fmt: skip
        r = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and f"--http-port {port}: " in r.stderr and "in use" in r.stderr, r


GO_SERVER_CONF = """<tars>
  <application>
    <client>
      locator=tars.tarsregistry.QueryObj@tcp -h 127.0.0.1 -p {registry}
      stat=tars.tarsstat.StatObj
      property=tars.tarsproperty.PropertyObj
      modulename=Test.EchoServer
      sync-invoke-timeout=3000
    </client>
    <server>
      app=Test
      server=EchoServer
      localip=127.0.0.1
      logpath={dir}
      logLevel=ERROR
      statreportinterval=500
      propertyreportinterval=500
      <Test.EchoServer.EchoObjAdapter>
        endpoint=tcp -h 127.0.0.1 -p {port} -t 60000
        servant=Test.EchoServer.EchoObj
        protocol=tars
        threads=1
        queuecap=10000
        queuetimeout=60000
      </Test.EchoServer.EchoObjAdapter>
    </server>
  </application>
</tars>
"""


GO_CLIENT_CONF = """<tars>
  <application>
    <client>
      locator=tars.tarsregistry.QueryObj@tcp -h 127.0.0.1 -p {registry}
      stat=tars.tarsstat.StatObj
      modulename=Test.GoClient
    </client>
    <server>
      logpath={dir}
      logLevel=ERROR
      statreportinterval=300
    </server>
  </application>
</tars>
"""


async def _registered(locator: str, servants: tuple[str, ...], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    async with Communicator() as comm:
        query = comm.string_to_proxy(QueryFProxy, locator).tars_options(timeout_ms=500)
        for servant in servants:
            while not (await query.findObjectById4Any(servant)).activeEp:
                assert time.monotonic() < deadline, f"{servant} not registered within {timeout:.0f} s"
                await asyncio.sleep(0.2)


async def test_tarsgo_server_reports_calls_and_properties_found_by_name(tmp_path: Path) -> None:
    echo = peer_command("go", "echo-server")  # builds the TarsGo peer once (cached)
    reg_port, stat_port, prop_port, http_port, echo_port = (free_port() for _ in range(5))
    locator = f"tars.tarsregistry.QueryObj@tcp -h 127.0.0.1 -p {reg_port}"
    procs: list[subprocess.Popen[bytes]] = []

    def start(argv: list[str], log: str) -> subprocess.Popen[bytes]:
        out = (tmp_path / log).open("wb")
        procs.append(subprocess.Popen(argv, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT))
        return procs[-1]

    try:
        reg = start([sys.executable, "-m", "k8stars", "registry", "--port", str(reg_port), "--data-dir",
                     str(tmp_path / "reg"), "--http-port", "0"], "registry.log")  # fmt: skip
        wait_port(reg_port, reg)
        stat = start([sys.executable, "-m", "k8stars", "stat", "--locator", locator, "--http-port", str(http_port),
                      "--stat-endpoint", f"tcp -h 127.0.0.1 -p {stat_port}",
                      "--property-endpoint", f"tcp -h 127.0.0.1 -p {prop_port}"], "stat.log")  # fmt: skip
        wait_port(http_port, stat)
        await _registered(locator, (STAT_OBJ, PROPERTY_OBJ))
        conf = tmp_path / "echo.conf"
        conf.write_text(GO_SERVER_CONF.format(registry=reg_port, dir=tmp_path, port=echo_port))
        go = start([*echo, "--config", str(conf)], "echo.log")
        wait_port(echo_port, go)
        servant = "Test.EchoServer.EchoObj"
        async with Communicator() as comm:
            iface = find_interface(servant, [GO_SRC / "echo.tars"])
            proxy = comm.string_to_proxy(ServantProxy, f"{servant}@tcp -h 127.0.0.1 -p {echo_port}", interface=iface)
            for word in ("a", "hello", "x" * 20):
                assert tuple(await proxy.tars_invoke("echo", (word,))) == (0, word)
        base = {"callee": "Test.EchoServer", "function": "echo", "source": "server"}
        prop = {"server": "Test.EchoServer", "property": "echo_len"}
        deadline = time.monotonic() + 30
        while True:  # TarsGo reports every 500 ms here; bounded wait for the first reports to land
            s = await scrape(http_port)
            calls = value(s, "tars_rpc_calls_total", result="success", **base)
            count = value(s, "tars_property_total", policy="Count", **prop)
            if calls == 3 and count == 3:
                break
            assert time.monotonic() < deadline, (calls, count, (tmp_path / "echo.log").read_text()[-2000:])
            await asyncio.sleep(0.3)
        # the TarsGo server side: caller "stat_from_server", every call in one of the interval buckets or beyond
        assert value(s, "tars_rpc_response_seconds_count", caller="stat_from_server", **base) == 3
        assert value(s, "tars_rpc_calls_total", result="exception", **base) == 0
        assert value(s, "tars_property_total", policy="Sum", **prop) == 1 + 5 + 20
        assert value(s, "tars_property_value", policy="Min", **prop) in (1, 5, 20)  # the last interval's
        distr = sum(v for n, ls, v in s if n == "tars_property_distr_total" and ls["property"] == "echo_len")
        assert distr == 3

        # a TarsGo client: its own view of its calls (bFromClient), under its module name
        client_conf = tmp_path / "client.conf"
        client_conf.write_text(GO_CLIENT_CONF.format(registry=reg_port, dir=tmp_path))
        client = [*peer_command("go", "echo-client"), f"{servant}@tcp -h 127.0.0.1 -p {echo_port}", "--config",
                  str(client_conf), "--once", "from go", "--linger", "3000"]  # fmt: skip
        done = await asyncio.to_thread(subprocess.run, client, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0 and '"r":"from go"' in done.stdout, done
        s = await scrape(http_port)
        mine = {"caller": "Test.GoClient", "callee": "Test.EchoServer", "function": "echo", "source": "client"}
        assert value(s, "tars_rpc_calls_total", result="success", **mine) == 1, done.stderr[-2000:]
        assert value(s, "tars_rpc_response_seconds_count", **mine) == 1
    finally:
        for p in reversed(procs):
            stop_process(p)
    assert "registered tars.tarsproperty.PropertyObj" in (tmp_path / "stat.log").read_text()


NODE_SERVER_CONF = """<tars>
  <application>
    <client>
      locator=tars.tarsregistry.QueryObj@tcp -h 127.0.0.1 -p {registry}
      stat=tars.tarsstat.StatObj
      modulename=Test.NodeEcho
    </client>
    <server>
      app=Test
      server=NodeEcho
      localip=127.0.0.1
      logpath={dir}
      <Test.NodeEcho.EchoObjAdapter>
        endpoint=tcp -h 127.0.0.1 -p {port} -t 60000
        servant=Test.NodeEcho.EchoObj
        protocol=tars
        threads=1
        maxconns=1000
        queuecap=10000
        queuetimeout=60000
      </Test.NodeEcho.EchoObjAdapter>
    </server>
  </application>
</tars>
"""


async def test_tars_rpc_node_server_reports_its_calls(tmp_path: Path) -> None:
    """A @tars/rpc 2.0.15 server reports the calls its callers cannot (one-way, TUP) as caller "one_way_client" /
    "tup_client", when TARS_MONITOR is set (as @tars/node-agent does); it finds tars.tarsstat.StatObj through the
    locator of TARS_CONFIG. Its @tars/monitor reports at most every 10 s: the test waits for that one report."""
    echo = peer_command("node", "echo-server")
    reg_port, http_port, echo_port = free_port(), free_port(), free_port()
    locator = f"tars.tarsregistry.QueryObj@tcp -h 127.0.0.1 -p {reg_port}"
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(subprocess.Popen([sys.executable, "-m", "k8stars", "registry", "--port", str(reg_port),
                                       "--data-dir", str(tmp_path / "reg"), "--http-port", "0"], cwd=ROOT))  # fmt: skip
        wait_port(reg_port, procs[-1])
        eps = [f"tcp -h 127.0.0.1 -p {free_port()}" for _ in range(2)]
        procs.append(subprocess.Popen([sys.executable, "-m", "k8stars", "stat", "--locator", locator, "--http-port",
                                       str(http_port), "--stat-endpoint", eps[0], "--property-endpoint", eps[1]],
                                      cwd=ROOT))  # fmt: skip
        wait_port(http_port, procs[-1])
        await _registered(locator, (STAT_OBJ,))
        conf = tmp_path / "node.conf"
        conf.write_text(NODE_SERVER_CONF.format(registry=reg_port, dir=tmp_path, port=echo_port))
        procs.append(subprocess.Popen([*echo, "--config", str(conf)], cwd=tmp_path,
                                      env={**os.environ, "TARS_CONFIG": str(conf), "TARS_MONITOR": "1"}))  # fmt: skip
        wait_port(echo_port, procs[-1])
        servant = "Test.NodeEcho.EchoObj"
        async with Communicator() as comm:
            iface = find_interface(servant, [GO_SRC / "echo.tars"])
            proxy = comm.string_to_proxy(ServantProxy, f"{servant}@tcp -h 127.0.0.1 -p {echo_port}", interface=iface)
            assert tuple(await proxy.tars_invoke("echo", ("a",))) == (0, "a")  # connected and answering
            for word in ("b", "c"):
                await proxy.tars_options(oneway=True).tars_invoke("echo", (word,))
        mine = {"caller": "one_way_client", "callee": "Test.NodeEcho", "function": "echo", "source": "server"}
        deadline = time.monotonic() + 45
        while (calls := value(await scrape(http_port), "tars_rpc_calls_total", result="success", **mine)) != 2:
            assert time.monotonic() < deadline, calls
            await asyncio.sleep(0.5)
        s = await scrape(http_port)
        assert value(s, "tars_rpc_response_seconds_count", **mine) == 2
        assert value(s, "tars_rpc_response_seconds_bucket", le="3.0", **mine) == 2
    finally:
        for p in reversed(procs):
            stop_process(p)
