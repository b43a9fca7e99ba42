"""The RPC runtime, Python client against Python server, through the public API: every path a caller can hit."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import struct
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from examples.hello.gen.hello import Hello_interface, HelloProxy, HelloReq
from examples.hello.server import SERVANT, HelloImp
from k8stars.tars import codec, errors, packet
from k8stars.tars.config import TarsConfig
from k8stars.tars.endpoint import Endpoint
from k8stars.tars.interface import Interface, Operation, Param
from k8stars.tars.protocol.adminf import AdminFProxy
from k8stars.tars.protocol.endpointf import EndpointF
from k8stars.tars.protocol.queryf import QueryF_findObjectByIdInSameGroup_result, QueryFServant
from k8stars.tars.rpc import Application, Communicator, ServantProxy, Server
from k8stars.tars.rpc.application import ServerSettings, settings_from_config
from k8stars.tars.tup import UniAttribute


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    srv = Server(grace_seconds=2)
    srv.add_servant(HelloImp(), SERVANT, "tcp -h 127.0.0.1 -p 0 -t 60000")
    await srv.start()
    yield srv
    await srv.stop(0)


def endpoint_of(srv: Server) -> Endpoint:
    return srv.adapters[SERVANT + "Adapter"].endpoint


@pytest.fixture
async def comm() -> AsyncIterator[Communicator]:
    async with Communicator() as c:
        yield c


def hello(comm: Communicator, srv: Server) -> HelloProxy:
    return comm.string_to_proxy(HelloProxy, f"{SERVANT}@{endpoint_of(srv)}")


async def test_calls_results_and_out_params(server: Server, comm: Communicator) -> None:
    p = hello(comm, server)
    assert await p.sayHello("bob") == "hello bob"
    assert await p.echo("x" * 70000) == (0, "x" * 70000)
    res = await p.greet(HelloReq("ann", 2))
    assert res.ret == 0 and res.lines == ["hello ann", "hello ann"]
    assert await p.sleep(1) is None
    await p.tars_ping()
    results = await asyncio.gather(*(p.echo(str(i)) for i in range(300)))  # multiplexed on one connection
    assert [r.r for r in results] == [str(i) for i in range(300)]


async def test_context_and_response_context(server: Server, comm: Communicator) -> None:
    p = hello(comm, server).tars_options(context={"trace": "1"})
    rsp = await p.tars_invoke_raw("sayHello", Hello_interface["sayHello"].encode_args(["c"]))
    assert rsp is not None and rsp.context == {"served-by": str(os.getpid())}


async def test_unknown_servant_and_function(server: Server, comm: Communicator) -> None:
    wrong = comm.string_to_proxy(HelloProxy, f"TestApp.HelloServer.Nope@{endpoint_of(server)}")
    with pytest.raises(errors.NoServantError, match=r"no servant TestApp\.HelloServer\.Nope"):
        await wrong.sayHello("x")
    extra = Interface("TestApp", "Hello", {"nope": Operation("nope", codec.INT, ())})
    p = comm.string_to_proxy(ServantProxy, f"{SERVANT}@{endpoint_of(server)}", interface=extra)
    with pytest.raises(errors.NoFunctionError):
        await p.tars_invoke("nope", ())


async def test_bad_parameters_and_handler_errors(server: Server, comm: Communicator) -> None:
    p = hello(comm, server)
    with pytest.raises(errors.ServerDecodeError, match="cannot decode parameters"):
        await p.tars_invoke_raw("sayHello", b"\x07\xff")
    wrong_type = Interface("TestApp", "Hello", {"sleep": Operation("sleep", None, (Param(1, "ms", codec.STRING),))})
    bad = comm.string_to_proxy(ServantProxy, f"{SERVANT}@{endpoint_of(server)}", interface=wrong_type)
    with pytest.raises(errors.ServerDecodeError, match="type mismatch"):
        await bad.tars_invoke("sleep", ("x",))
    with pytest.raises(errors.ServerUnknownError, match="ValueError"):
        await p.greet(HelloReq("x", times=-(2**31)))  # list * negative is fine; make the handler fail instead
    assert await p.sayHello("still serving") == "hello still serving"


@pytest.fixture(autouse=True)
def _failing_greet(monkeypatch: pytest.MonkeyPatch) -> None:
    async def greet(self: HelloImp, req: HelloReq) -> tuple[int, list[str]]:
        if req.times < 0:
            raise ValueError("times must not be negative")
        if req.times == 99:
            raise errors.TarsRpcError("business failure", code=1001)
        return 0, [f"hello {req.name}"] * req.times

    monkeypatch.setattr(HelloImp, "greet", greet)


async def test_business_error_code(server: Server, comm: Communicator) -> None:
    with pytest.raises(errors.TarsRpcError) as err:
        await hello(comm, server).greet(HelloReq("x", 99))
    assert err.value.code == 1001 and "business failure" in str(err.value)


async def test_invoke_timeout_leaves_server_serving(server: Server, comm: Communicator) -> None:
    p = hello(comm, server)
    started = time.monotonic()
    with pytest.raises(errors.InvokeTimeoutError):
        await p.tars_options(timeout_ms=100).sleep(1000)
    assert time.monotonic() - started < 0.9
    assert await p.sayHello("after") == "hello after"


async def test_queue_timeout() -> None:
    class Blocking(HelloImp):
        async def sleep(self, ms: int) -> None:
            time.sleep(ms / 1000)  # a CPU-bound handler: everything behind it waits in the queue

    srv = Server()
    srv.add_servant(Blocking(), SERVANT, "tcp -h 127.0.0.1 -p 0 -t 60000", queue_timeout_ms=5000)
    await srv.start()
    try:
        # Both requests arrive together; the first blocks the loop for 400 ms, so the second waits in the queue
        # longer than its iTimeout of 150 ms and must be refused without running.
        def request(rid: int, func: str, args: list[object], timeout: int) -> bytes:
            body = Hello_interface[func].encode_args(args)
            pkt = packet.RequestPacket(iVersion=1, iRequestId=rid, sServantName=SERVANT, sFuncName=func,
                                       sBuffer=body, iTimeout=timeout)  # fmt: skip
            return packet.encode_request(pkt)

        burst = request(1, "sleep", [400], 3000) + request(2, "sayHello", ["late"], 150)
        data = await asyncio.get_running_loop().run_in_executor(None, raw_exchange, endpoint_of(srv), burst)
        replies = {r.iRequestId: r for r in map(packet.decode_response, packet.FrameDecoder().feed(data))}
        assert replies[1].iRet == 0
        assert replies[2].iRet == errors.TARSSERVERQUEUETIMEOUT and "queued" in replies[2].sResultDesc
        assert srv.adapters[SERVANT + "Adapter"].stats.queue_timeouts == 1
    finally:
        await srv.stop(0)


async def test_overload(comm: Communicator) -> None:
    srv = Server()
    srv.add_servant(HelloImp(), SERVANT, "tcp -h 127.0.0.1 -p 0 -t 60000", queue_cap=2)
    await srv.start()
    try:
        p = hello(comm, srv)
        outcomes = await asyncio.gather(*(p.sleep(200) for _ in range(3)), return_exceptions=True)
        assert sum(isinstance(o, errors.OverloadError) for o in outcomes) == 1
        assert await p.sayHello("ok") == "hello ok"
    finally:
        await srv.stop(0)


async def test_oneway_is_never_answered(comm: Communicator) -> None:
    seen: list[str] = []

    class Recording(HelloImp):
        async def sayHello(self, name: str) -> str:
            seen.append(name)
            return name

    srv = Server()
    srv.add_servant(Recording(), SERVANT, "tcp -h 127.0.0.1 -p 0 -t 60000")
    await srv.start()
    try:
        p = hello(comm, srv)
        assert await p.tars_options(oneway=True).sayHello("fire") is None
        assert await p.sayHello("sync") == "sync"
        assert seen == ["fire", "sync"]
    finally:
        await srv.stop(0)


async def test_connection_refused_and_server_killed(comm: Communicator, port: int) -> None:
    p = comm.string_to_proxy(HelloProxy, f"{SERVANT}@tcp -h 127.0.0.1 -p {port}")
    with pytest.raises(errors.ConnectError):
        await p.sayHello("nobody")
    srv = Server()
    srv.add_servant(HelloImp(), SERVANT, f"tcp -h 127.0.0.1 -p {port} -t 60000")
    await srv.start()
    p = comm.string_to_proxy(HelloProxy, f"{SERVANT}@tcp -h 127.0.0.1 -p {port} ")  # a new proxy, same endpoint
    call = asyncio.create_task(p.sleep(2000))
    await asyncio.sleep(0.1)
    for conn in list(srv.adapters[SERVANT + "Adapter"].connections):
        conn.transport.abort()  # type: ignore[union-attr]  # the server "dies" mid-call
    with pytest.raises(errors.ConnectError, match="lost"):
        await call
    assert await p.sayHello("again") == "hello again"  # the client reconnects
    await srv.stop(0)


def raw_exchange(ep: Endpoint, data: bytes) -> bytes:
    with socket.create_connection((ep.host, ep.port), timeout=2) as s:
        s.sendall(data)
        s.settimeout(2)
        chunks = b""
        try:
            while chunk := s.recv(65536):
                chunks += chunk
        except TimeoutError:
            pass
        return chunks


async def test_garbage_and_oversized_frames_close_only_that_connection(server: Server, comm: Communicator) -> None:
    ep = endpoint_of(server)
    loop = asyncio.get_running_loop()
    assert await loop.run_in_executor(None, raw_exchange, ep, b"\x00\x00\x00\x09garbage!!") == b""
    assert await loop.run_in_executor(None, raw_exchange, ep, struct.pack(">I", 64 << 20) + b"x" * 100) == b""
    assert await hello(comm, server).sayHello("fine") == "hello fine"


async def test_max_frame_size_is_configurable(comm: Communicator) -> None:
    srv = Server()
    srv.add_servant(HelloImp(), SERVANT, "tcp -h 127.0.0.1 -p 0 -t 60000", max_frame_size=1024)
    await srv.start()
    try:
        p = hello(comm, srv)
        assert (await p.echo("x" * 100)).r == "x" * 100
        with pytest.raises(errors.ConnectError):
            await p.echo("x" * 2000)
    finally:
        await srv.stop(0)


async def test_graceful_stop_drains_and_pushes_reconnect(comm: Communicator) -> None:
    srv = Server(grace_seconds=5)
    srv.add_servant(HelloImp(), SERVANT, "tcp -h 127.0.0.1 -p 0 -t 60000")
    await srv.start()
    p = hello(comm, srv)
    call = asyncio.create_task(p.sleep(300))
    await asyncio.sleep(0.05)
    await srv.stop()
    assert await call is None  # the call in flight finished
    with pytest.raises(errors.ConnectError):
        await p.sayHello("after stop")


async def test_max_connections(port: int) -> None:
    srv = Server()
    srv.add_servant(HelloImp(), SERVANT, f"tcp -h 127.0.0.1 -p {port} -t 60000", max_conns=1)
    await srv.start()
    try:
        async with Communicator() as c1, Communicator() as c2:
            assert await hello(c1, srv).sayHello("first") == "hello first"
            with pytest.raises(errors.ConnectError):
                await hello(c2, srv).sayHello("second")
    finally:
        await srv.stop(0)


async def test_idle_connections_are_closed() -> None:
    srv = Server()
    srv.add_servant(HelloImp(), SERVANT, "tcp -h 127.0.0.1 -p 0 -t 200")
    await srv.start()
    try:
        async with Communicator() as c:
            p = hello(c, srv)
            assert await p.sayHello("a") == "hello a"
            await asyncio.sleep(0.5)
            assert not srv.adapters[SERVANT + "Adapter"].connections
            assert await p.sayHello("b") == "hello b"  # reconnects transparently
    finally:
        await srv.stop(0)


async def test_udp_adapter_and_client(comm: Communicator) -> None:
    srv = Server()
    srv.add_servant(HelloImp(), SERVANT, "udp -h 127.0.0.1 -p 0 -t 60000")
    await srv.start()
    try:
        p = hello(comm, srv)
        assert await p.sayHello("datagram") == "hello datagram"
        assert (await p.greet(HelloReq("u", 3))).lines == ["hello u"] * 3
    finally:
        await srv.stop(0)


async def test_tup_and_json_requests(server: Server) -> None:
    ep = endpoint_of(server)
    loop = asyncio.get_running_loop()
    for version in (packet.TUPVERSION, packet.TUPVERSION2):
        ua = UniAttribute(version)
        ua.put("req", codec.struct_of(HelloReq), HelloReq("tup", 2))
        req = packet.RequestPacket(iVersion=version, iRequestId=5, sServantName=SERVANT, sFuncName="greet",
                                   sBuffer=ua.encode(), iTimeout=1000)  # fmt: skip
        data = await loop.run_in_executor(None, raw_exchange, ep, packet.encode_request(req))
        (body,) = packet.FrameDecoder().feed(data)
        reply = packet.decode_request(body)  # TUP is answered with a RequestPacket
        assert (reply.iVersion, reply.iRequestId, reply.status["STATUS_RESULT_CODE"]) == (version, 5, "0")
        out = UniAttribute.decode(reply.sBuffer, version)
        assert out.get("", codec.INT) == 0 and out.get("lines", codec.vector_of(codec.STRING)) == ["hello tup"] * 2
    doc = json.dumps({"req": {"name": "js", "times": 1}}).encode()
    req = packet.RequestPacket(iVersion=packet.JSONVERSION, iRequestId=6, sServantName=SERVANT, sFuncName="greet",
                               sBuffer=doc, iTimeout=1000)  # fmt: skip
    data = await loop.run_in_executor(None, raw_exchange, ep, packet.encode_request(req))
    (body,) = packet.FrameDecoder().feed(data)
    rsp = packet.decode_response(body)
    assert (rsp.iVersion, rsp.iRet) == (packet.JSONVERSION, 0)
    assert json.loads(rsp.sBuffer) == {"tars_ret": 0, "lines": ["hello js"]}


class StubRegistry(QueryFServant):
    """A fixed QueryF answer (the real registry is tested in its own suite)."""

    def __init__(self, endpoints: dict[str, list[EndpointF]]) -> None:
        self.endpoints = endpoints
        self.calls: list[tuple[str, dict[str, str]]] = []

    async def findObjectByIdInSameGroup(self, id: str) -> QueryF_findObjectByIdInSameGroup_result:
        from k8stars.tars.rpc import current

        self.calls.append((id, dict(current().context)))
        return QueryF_findObjectByIdInSameGroup_result(0, self.endpoints.get(id, []), [])


async def test_locator_resolution_round_robin_and_failover() -> None:
    servers = []
    for _ in range(2):
        s = Server()
        s.add_servant(HelloImp(), SERVANT, "tcp -h 127.0.0.1 -p 0 -t 60000")
        await s.start()
        servers.append(s)
    dead = Endpoint("127.0.0.1", _closed_port())
    stub = StubRegistry({SERVANT: [endpoint_of(s).to_endpointf() for s in servers] + [dead.to_endpointf()]})
    reg = Server()
    reg.add_servant(stub, "tars.tarsregistry.QueryObj", "tcp -h 127.0.0.1 -p 0 -t 60000")
    await reg.start()
    locator = f"tars.tarsregistry.QueryObj@{reg.adapters['tars.tarsregistry.QueryObjAdapter'].endpoint}"
    try:
        async with Communicator(locator=locator, node_name="127.0.0.9") as comm:
            p = comm.string_to_proxy(HelloProxy, SERVANT)
            for i in range(9):
                assert await p.sayHello(str(i)) == f"hello {i}"  # the dead endpoint is skipped
            served = [s.adapters[SERVANT + "Adapter"].stats.requests for s in servers]
            assert all(n >= 3 for n in served), served
            assert stub.calls[0] == (SERVANT, {"node_name": "127.0.0.9"})
            assert len(await p.tars_endpoints()) == 3
            missing = comm.string_to_proxy(HelloProxy, "TestApp.Nobody.Obj")
            with pytest.raises(errors.AdapterNullError, match="no active endpoint"):
                await missing.sayHello("x")
    finally:
        for s in [*servers, reg]:
            await s.stop(0)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


CONFIG = """<tars>
  <application>
    enableset=n
    setdivision=NULL
    <client>
      locator=tars.tarsregistry.QueryObj@tcp -h 127.0.0.1 -p 1
      sync-invoke-timeout=3000
      refresh-endpoint-interval=60000
      modulename=TestApp.HelloServer
    </client>
    <server>
      app=TestApp
      server=HelloServer
      localip=127.0.0.1
      local=tcp -h 127.0.0.1 -p {admin} -t 10000
      logLevel=INFO
      # a comment line
      <TestApp.HelloServer.HelloObjAdapter>
        allow
        endpoint=tcp -h 127.0.0.1 -p {port} -t 60000
        servant=TestApp.HelloServer.HelloObj
        protocol=tars
        threads=5
        maxconns=200000
        queuecap=10000
        queuetimeout=60000
      </TestApp.HelloServer.HelloObjAdapter>
    </server>
  </application>
</tars>
"""


async def test_application_from_config_and_admin(tmp_path: Path) -> None:
    from tests.conftest import free_port

    conf = tmp_path / "HelloServer.conf"
    admin_port, port = free_port(), free_port()
    conf.write_text(CONFIG.format(admin=admin_port, port=port))
    settings: ServerSettings = settings_from_config(TarsConfig.load(conf))
    assert [a.queue_cap for a in settings.adapters] == [10000]
    app = Application.from_config(conf)
    app.add_servant(HelloImp(), "TestApp.HelloServer.HelloObj")
    app.register_admin_command("my.cmd", lambda cmd, params: f"got {params}", "a user command")
    runner = asyncio.create_task(app.run())
    await asyncio.sleep(0.2)
    try:
        async with Communicator() as comm:
            p = comm.string_to_proxy(HelloProxy, f"TestApp.HelloServer.HelloObj@tcp -h 127.0.0.1 -p {port}")
            assert await p.sayHello("conf") == "hello conf"
            admin = comm.string_to_proxy(AdminFProxy, f"AdminObj@tcp -h 127.0.0.1 -p {admin_port}")
            assert await admin.getPid() == os.getpid()
            assert "TestApp.HelloServer.HelloObjAdapter" in await admin.notify("tars.viewstatus")
            assert await admin.notify("tars.setloglevel WARN") == "tars.setloglevel WARN succ"
            # Python's spelling (what --log-level takes) is WARN too, never the DEBUG fallback
            assert await admin.notify("tars.setloglevel WARNING") == "tars.setloglevel WARNING succ"
            assert logging.getLogger().level == logging.WARNING
            assert "my.cmd: a user command" in await admin.notify("tars.help")
            assert await admin.notify("my.cmd a b") == "got a b"
            assert "k8stars" in await admin.notify("tars.viewversion")
            assert "127.0.0.1" in await admin.notify("tars.connection")
            # tars.loadconfig FILE fetches FILE from the config service (tests/services cover the success)
            assert "give a file name" in await admin.notify("tars.loadconfig")
            assert await admin.notify("tars.loadconfig x.conf") == (
                "tars.loadconfig x.conf failed: no config service: the server config has no config= "
                "(tars.application.server)"
            )
            assert await admin.notify("no.such.command") == ""
            await admin.shutdown()
        await asyncio.wait_for(runner, 5)
    finally:
        runner.cancel()


async def test_reconnect_push_moves_calls_to_a_new_connection() -> None:
    """A TarsGo server about to stop pushes `_reconnect_` (request id 0): later calls use a new connection."""
    connections = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        decoder = packet.FrameDecoder()
        while data := await reader.read(65536):
            for body in decoder.feed(data):
                req = packet.decode_request(body)
                op = Hello_interface[req.sFuncName]
                (name,) = op.decode_args(req.sBuffer)
                rsp = packet.ResponsePacket(iVersion=1, iRequestId=req.iRequestId, sBuffer=op.encode_result(name),
                                            status={})  # fmt: skip
                writer.write(packet.encode_response(rsp))
                push = packet.ResponsePacket(iVersion=1, iRequestId=0, sBuffer=b"", status={},
                                             sResultDesc=packet.RECONNECT_DESC)  # fmt: skip
                writer.write(packet.encode_response(push))
        writer.close()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    try:
        async with Communicator() as comm:
            p = comm.string_to_proxy(HelloProxy, f"{SERVANT}@tcp -h 127.0.0.1 -p {port}")
            assert await p.sayHello("one") == "one"
            await asyncio.sleep(0.05)
            assert await p.sayHello("two") == "two"
            assert connections == 2
    finally:
        srv.close()
        await srv.wait_closed()
