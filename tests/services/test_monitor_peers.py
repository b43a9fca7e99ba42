"""Real reporters, real processes: a TarsGo v1.4.6 server and client and a @tars/rpc server find
tars.tarsstat.StatObj / tars.tarsproperty.PropertyObj through the registry and report; `k8stars monitor`, found as
tars.tarsquerystat.QueryObj / tars.tarsqueryproperty.QueryObj through the same registry, answers `k8stars call`
and a TarsGo MonitorQuery client (tars2go's stubs of K8SFramework's IDL, tests/services/go_monitor) with the numbers
reported, the JSON view with the same ones, and so again after the stat service restarts."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from k8stars.tars.protocol.queryf import QueryFProxy
from k8stars.tars.rpc import Communicator, ServantProxy
from k8stars.tars.rpc.dynamic import find_interface
from k8stars.testing.peers import GO_SRC, go_program, peer_command
from k8stars.testing.procs import free_port, stop_process, wait_port

ROOT = Path(__file__).resolve().parents[2]
IDL = ROOT / "k8stars" / "tars" / "protocol" / "MonitorQuery.tars"
GO_MONITOR = Path(__file__).resolve().parent / "go_monitor"
SERVICES = ("tars.tarsstat.StatObj", "tars.tarsproperty.PropertyObj", "tars.tarsquerystat.QueryObj",
            "tars.tarsqueryproperty.QueryObj")  # fmt: skip

GO_SERVER_CONF = """<tars>
  <application>
    <client>
      locator=tars.tarsregistry.QueryObj@tcp -h 127.0.0.1 -p {registry}
      stat=tars.tarsstat.StatObj
      property=tars.tarsproperty.PropertyObj
      modulename=Test.EchoServer
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


def k8stars_call(locator: str, servant: str, req: dict[str, Any]) -> dict[str, Any]:
    argv = [sys.executable, "-m", "k8stars", "call", "--locator", locator, "--idl", str(IDL), servant, "query",
            json.dumps({"req": req})]  # fmt: skip
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    out: dict[str, Any] = json.loads(done.stdout)
    return out


def go_query(locator: str, servant: str, req: dict[str, Any]) -> dict[str, Any]:
    """The same query from TarsGo: tests/services/go_monitor built once per source hash (TarsGo v1.4.6)."""
    argv = [str(go_program(GO_MONITOR, "monitorpeer")), "--locator", locator, "--servant", servant, "--date",
            req["date"], "--indexs", ",".join(req["indexs"]), "--groupby", ",".join(req["groupby"])]  # fmt: skip
    for c in req["conditions"]:
        argv += ["--cond", f"{c['field']}:{c['op']}:{c['val']}"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    out: dict[str, Any] = json.loads(done.stdout)
    return out


async def _registered(locator: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    async with Communicator() as comm:
        query = comm.string_to_proxy(QueryFProxy, locator).tars_options(timeout_ms=500)
        for servant in SERVICES:
            while not (await query.findObjectById4Any(servant)).activeEp:
                assert time.monotonic() < deadline, f"{servant} not registered within {timeout:.0f} s"
                await asyncio.sleep(0.2)


async def test_real_reporters_through_the_registry_and_queries_by_name(tmp_path: Path) -> None:
    go_echo, node_echo = peer_command("go", "echo-server"), peer_command("node", "echo-server")
    reg_port, go_port, node_port, http_port = free_port(), free_port(), free_port(), free_port()
    locator = f"tars.tarsregistry.QueryObj@tcp -h 127.0.0.1 -p {reg_port}"
    data = tmp_path / "data"
    procs: list[subprocess.Popen[bytes]] = []

    def start(argv: list[str], log: str, **kw: Any) -> subprocess.Popen[bytes]:
        out = (tmp_path / log).open("ab")
        procs.append(subprocess.Popen(argv, cwd=kw.pop("cwd", ROOT), stdout=out, stderr=subprocess.STDOUT, **kw))
        return procs[-1]

    def start_stat() -> subprocess.Popen[bytes]:
        eps = [f"tcp -h 127.0.0.1 -p {free_port()}" for _ in range(2)]
        return start([sys.executable, "-m", "k8stars", "stat", "--locator", locator, "--http-port", "-1",
                      "--stat-endpoint", eps[0], "--property-endpoint", eps[1], "--data-dir", str(data),
                      "--history-flush", "0.3"], "stat.log")  # fmt: skip

    try:
        reg = start([sys.executable, "-m", "k8stars", "registry", "--port", str(reg_port), "--data-dir",
                     str(tmp_path / "reg"), "--http-port", "0"], "registry.log")  # fmt: skip
        wait_port(reg_port, reg)
        stat = start_stat()
        mon = start([sys.executable, "-m", "k8stars", "monitor", "--locator", locator, "--http-port", str(http_port),
                     "--stat-endpoint", f"tcp -h 127.0.0.1 -p {free_port()}", "--property-endpoint",
                     f"tcp -h 127.0.0.1 -p {free_port()}", "--data-dir", str(data)], "monitor.log")  # fmt: skip
        wait_port(http_port, mon)
        await _registered(locator)

        conf = tmp_path / "echo.conf"
        conf.write_text(GO_SERVER_CONF.format(registry=reg_port, dir=tmp_path, port=go_port))
        wait_port(go_port, start([*go_echo, "--config", str(conf)], "echo.log"))
        nconf = tmp_path / "node.conf"
        nconf.write_text(NODE_SERVER_CONF.format(registry=reg_port, dir=tmp_path, port=node_port))
        env = {**os.environ, "TARS_CONFIG": str(nconf), "TARS_MONITOR": "1"}
        wait_port(node_port, start([*node_echo, "--config", str(nconf)], "node.log", cwd=tmp_path, env=env))
        async with Communicator() as comm:
            for app_server, port, words in (("Test.EchoServer", go_port, ("a", "hello", "x" * 20)),
                                            ("Test.NodeEcho", node_port, ("b",))):  # fmt: skip
                servant = f"{app_server}.EchoObj"
                iface = find_interface(servant, [GO_SRC / "echo.tars"])
                proxy = comm.string_to_proxy(ServantProxy, f"{servant}@tcp -h 127.0.0.1 -p {port}", interface=iface)
                for word in words:
                    assert tuple(await proxy.tars_invoke("echo", (word,))) == (0, word)
                if app_server == "Test.NodeEcho":  # @tars/rpc reports the calls its callers cannot: one-way
                    await proxy.tars_options(oneway=True).tars_invoke("echo", ("c",))
        client_conf = tmp_path / "client.conf"
        client_conf.write_text(GO_CLIENT_CONF.format(registry=reg_port, dir=tmp_path))
        client = [*peer_command("go", "echo-client"), f"Test.EchoServer.EchoObj@tcp -h 127.0.0.1 -p {go_port}",
                  "--config", str(client_conf), "--once", "from go", "--linger", "3000"]  # fmt: skip
        done = await asyncio.to_thread(subprocess.run, client, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr[-2000:]

        today = time.strftime("%Y%m%d")
        echo = [{"field": "interface_name", "op": 0, "val": "echo"}]  # EQ  # not the reporters' calls to the registry
        by_caller = {"date": today, "tflag1": "", "tflag2": "", "indexs": ["succ_count", "exce_count"],
                     "groupby": ["master_name", "slave_name", "interface_name"], "conditions": echo}  # fmt: skip
        # the Go server's own view counts our 3 calls and the Go client's; the Go client its 1; @tars/rpc its one-way
        want = {"stat_from_server,Test.EchoServer,echo": [4.0, 0.0], "Test.GoClient,Test.EchoServer,echo": [1.0, 0.0],
                "one_way_client,Test.NodeEcho,echo": [1.0, 0.0]}  # fmt: skip
        deadline = time.monotonic() + 45  # @tars/monitor reports every 10 s at most
        while (got := k8stars_call(locator, "tars.tarsquerystat.QueryObj", by_caller))["rsp"]["result"] != want:
            assert time.monotonic() < deadline, got
            await asyncio.sleep(1.0)
        assert got["ret"] == 0 and got["rsp"]["ret"] == 0
        from_go = await asyncio.to_thread(go_query, locator, "tars.tarsquerystat.QueryObj", by_caller)
        assert from_go == {"ret": 0, "rsp_ret": 0, "msg": "", "result": want}
        prop_req = {
            "date": today,
            "tflag1": "",
            "tflag2": "",
            "indexs": ["value"],
            "conditions": [{"field": "master_name", "op": 0, "val": "Test.EchoServer"}],
            "groupby": ["property_name", "policy"],
        }
        props = await asyncio.to_thread(k8stars_call, locator, "tars.tarsqueryproperty.QueryObj", prop_req)
        assert props["rsp"]["result"]["echo_len,Sum"] == [1.0 + 5 + 20 + 7], props  # "from go" is 7 long
        assert props["rsp"]["result"]["echo_len,Count"] == [4.0], props
        go_props = await asyncio.to_thread(go_query, locator, "tars.tarsqueryproperty.QueryObj", prop_req)
        assert go_props["result"] == props["rsp"]["result"]

        async with aiohttp.ClientSession() as http:
            async with http.post(f"http://127.0.0.1:{http_port}/api/query/stat", json=by_caller) as r:
                assert (await r.json())["result"] == want  # the JSON view: the same numbers

        # the stat service restarts (SIGTERM: it writes what it holds, deregisters); nothing is lost
        stat.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(stat.wait, 20) == 0
        stat = start_stat()
        await _registered(locator)
        again = await asyncio.to_thread(k8stars_call, locator, "tars.tarsquerystat.QueryObj", by_caller)
        assert again["rsp"]["result"] == want
        # a comparison day without data: an empty answer, not an error
        empty = await asyncio.to_thread(k8stars_call, locator, "tars.tarsquerystat.QueryObj",
                                        {**by_caller, "date": "20000101", "groupby": ["f_tflag"]})  # fmt: skip
        assert empty["ret"] == 0 and empty["rsp"]["result"] == {}, empty
    finally:
        for p in reversed(procs):
            stop_process(p)
