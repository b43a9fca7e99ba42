"""The call chain end to end: a real TarsGo v1.4.6 client with tracing on (its tars2go stub writes cs/cr) calls a
k8stars server that calls another k8stars server (each writing sr/ss and its own cs/cr), all sending their
``_t_trace_`` records to the log service found through the registry; ``tars.tarslog.TopologyObj``, called by name
through the registry with ``k8stars call``, answers the chain (graphTrace, listTrace, graphServer, listFunction,
listTraceSummary), also after the log service restarts. Our own client with tracing on gives the same shape."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from k8stars.services.log.app import LOG_OBJ, TOPOLOGY_OBJ
from k8stars.tars.idl.compiler import load_runtime
from k8stars.tars.protocol.queryf import QueryFProxy
from k8stars.tars.rpc import Application, Communicator, Servant, ServantProxy, trace
from k8stars.testing.peers import peer_command
from k8stars.testing.procs import free_port, stop_process, wait_port

ROOT = Path(__file__).resolve().parents[2]
ECHO = load_runtime([ROOT / "k8stars/testing/peers/go/echo.tars"]).interfaces()["Test::Echo"]
FRONT, BACK = "Test.FrontServer.EchoObj", "Test.BackServer.EchoObj"

SERVER_CONF = """<tars>
  <application>
    <client>
      locator={locator}
      modulename=Test.{server}
    </client>
    <server>
      app=Test
      server={server}
      localip=127.0.0.1
      local=tcp -h 127.0.0.1 -p {admin} -t 10000
      log=tars.tarslog.LogObj
      logLevel=WARN
      <Test.{server}.EchoObjAdapter>
        endpoint=tcp -h 127.0.0.1 -p {port} -t 60000
        servant=Test.{server}.EchoObj
      </Test.{server}.EchoObjAdapter>
    </server>
  </application>
</tars>
"""

GO_CLIENT_CONF = """<tars>
  <application>
    <client>
      locator={locator}
      modulename=Test.GoClient
      property=tars.tarsproperty.PropertyObj@tcp -h 127.0.0.1 -p {property_port}
    </client>
    <server>
      app=Test
      server=GoClient
      logpath={dir}
      logLevel=ERROR
      log=tars.tarslog.LogObj
    </server>
  </application>
</tars>
"""


class Echo(Servant):
    """echo(s): the back server answers s; the front server asks the back server for s + '!'."""

    __tars_interface__ = ECHO

    def __init__(self, comm: Communicator, back: str = "") -> None:
        self.comm, self.back = comm, back

    async def echo(self, s: str) -> tuple[int, str]:
        if not self.back:
            return 0, s
        proxy = self.comm.string_to_proxy(ServantProxy, self.back, interface=ECHO)
        ret, r = await proxy.tars_invoke("echo", (s + "!",))
        return ret, r


def k8stars_call(locator: str, func: str, args: dict[str, Any]) -> dict[str, Any]:
    argv = [sys.executable, "-m", "k8stars", "call", "--locator", locator, TOPOLOGY_OBJ, func, json.dumps(args)]
    r = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r
    return json.loads(r.stdout)  # type: ignore[no-any-return]


async def registered(locator: str, servants: tuple[str, ...], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    async with Communicator() as comm:
        query = comm.string_to_proxy(QueryFProxy, locator).tars_options(timeout_ms=500)
        for servant in servants:
            while not (await query.findObjectById4Any(servant)).activeEp:
                assert time.monotonic() < deadline, f"{servant} not registered within {timeout:.0f} s"
                await asyncio.sleep(0.2)


async def chain_of(locator: str, trace_id: str, edges: int, timeout: float = 30.0) -> tuple[str, dict[str, Any]]:
    """(date, graph) of the trace once its ``edges`` calls and their servers' sides are complete (records travel in
    1 s batches)."""
    deadline = time.monotonic() + timeout
    while True:
        date = time.strftime("%Y%m%d")
        got = await asyncio.to_thread(k8stars_call, locator, "graphTrace", {"date": date, "traceId": trace_id})
        es = got["graph"]["es"]
        complete = all(e["callCount"] == 1 for e in es) and all(v["callCount"] == 1 for v in got["graph"]["vs"])
        if len(es) == edges and complete:
            assert got["ret"] == 0, got
            return date, got["graph"]
        assert time.monotonic() < deadline, got
        await asyncio.sleep(0.5)


def start_log(tmp_path: Path, locator: str, port: int) -> subprocess.Popen[bytes]:
    out = (tmp_path / "log.out").open("ab")
    argv = [sys.executable, "-m", "k8stars", "log", "--log-dir", str(tmp_path / "logs"), "--locator", locator,
            "--endpoint", f"tcp -h 127.0.0.1 -p {port}"]  # fmt: skip
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    wait_port(port, proc)
    return proc


def check_shape(graph: dict[str, Any], client: str, data: str) -> None:
    """client -> Front.echo (order 1) -> Back.echo (order 2), each call and each server's work counted once."""
    front, back = f"{FRONT}.echo", f"{BACK}.echo"
    assert [(v["vertex"], v["callCount"]) for v in graph["vs"]] == [(back, 1), (front, 1), (client, 1)], graph
    es = graph["es"]
    assert [(e["fromVertex"], e["toVertex"], e["order"]) for e in es] == [(client, front, 1), (front, back, 2)]
    for e in es:
        assert e["csTime"] <= e["srTime"] + 5 and e["srTime"] <= e["ssTime"] <= e["crTime"] + 5, e  # one clock
        assert e["callTime"] == e["crTime"] - e["csTime"] and e["ret"] == "0" and e["spanId"], e
    # the parameters (TarsGo's trace flags f: every side), base64 JSON as TarsGo writes them
    assert json.loads(base64.b64decode(es[0]["srData"])) == {"s": data}, es[0]
    assert json.loads(base64.b64decode(es[1]["srData"])) == {"s": data + "!"}, es[1]
    assert json.loads(base64.b64decode(es[1]["ssData"])) == {"": 0, "r": data + "!"}, es[1]


async def test_a_tarsgo_client_and_ours_trace_a_chain_through_two_k8stars_servers(tmp_path: Path) -> None:
    client_cmd = peer_command("go", "echo-client")  # builds the TarsGo peer once (cached)
    reg_port, log_port, front_port, back_port = (free_port() for _ in range(4))
    locator = f"tars.tarsregistry.QueryObj@tcp -h 127.0.0.1 -p {reg_port}"
    procs: list[subprocess.Popen[bytes]] = []
    apps: list[Application] = []
    try:
        reg = subprocess.Popen([sys.executable, "-m", "k8stars", "registry", "--port", str(reg_port), "--data-dir",
                                str(tmp_path / "reg"), "--http-port", "0"], cwd=ROOT,
                               stdout=(tmp_path / "reg.out").open("wb"), stderr=subprocess.STDOUT)  # fmt: skip
        procs.append(reg)
        wait_port(reg_port, reg)
        procs.append(start_log(tmp_path, locator, log_port))
        await registered(locator, (LOG_OBJ, TOPOLOGY_OBJ))
        for server, port in (("BackServer", back_port), ("FrontServer", front_port)):
            conf = tmp_path / f"{server}.conf"
            conf.write_text(SERVER_CONF.format(locator=locator, server=server, admin=free_port(), port=port))
            app = Application.from_config(conf)
            back = f"{BACK}@tcp -h 127.0.0.1 -p {back_port}" if server == "FrontServer" else ""
            app.add_servant(Echo(app.comm, back), f"Test.{server}.EchoObj")
            await app.start()
            apps.append(app)

        # a TarsGo client opens the trace (current.OpenTarsTrace with parameters)
        conf = tmp_path / "client.conf"
        conf.write_text(GO_CLIENT_CONF.format(locator=locator, property_port=free_port(), dir=tmp_path))
        argv = [*client_cmd, f"{FRONT}@tcp -h 127.0.0.1 -p {front_port}", "--config", str(conf), "--once", "go",
                "--trace", "--linger", "2500"]  # fmt: skip
        done = await asyncio.to_thread(subprocess.run, argv, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done
        reply = json.loads(done.stdout)
        assert reply["r"] == "go!" and reply["trace"].startswith("f-"), reply
        go_trace = reply["trace"]
        date, go_graph = await chain_of(locator, go_trace, 2)
        check_shape(go_graph, "Test.GoClient", "go")

        # our own client, tracing on: the same shape under its module name
        async with Communicator(locator=locator) as comm:
            handler = trace.log_to(comm, LOG_OBJ, "Test", "PyClient")
            proxy = comm.string_to_proxy(ServantProxy, f"{FRONT}@tcp -h 127.0.0.1 -p {front_port}", interface=ECHO)
            assert tuple(await proxy.tars_invoke("echo", ("untraced",))) == (0, "untraced!")
            with trace.open_trace(params=True) as py_trace:
                assert tuple(await proxy.tars_invoke("echo", ("py",))) == (0, "py!")
            await handler.aclose()
        _, graph = await chain_of(locator, py_trace, 2)
        check_shape(graph, "Test.PyClient", "py")

        # the lists: by server (a module or a servant), by function, summaries by time
        for server in ("Test.FrontServer", BACK, "Test.GoClient"):
            ts = k8stars_call(locator, "listTrace", {"date": date, "serverName": server})["ts"]
            assert go_trace in ts and (server == "Test.GoClient" or py_trace in ts), (server, ts)
        fs = k8stars_call(locator, "listFunction", {"date": date, "serverName": "Test.BackServer"})
        assert fs == {"ret": 0, "fs": [f"{BACK}.echo"]}, fs
        ss = k8stars_call(locator, "listTraceSummary", {"date": date, "beginTime": 0, "endTime": 2**62,
                                                        "serverName": FRONT})["ts"]  # fmt: skip
        assert [s["name"] for s in ss] == [py_trace, go_trace], ss  # newest first
        assert all(0 < s["startTime"] <= s["endTime"] for s in ss), ss
        graphs = k8stars_call(locator, "graphServer", {"date": date, "serverName": FRONT})["graph"]
        shapes = {tuple(v["vertex"] for v in g["vs"]): g for g in graphs}
        assert set(shapes) == {(BACK, FRONT, "Test.GoClient"), (BACK, FRONT, "Test.PyClient")}, graphs
        by_go = shapes[(BACK, FRONT, "Test.GoClient")]
        assert [(e["fromVertex"], e["toVertex"], e["callCount"]) for e in by_go["es"]] == [
            ("Test.GoClient", FRONT, 1), (FRONT, BACK, 1)]  # fmt: skip
        fg = k8stars_call(locator, "graphFunction", {"date": date, "functionName": f"{BACK}.echo"})["graph"]
        assert len(fg) == 2, fg

        # after a restart the log service answers from its trace file
        stop_process(procs.pop())
        procs.append(start_log(tmp_path, locator, log_port))
        await registered(locator, (TOPOLOGY_OBJ,))
        _, again = await chain_of(locator, go_trace, 2)
        assert again == go_graph, (again, go_graph)
        files = list((tmp_path / "logs/_tars_/_trace_").iterdir())
        assert [f.name for f in files] == [f"_tars_._trace___t_trace__{date}.log"], files
        # node|app|server|record, one line per record; the senders' lines arrive in any order
        lines = [x for x in files[0].read_text().splitlines() if x.startswith("127.0.0.1|Test|GoClient|")]
        assert lines and all(f"|{go_trace}|" in x for x in lines), lines
    finally:
        for app in reversed(apps):
            await app.stop()
        for p in reversed(procs):
            stop_process(p)


GO_SERVER_CONF = """<tars>
  <application>
    <client>
      locator={locator}
      modulename=Test.EchoServer
      property=tars.tarsproperty.PropertyObj@tcp -h 127.0.0.1 -p {property_port}
    </client>
    <server>
      app=Test
      server=EchoServer
      localip=127.0.0.1
      logpath={dir}
      logLevel=ERROR
      log=tars.tarslog.LogObj
      <Test.EchoServer.EchoObjAdapter>
        endpoint=tcp -h 127.0.0.1 -p {port} -t 60000
        servant=Test.EchoServer.EchoObj
        protocol=tars
        threads=1
      </Test.EchoServer.EchoObjAdapter>
    </server>
  </application>
</tars>
"""


async def test_a_tarsgo_server_traces_its_side_of_our_traced_call(tmp_path: Path) -> None:
    """Our client opens the trace; the TarsGo server reads the key from the request (iMessageType 0x100,
    STATUS_TRACE_KEY) and its generated servant writes sr/ss: the chain has the TarsGo server's own time and data."""
    server_cmd = peer_command("go", "echo-server")
    reg_port, log_port, echo_port = (free_port() for _ in range(3))
    locator = f"tars.tarsregistry.QueryObj@tcp -h 127.0.0.1 -p {reg_port}"
    procs: list[subprocess.Popen[bytes]] = []
    try:
        reg = subprocess.Popen([sys.executable, "-m", "k8stars", "registry", "--port", str(reg_port), "--data-dir",
                                str(tmp_path / "reg"), "--http-port", "0"], cwd=ROOT,
                               stdout=(tmp_path / "reg.out").open("wb"), stderr=subprocess.STDOUT)  # fmt: skip
        procs.append(reg)
        wait_port(reg_port, reg)
        procs.append(start_log(tmp_path, locator, log_port))
        await registered(locator, (LOG_OBJ, TOPOLOGY_OBJ))
        conf = tmp_path / "echo.conf"
        conf.write_text(GO_SERVER_CONF.format(locator=locator, property_port=free_port(), dir=tmp_path,
                                              port=echo_port))  # fmt: skip
        go = subprocess.Popen([*server_cmd, "--config", str(conf)], cwd=tmp_path,
                              stdout=(tmp_path / "echo.out").open("wb"), stderr=subprocess.STDOUT)  # fmt: skip
        procs.append(go)
        wait_port(echo_port, go)
        servant = "Test.EchoServer.EchoObj"
        async with Communicator(locator=locator) as comm:
            handler = trace.log_to(comm, LOG_OBJ, "Test", "PyClient")
            proxy = comm.string_to_proxy(ServantProxy, f"{servant}@tcp -h 127.0.0.1 -p {echo_port}", interface=ECHO)
            with trace.open_trace(params=True) as tid:
                assert tuple(await proxy.tars_invoke("echo", ("to go",))) == (0, "to go")
            await handler.aclose()
        _, graph = await chain_of(locator, tid, 1)
        assert [(v["vertex"], v["callCount"]) for v in graph["vs"]] == [(f"{servant}.echo", 1), ("Test.PyClient", 1)]
        (edge,) = graph["es"]
        assert (edge["fromVertex"], edge["toVertex"], edge["order"], edge["ret"]) == (
            "Test.PyClient", f"{servant}.echo", 1, "0")  # fmt: skip
        assert edge["csTime"] and edge["srTime"] and edge["ssTime"] and edge["crTime"], edge  # all four sides
        assert json.loads(base64.b64decode(edge["srData"])) == {"s": "to go"}, edge  # TarsGo's JSON of the params
        assert json.loads(base64.b64decode(edge["ssData"]))["r"] == "to go", edge
    finally:
        for p in reversed(procs):
            stop_process(p)
