"""Call-chain tracing in the RPC runtime, through real sockets: the trace key on the wire (iMessageType 0x100,
STATUS_TRACE_KEY), the four records of each side in TarsGo's line format, spans of nested calls, the parameter
flags and limits, one-way calls, and nothing at all when tracing is off."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from k8stars.tars.idl.compiler import load_runtime
from k8stars.tars.packet import STATUS_TRACE_KEY, TARSMESSAGETYPETRACE
from k8stars.tars.rpc import Communicator, Servant, ServantProxy, Server, current, trace

GO_SRC = Path(__file__).resolve().parents[2] / "k8stars" / "testing" / "peers" / "go"
ECHO = load_runtime([GO_SRC / "echo.tars"]).interfaces()["Test::Echo"]


class Sink:
    """Stands for the _t_trace_ remote log handler: the lines as they would be sent."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def queue_line(self, line: str) -> None:
        self.lines.append(line)

    def records(self) -> list[list[str]]:
        return [line.rstrip("\n").split("|")[1:] for line in self.lines]  # without the date and time


class Echo(Servant):
    __tars_interface__ = ECHO

    def __init__(self, comm: Communicator, back: str = "") -> None:
        self.comm, self.back = comm, back
        self.seen: list[tuple[int, str | None]] = []  # (iMessageType, trace key) of each request

    async def echo(self, s: str) -> tuple[int, str]:
        cur = current()
        self.seen.append((cur.request.iMessageType, cur.status.get(STATUS_TRACE_KEY)))
        if not self.back:
            return 0, s
        ret, r = await self.comm.string_to_proxy(ServantProxy, self.back, interface=ECHO).tars_invoke("echo", (s,))
        return ret, r


@dataclass
class Chain:
    client: ServantProxy
    front: Echo
    back: Echo
    sink: Sink


@pytest.fixture
async def chain() -> AsyncIterator[Chain]:
    """client (Test.Client) -> Test.Front.EchoObj -> Test.Back.EchoObj, every side writing to one sink."""
    sink = Sink()
    comms = [Communicator() for _ in range(3)]
    for comm, module in zip(comms, ("Test.Client", "Test.Front", "Test.Back"), strict=True):
        comm.tracer = trace.Tracer(module, lambda: sink)  # type: ignore[arg-type,return-value]
    back, back_server = Echo(comms[2]), Server()
    a = back_server.add_servant(back, "Test.Back.EchoObj", "tcp -h 127.0.0.1 -p 0")
    a.tracer = comms[2].tracer
    await back_server.start()
    front, front_server = Echo(comms[1], f"Test.Back.EchoObj@{a.endpoint}"), Server()
    f = front_server.add_servant(front, "Test.Front.EchoObj", "tcp -h 127.0.0.1 -p 0")
    f.tracer = comms[1].tracer
    await front_server.start()
    client = comms[0].string_to_proxy(ServantProxy, f"Test.Front.EchoObj@{f.endpoint}", interface=ECHO)
    try:
        yield Chain(client, front, back, sink)
    finally:
        await front_server.stop()
        await back_server.stop()
        for comm in comms:
            await comm.close()


async def test_off_writes_nothing_and_sends_no_key(chain: Chain) -> None:
    assert tuple(await chain.client.tars_invoke("echo", ("x",))) == (0, "x")
    assert chain.sink.lines == []
    assert chain.front.seen == [(0, None)] and chain.back.seen == [(0, None)]


async def test_a_traced_chain_writes_tarsgo_records(chain: Chain) -> None:
    with trace.open_trace(params=True) as tid:
        assert tuple(await chain.client.tars_invoke("echo", ("hi",))) == (0, "hi")
    assert trace.active() is None
    recs = chain.sink.records()
    assert all(line.endswith("|\n") and line[:4].isdigit() for line in chain.sink.lines)  # date first, ex empty
    kinds = [(r[3], r[4], r[5], r[6]) for r in recs]
    assert kinds == [
        ("cs", "Test.Client", "Test.Front.EchoObj", "echo"),
        ("sr", "Test.Front", "Test.Front.EchoObj", "echo"),
        ("cs", "Test.Front", "Test.Back.EchoObj", "echo"),
        ("sr", "Test.Back", "Test.Back.EchoObj", "echo"),
        ("ss", "Test.Back", "Test.Back.EchoObj", "echo"),
        ("cr", "Test.Front", "Test.Back.EchoObj", "echo"),
        ("ss", "Test.Front", "Test.Front.EchoObj", "echo"),
        ("cr", "Test.Client", "Test.Front.EchoObj", "echo"),
    ]
    assert {r[0] for r in recs} == {tid}
    root, child = recs[0][1], recs[2][1]
    assert recs[0][2] == root  # a root call is its own parent
    assert recs[1][1:3] == [root, "*"] and recs[6][1:3] == [root, "*"]  # the server keys the caller's span
    assert recs[2][2] == root and recs[3][1:3] == [child, "*"]  # the nested call descends from the caller's span
    # on the wire: the flag and traceId|spanId
    assert chain.front.seen == [(TARSMESSAGETYPETRACE, f"{tid}|{root}")]
    assert chain.back.seen == [(TARSMESSAGETYPETRACE, f"{tid}|{child}")]
    times = [int(r[7]) for r in recs]
    assert times == sorted(times) and all(r[8] == "0" for r in recs)
    # parameters on the servers' sides, base64 JSON as TarsGo writes them (ours leaves the client's empty)
    assert json.loads(base64.b64decode(recs[1][9])) == {"s": "hi"}
    assert json.loads(base64.b64decode(recs[4][9])) == {"": 0, "r": "hi"}
    assert recs[0][9] == ""


async def test_flags_and_limits_of_the_parameters(chain: Chain) -> None:
    with trace.open_trace(params=False):
        await chain.client.tars_invoke("echo", ("quiet",))
    assert len(chain.sink.lines) == 8 and all(r[9] == "" for r in chain.sink.records())
    chain.sink.lines.clear()
    with trace.open_trace(trace_id="4-" + "a" * 32):  # sr only
        await chain.client.tars_invoke("echo", ("x" * 2000,))  # over the default 1 KB
    datas = {r[3]: base64.b64decode(r[9]).decode() for r in chain.sink.records() if r[9]}
    assert datas == {"sr": '{"trace_param_over_max_len":true}'}
    chain.sink.lines.clear()
    with trace.open_trace(params=True, max_kb=4):
        await chain.client.tars_invoke("echo", ("x" * 2000,))
    assert json.loads(base64.b64decode(chain.sink.records()[1][9])) == {"s": "x" * 2000}


async def test_a_failing_call_is_recorded_with_its_code(chain: Chain) -> None:
    with trace.open_trace(), pytest.raises(Exception, match="no function"):
        await chain.client.tars_invoke_raw("nosuch", b"")
    (cs, cr) = chain.sink.records()  # the server answers before dispatching: no sr/ss
    assert (cs[3], cr[3], cr[8]) == ("cs", "cr", "-3")


async def test_one_way_calls_carry_the_key_without_client_records(chain: Chain) -> None:
    oneway = chain.client.tars_options(oneway=True)
    with trace.open_trace() as tid:
        await oneway.tars_invoke("echo", ("fire",))
    for _ in range(200):
        if len(chain.back.seen) == 1:
            break
        await asyncio.sleep(0.01)
    assert [r[3] for r in chain.sink.records()] == ["sr", "cs", "sr", "ss", "cr", "ss"]
    assert chain.front.seen[0][1] is not None and chain.front.seen[0][1].startswith(tid)
