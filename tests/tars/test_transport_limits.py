"""Issue 16, item 4: the memory and time a TARS server's peers can take, over real loopback connections. Before,
20 connections holding partial 9 MiB frames added 163 MB, pipelined calls whose replies were never read added 85 MB,
and a frame trickled one byte a second was never timed out. Each loop here is bounded in count and time."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from examples.hello.server import SERVANT, HelloImp
from k8stars.tars import packet
from k8stars.tars.rpc import Server
from k8stars.tars.rpc.limits import MIB, Budget, Limits
from k8stars.tars.rpc.server import Adapter

Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def _serve(limits: Limits) -> tuple[Server, Adapter]:
    srv = Server(grace_seconds=1)
    adapter = srv.add_servant(HelloImp(), SERVANT, "tcp -h 127.0.0.1 -p 0 -t 60000", budget=Budget(limits))
    await srv.start()
    return srv, adapter


@pytest.fixture
async def served() -> AsyncIterator[Callable[[Limits], Awaitable[Adapter]]]:
    servers: list[Server] = []

    async def start(limits: Limits) -> Adapter:
        srv, adapter = await _serve(limits)
        servers.append(srv)
        return adapter

    yield start
    for srv in servers:
        await srv.stop(0)


async def _connect(adapter: Adapter, rcvbuf: int = 0) -> Conn:
    sock = socket.socket()
    if rcvbuf:  # a peer that reads nothing: keep what the kernel absorbs small
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (adapter.endpoint.host, adapter.endpoint.port))
    return await asyncio.open_connection(sock=sock)


async def _closed_by_server(reader: asyncio.StreamReader, within: float = 10.0) -> bool:
    """Whether the server closes (or resets) the connection within ``within`` seconds (a bound, not a timing)."""
    try:
        async with asyncio.timeout(within):
            while await reader.read(65536):
                pass
    except TimeoutError:
        return False
    except ConnectionError:
        pass
    return True


async def _until(probe: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not probe():
            await asyncio.sleep(0.02)
    assert probe(), what


def _greet(request_id: int, times: int) -> bytes:
    body = json.dumps({"req": {"name": "x" * 1000, "times": times}}).encode()
    req = packet.RequestPacket(iVersion=packet.JSONVERSION, iRequestId=request_id, sServantName=SERVANT,
                               sFuncName="greet", sBuffer=body, iTimeout=10000)  # fmt: skip
    return packet.encode_request(req)


async def _still_serves(adapter: Adapter) -> None:
    reader, writer = await _connect(adapter)
    try:
        writer.write(_greet(1, 1))
        decoder = packet.FrameDecoder()
        async with asyncio.timeout(10):
            while not (bodies := decoder.feed(await reader.read(65536))):
                pass
        assert packet.decode_response(bodies[0]).iRet == 0
    finally:
        writer.close()


async def test_partial_frames_of_all_connections_stay_within_the_budget(served: Callable[..., Awaitable[Adapter]]
                                                                       ) -> None:  # fmt: skip
    """Connections each holding 1 MiB of a 9 MiB frame: the one that goes past 3.5 MiB in all is dropped; the others
    stay, and what they hold is given back when they close."""
    adapter = await served(Limits(input_bytes=3 * MIB + MIB // 2))
    budget = adapter.budget
    conns: list[Conn] = []
    try:
        for i in range(4):
            reader, writer = await _connect(adapter)
            conns.append((reader, writer))
            writer.write(struct.pack(">I", 9 * MIB) + b"\0" * MIB)
            await writer.drain()
            if i < 3:
                await _until(lambda n=i: budget.input >= (n + 1) * MIB, f"connection {i} buffered")
            assert budget.input <= budget.limits.input_bytes
        assert await _closed_by_server(conns[3][0])
        assert budget.dropped == 1 and len(adapter.connections) == 3 and budget.input == 3 * (MIB + 4)
        await _still_serves(adapter)
    finally:
        for _, writer in conns:
            writer.close()
    await _until(lambda: budget.input == 0, "the budget given back")


async def test_a_trickled_frame_is_timed_out(served: Callable[..., Awaitable[Adapter]]) -> None:
    """A frame sent one byte every 50 ms with a 0.5 s frame deadline: dropped long before its 200 bytes are in; a
    frame that arrives whole in pieces within the deadline is served."""
    adapter = await served(Limits(frame_seconds=0.5))
    reader, writer = await _connect(adapter)
    try:
        writer.write(struct.pack(">I", 204))
        sent = 0
        closed = False
        while sent < 200 and not closed:  # at most 200 bytes, ~10 s
            writer.write(b"\0")
            sent += 1
            with contextlib.suppress(TimeoutError):
                closed = await asyncio.wait_for(reader.read(1), 0.05) == b""
        assert closed and sent < 200 and adapter.budget.dropped == 1
    finally:
        writer.close()
    frame = _greet(1, 1)
    reader, writer = await _connect(adapter)
    try:
        writer.write(frame[:10])
        await writer.drain()
        writer.write(frame[10:])
        decoder = packet.FrameDecoder()
        async with asyncio.timeout(10):
            while not (bodies := decoder.feed(await reader.read(65536))):
                pass
        assert packet.decode_response(bodies[0]).iRet == 0
    finally:
        writer.close()


async def test_unread_replies_drop_the_connection(served: Callable[..., Awaitable[Adapter]]) -> None:
    """400 pipelined calls of 1 KiB, each answered with 100 KiB, by a peer that reads nothing: the connection is
    dropped once 1 MiB of its replies wait, instead of the server holding 40 MB."""
    adapter = await served(Limits(connection_output=MIB, pause_output=256 * 1024))
    reader, writer = await _connect(adapter, rcvbuf=4096)
    try:
        writer.write(b"".join(_greet(i + 1, 100) for i in range(400)))
        assert await _closed_by_server(reader, within=20)
        assert adapter.budget.dropped == 1 and adapter.budget.output == 0
        await _still_serves(adapter)
    finally:
        writer.close()


async def test_unread_replies_of_all_connections_stay_within_the_budget(served: Callable[..., Awaitable[Adapter]]
                                                                       ) -> None:  # fmt: skip
    adapter = await served(Limits(output_bytes=MIB, connection_output=64 * MIB, pause_output=256 * 1024))
    conns = [await _connect(adapter, rcvbuf=4096) for _ in range(3)]
    try:
        for _, writer in conns:
            writer.write(b"".join(_greet(i + 1, 100) for i in range(100)))
        closed = await asyncio.gather(*(_closed_by_server(reader, within=20) for reader, _ in conns))
        assert any(closed) and adapter.budget.dropped == sum(closed)
        assert adapter.budget.output <= adapter.budget.limits.output_bytes
    finally:
        for _, writer in conns:
            writer.close()


async def test_a_peer_that_does_not_read_is_not_read_either(served: Callable[..., Awaitable[Adapter]]) -> None:
    """Backpressure: above 64 KiB of unsent replies the server stops reading the connection (its calls wait in the
    kernel, not in the server) and goes on once the peer reads."""
    adapter = await served(Limits(pause_output=64 * 1024, connection_output=64 * MIB, output_bytes=64 * MIB))
    reader, writer = await _connect(adapter, rcvbuf=4096)
    try:
        writer.write(b"".join(_greet(i + 1, 100) for i in range(400)))
        await _until(lambda: any(c.transport is not None and not c.transport.is_reading()
                                 for c in adapter.connections), "reading paused")  # fmt: skip
        served_then = adapter.stats.requests
        assert served_then < 400 and adapter.budget.dropped == 0
        decoder, answered = packet.FrameDecoder(), 0
        async with asyncio.timeout(60):
            while answered < 400:  # reading the replies lets the server read the calls
                data = await reader.read(1 << 20)
                assert data, "the server closed the connection"
                answered += len(decoder.feed(data))
        assert adapter.stats.requests == 400
    finally:
        writer.close()
