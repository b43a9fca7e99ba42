"""Client connections: one multiplexed TCP connection (or UDP socket) per endpoint, requests matched by id."""

from __future__ import annotations

import asyncio
import logging
import time

from k8stars.tars.endpoint import Endpoint
from k8stars.tars.errors import ConnectError, DecodeError, FrameError, SendRequestError
from k8stars.tars.packet import (
    RECONNECT_DESC,
    FrameDecoder,
    ResponsePacket,
    decode_response,
)

log = logging.getLogger("k8stars.tars.rpc")


class _ClientProtocol(asyncio.Protocol):
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.decoder = FrameDecoder(conn.max_frame_size)
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports lack the asyncio ABCs

    def data_received(self, data: bytes) -> None:
        try:
            bodies = self.decoder.feed(data)
        except FrameError as e:
            self.conn.fail(ConnectError(f"bad frame from {self.conn.endpoint}: {e}"))
            return
        for body in bodies:
            self.conn.on_response(body)

    def connection_lost(self, exc: Exception | None) -> None:
        self.conn.on_lost(self.transport, exc)


class _UdpClientProtocol(asyncio.DatagramProtocol):
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            bodies = FrameDecoder(self.conn.max_frame_size).feed(data)
        except FrameError:
            return
        for body in bodies:
            self.conn.on_response(body)

    def error_received(self, exc: Exception) -> None:
        log.debug("udp error from %s: %s", self.conn.endpoint, exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self.conn.on_lost(self.transport, exc)


class CallExpired(Exception):
    """A call's timeout passed before its answer came (:meth:`Connection.expire`)."""


class Connection:
    """A lazily opened connection to one endpoint. Broken connections fail their pending calls with -8 and are
    reopened by the next call."""

    def __init__(self, endpoint: Endpoint, connect_timeout: float = 3.0, max_frame_size: int = 10 << 20) -> None:
        self.endpoint = endpoint
        self.connect_timeout = connect_timeout
        self.max_frame_size = max_frame_size
        self.pending: dict[int, asyncio.Future[ResponsePacket]] = {}
        self._transport: asyncio.BaseTransport | None = None
        self._retired: list[asyncio.BaseTransport] = []  # asked to reconnect; kept until their answers arrive
        self._connecting: asyncio.Future[None] | None = None
        self.draining = False  # the server asked us to reconnect: no new calls on this connection
        self.failed_until = 0.0  # after a refused connect, avoid this endpoint for a while
        self.loop: asyncio.AbstractEventLoop | None = None  # the loop of the open transport
        self._out: list[bytes] = []  # frames of this loop iteration, written together by _flush

    @property
    def connected(self) -> bool:
        return self._transport is not None and not self._transport.is_closing()

    async def ensure_connected(self) -> None:
        if self.connected and not self.draining:
            return
        if self.draining:
            self._retire()
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._connect())
        fut = self._connecting
        try:
            await asyncio.shield(fut)
        finally:
            if self._connecting is fut and fut.done():
                self._connecting = None

    async def _connect(self) -> None:
        ep = self.endpoint
        try:
            transport = await asyncio.wait_for(self._open(ep), self.connect_timeout)
        except (OSError, TimeoutError) as e:
            self.failed_until = time.monotonic() + 5.0
            raise ConnectError(f"cannot connect to {ep}: {e or 'timeout'}") from None
        self._transport = transport
        self.loop = asyncio.get_running_loop()
        self.draining = False
        self.failed_until = 0.0

    async def _open(self, ep: Endpoint) -> asyncio.BaseTransport:
        loop = asyncio.get_running_loop()
        if ep.protocol == "udp":
            udp, _ = await loop.create_datagram_endpoint(
                lambda: _UdpClientProtocol(self), remote_addr=(ep.host, ep.port)
            )
            return udp
        tcp, _ = await loop.create_connection(lambda: _ClientProtocol(self), ep.host, ep.port)
        return tcp

    @property
    def ready(self) -> bool:
        """Connected and taking new calls: :meth:`send` needs no :meth:`ensure_connected` first."""
        t = self._transport
        return t is not None and not self.draining and not t.is_closing()

    def send(self, request_id: int, frame: bytes, oneway: bool) -> asyncio.Future[ResponsePacket] | None:
        t = self._transport
        if t is None or t.is_closing() or self.loop is None:
            raise SendRequestError(f"connection to {self.endpoint} is closed")
        fut: asyncio.Future[ResponsePacket] | None = None
        if not oneway:
            fut = self.loop.create_future()
            self.pending[request_id] = fut
        if self.endpoint.protocol == "udp":
            t.sendto(frame)  # type: ignore[attr-defined]
            return fut
        # every call of this loop iteration goes out in one write (one system call for many callers); a call alone in
        # flight has no one to share it with and goes at once
        if not self._out:
            if len(self.pending) <= 1:
                t.write(frame)  # type: ignore[attr-defined]
                return fut
            self.loop.call_soon(self._flush)
        self._out.append(frame)
        return fut

    def _flush(self) -> None:
        out, self._out = self._out, []
        t = self._transport
        if out and t is not None and not t.is_closing():
            t.write(out[0] if len(out) == 1 else b"".join(out))  # type: ignore[attr-defined]

    def expire(self, request_id: int) -> None:
        """The call's time is up: it fails with :class:`CallExpired` unless its answer came first."""
        fut = self.pending.pop(request_id, None)
        if fut is not None and not fut.done():
            fut.set_exception(CallExpired())

    def forget(self, request_id: int) -> None:
        self.pending.pop(request_id, None)

    def on_response(self, body: bytes) -> None:
        try:
            rsp = decode_response(body)
        except DecodeError as e:
            self.fail(ConnectError(f"bad response from {self.endpoint}: {e}"))
            return
        if rsp.iRequestId == 0:  # a push, not an answer
            if rsp.sResultDesc == RECONNECT_DESC:
                self.draining = True
                if not self.pending:
                    self._retire()
            return
        fut = self.pending.pop(rsp.iRequestId, None)
        if fut is not None and not fut.done():
            fut.set_result(rsp)
        if not self.pending and self._retired:
            for t in self._retired:
                t.close()
            self._retired.clear()

    def fail(self, exc: Exception) -> None:
        """Fail every pending call and drop the connection."""
        pending, self.pending = self.pending, {}
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(exc)
        self._detach()

    def on_lost(self, transport: asyncio.BaseTransport | None, exc: Exception | None) -> None:
        if transport is not self._transport:  # a retired connection went away
            if transport in self._retired:
                self._retired.remove(transport)
            return
        self._transport = None
        self._out = []
        if self.pending:
            self.fail(ConnectError(f"connection to {self.endpoint} lost{': ' + str(exc) if exc else ''}"))

    def _retire(self) -> None:
        """Stop using the current transport for new calls; it closes once its answers are in."""
        self._flush()  # calls already sent on it go out before it stops taking new ones
        t, self._transport = self._transport, None
        self.draining = False
        if t is not None:
            if self.pending:
                self._retired.append(t)
            else:
                t.close()

    def _detach(self) -> None:
        self._out = []  # their calls have failed
        t, self._transport = self._transport, None
        if t is not None:
            t.close()

    def close(self) -> None:
        self.fail(ConnectError(f"connection to {self.endpoint} closed"))
        for t in self._retired:
            t.close()
        self._retired.clear()
