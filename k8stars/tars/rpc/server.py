"""The asyncio TARS server: adapters listening on endpoints, each serving one or more servants.

An adapter honours the request's iTimeout and its own queuetimeout (answering -6 without running the handler),
its queuecap (-9 when more calls are in flight), maxconns, the maximum frame size, and the endpoint's ``-t`` idle
timeout, and the memory and time bounds of ``limits`` (partial input, unsent output, frame deadline). One-way calls
are never answered. A graceful stop tells clients to reconnect elsewhere (the ``_reconnect_``
push TarsGo servers send), refuses new calls and drains the ones in flight.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from k8stars.tars import errors
from k8stars.tars.endpoint import Endpoint
from k8stars.tars.errors import DecodeError, FrameError
from k8stars.tars.packet import (
    JSONVERSION,
    MAX_FRAME_SIZE,
    PING_FUNC,
    RECONNECT_DESC,
    TARSMESSAGETYPETRACE,
    TARSONEWAY,
    TUPVERSION,
    TUPVERSION2,
    FrameDecoder,
    RequestPacket,
    ResponsePacket,
    decode_request,
    encode_request,
    encode_response,
)
from k8stars.tars.rpc import trace
from k8stars.tars.rpc.current import Current, set_current
from k8stars.tars.rpc.limits import PROCESS_BUDGET, Budget, Held
from k8stars.tars.rpc.processes import Copies, this_copy, watch_first_process
from k8stars.tars.rpc.servant import Dispatcher, Reply, start_call, tup_status
from k8stars.tars.rpc.stat import StatReporter
from k8stars.tars.stub import Servant
from k8stars.tars.untrusted import Throttle, printable

log = logging.getLogger("k8stars.tars.rpc")
_warnings = Throttle(log)  # bad input from peers: a flood of it must not flood the log


@dataclass
class AdapterConfig:
    """One ``<App.Server.ObjAdapter>`` of a server config; defaults are those of K8STARS's templates."""

    name: str
    endpoint: Endpoint
    servant: str
    protocol: str = "tars"
    threads: int = 1
    max_conns: int = 200000
    queue_cap: int = 10000
    queue_timeout_ms: int = 60000
    max_frame_size: int = MAX_FRAME_SIZE
    budget: Budget | None = None  # the memory its connections may hold (None: the process's, limits.PROCESS_BUDGET)
    shared: bool = True  # served by every process of the server (False: by the first only, as AdminObj)


@dataclass
class AdapterStats:
    connections: int = 0
    requests: int = 0
    inflight: int = 0
    errors: int = 0
    rejected_connections: int = 0
    overloads: int = 0
    queue_timeouts: int = 0


class Adapter:
    def __init__(self, config: AdapterConfig) -> None:
        self.config = config
        self.dispatchers: dict[str, Dispatcher] = {}
        self.stats = AdapterStats()
        self.connections: set[_ServerConnection] = set()
        self.endpoint = config.endpoint  # the bound one (port 0 resolved) once started
        self._server: asyncio.AbstractServer | None = None
        self._udp: asyncio.DatagramTransport | None = None
        self._tasks: set[asyncio.Future[None]] = set()
        self._idle_task: asyncio.Task[None] | None = None
        self.accepting = False
        self.stat: StatReporter | None = None  # set by Application when the config names a stat servant
        self.tracer: trace.Tracer | None = None  # set by Application when the config names a log servant
        self.budget = config.budget or PROCESS_BUDGET

    def add_servant(self, name: str, servant: Servant, dispatcher: Dispatcher | None = None) -> None:
        self.dispatchers[name] = dispatcher or Dispatcher(servant)

    async def start(self, reuse_port: bool = False, port: int | None = None) -> None:
        """Listen on the endpoint (on ``port`` instead of its own when given); ``reuse_port``: other processes of
        the server listen on the same port (SO_REUSEPORT)."""
        loop = asyncio.get_running_loop()
        ep = self.config.endpoint
        bind_port = ep.port if port is None else port
        reuse = True if reuse_port else None
        if ep.protocol == "udp":
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _UdpServerProtocol(self), (ep.host, bind_port), reuse_port=reuse
            )
            self._udp = transport
            port = transport.get_extra_info("sockname")[1]
        elif ep.protocol == "tcp":
            self._server = await loop.create_server(
                lambda: _ServerConnection(self), ep.host, bind_port, backlog=1024, reuse_port=reuse
            )
            port = self._server.sockets[0].getsockname()[1]
        else:
            raise ValueError(f"adapter {self.config.name}: protocol {ep.protocol} is not supported yet")
        self.endpoint = Endpoint(**{**_endpoint_fields(ep), "port": port})
        self.accepting = True
        if ep.protocol == "tcp" and ep.timeout > 0:
            self._idle_task = asyncio.create_task(self._close_idle(ep.timeout / 1000))

    async def _close_idle(self, idle: float) -> None:
        while True:
            await asyncio.sleep(max(idle / 2, 0.05))
            cutoff = time.monotonic() - idle
            for conn in list(self.connections):
                if conn.last_active < cutoff and not conn.inflight:
                    conn.close()

    def stop_accepting(self) -> None:
        self.accepting = False
        if self._server is not None:
            self._server.close()
        if self._idle_task is not None:
            self._idle_task.cancel()
        for conn in list(self.connections):
            conn.send_reconnect()

    async def drain(self, timeout: float) -> None:
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)
        for conn in list(self.connections):
            conn.close()
        if self._udp is not None:
            self._udp.close()
        if self._server is not None:
            await self._server.wait_closed()

    # -- request handling ------------------------------------------------------------------------------------
    def on_request(self, req: RequestPacket, conn: _ServerConnection | _UdpReply, received: float) -> None:
        self.stats.requests += 1
        if req.sFuncName == PING_FUNC:
            conn.send_reply(req, Reply(0))
            return
        dispatcher = self.dispatchers.get(req.sServantName)
        if dispatcher is None:
            if len(self.dispatchers) == 1 and not req.sServantName:
                dispatcher = next(iter(self.dispatchers.values()))
            else:
                conn.send_reply(req, Reply(errors.TARSSERVERNOSERVANTERR, desc=f"no servant {req.sServantName}"))
                return
        if not self.accepting:
            conn.send_reply(req, Reply(errors.TARSSERVERRESETGRID, desc="server is stopping"))
            return
        if self.stats.inflight >= self.config.queue_cap:
            self.stats.overloads += 1
            conn.send_reply(req, Reply(errors.TARSSERVEROVERLOAD, desc=f"queue full ({self.config.queue_cap})"))
            return
        self.stats.inflight += 1
        # each call in a Task of its own (asyncio.timeout and current_task work), started eagerly: most finish in
        # their first step, and then never touch the loop
        call = start_call(self._run(req, dispatcher, conn, received), contextvars.copy_context())
        if call is not None:
            self._tasks.add(call)
            call.add_done_callback(self._tasks.discard)

    async def _run(
        self, req: RequestPacket, dispatcher: Dispatcher, conn: _ServerConnection | _UdpReply, received: float
    ) -> None:
        try:
            waited_ms = (time.monotonic() - received) * 1000
            limit = self.config.queue_timeout_ms
            if req.iTimeout > 0:
                limit = min(limit, req.iTimeout)
            cur = Current(req, conn.peer, self.config.name)
            if waited_ms > limit:
                self.stats.queue_timeouts += 1
                reply = Reply(errors.TARSSERVERQUEUETIMEOUT, desc=f"queued {waited_ms:.0f} ms > {limit} ms")
            else:
                set_current(cur)
                try:
                    if req.iMessageType & TARSMESSAGETYPETRACE:
                        reply = await trace.serve_traced(self.tracer, dispatcher, req)
                    else:
                        reply = await dispatcher.dispatch(req)
                except Exception as e:  # whatever a request does, it gets an answer and the connection stays
                    name = printable(f"{req.sServantName}.{req.sFuncName}")
                    _warnings.emit("dispatch", "%s from %s failed: %s: %s", name, conn.peer, type(e).__name__,
                                   printable(str(e)))  # fmt: skip
                    reply = Reply(errors.TARSSERVERUNKNOWNERR, desc=f"{type(e).__name__}: {printable(str(e))}")
            if reply.ret:
                self.stats.errors += 1
            conn.send_reply(req, reply, cur.response_context)
            if self.stat is not None:
                elapsed_ms = int((time.monotonic() - received) * 1000)
                self.stat.record_served(req.sFuncName, req.cPacketType == TARSONEWAY, reply.ret, elapsed_ms)
        finally:
            self.stats.inflight -= 1


def _endpoint_fields(ep: Endpoint) -> dict[str, Any]:
    return {f: getattr(ep, f) for f in ep.__slots__}


def _reply_frame(req: RequestPacket, reply: Reply, context: dict[str, str] | None = None) -> bytes:
    if req.iVersion in (TUPVERSION, TUPVERSION2):
        # TUP callers expect a RequestPacket back, with the result code in status
        return encode_request(
            RequestPacket(
                iVersion=req.iVersion,
                cPacketType=0,
                iMessageType=req.iMessageType,
                iRequestId=req.iRequestId,
                sServantName=req.sServantName,
                sFuncName=req.sFuncName,
                sBuffer=reply.body,
                iTimeout=req.iTimeout,
                context=context or {},
                status=tup_status(reply),
            )
        )
    version = req.iVersion if req.iVersion in (1, JSONVERSION) else 1
    return encode_response(
        ResponsePacket(
            iVersion=version,
            iRequestId=req.iRequestId,
            iMessageType=req.iMessageType,
            iRet=reply.ret,
            sBuffer=reply.body,
            status={},
            sResultDesc=reply.desc,
            context=context or {},
        )
    )


class _ServerConnection(asyncio.Protocol):
    def __init__(self, adapter: Adapter) -> None:
        self.adapter = adapter
        self.decoder = FrameDecoder(adapter.config.max_frame_size)
        self.transport: asyncio.Transport | None = None
        self.peer: tuple[str, int] | None = None
        self.inflight = 0
        self.last_active = time.monotonic()
        self._out: list[bytes] = []  # replies of this loop iteration, written together
        self._out_bytes = 0
        self.held = Held(adapter.budget)
        self._frame_timer: asyncio.TimerHandle | None = None  # the deadline of a frame begun

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports lack the asyncio ABCs
        self.peer = transport.get_extra_info("peername")
        a = self.adapter
        if len(a.connections) >= a.config.max_conns or not a.accepting:
            a.stats.rejected_connections += 1
            transport.abort()  # type: ignore[attr-defined]
            return
        a.connections.add(self)
        a.stats.connections += 1
        # above this much unsent output asyncio calls pause_writing: reading stops until the peer reads
        transport.set_write_buffer_limits(high=self.held.budget.limits.pause_output)  # type: ignore[attr-defined]

    def connection_lost(self, exc: Exception | None) -> None:
        self.adapter.connections.discard(self)
        self.transport = None
        self._out, self._out_bytes = [], 0
        self._stop_frame_timer()
        self.held.release()

    def pause_writing(self) -> None:
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.held.update_output(0)  # below the low-water mark now
            self.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        self.last_active = now = time.monotonic()
        try:
            bodies = self.decoder.feed(data)
        except FrameError as e:
            _warnings.emit("frame", "%s from %s: %s; closing", self.adapter.config.name, self.peer, e)
            self.close()
            return
        pending = self.decoder.pending
        if pending or self.held.input:
            if reason := self.held.update_input(pending):
                self.drop(reason)
                return
            if bodies:
                self._stop_frame_timer()  # progress: the deadline is per frame
            if pending and self._frame_timer is None:
                seconds = self.held.budget.limits.frame_seconds
                self._frame_timer = asyncio.get_running_loop().call_later(seconds, self._frame_overdue, seconds)
        for body in bodies:
            try:
                req = decode_request(body)
            except DecodeError as e:
                # without a readable request id there is nothing to answer; the stream cannot be trusted either
                _warnings.emit("packet", "%s from %s: bad request packet: %s; closing", self.adapter.config.name,
                               self.peer, printable(str(e)))  # fmt: skip
                self.close()
                return
            if req.cPacketType != TARSONEWAY:
                self.inflight += 1
            self.adapter.on_request(req, self, now)

    def send_reply(self, req: RequestPacket, reply: Reply, context: dict[str, str] | None = None) -> None:
        if req.cPacketType == TARSONEWAY:
            return
        self.inflight -= 1
        self.last_active = time.monotonic()
        if self.transport is not None and not self.transport.is_closing():
            if not self._out:
                asyncio.get_running_loop().call_soon(self._flush)
            frame = _reply_frame(req, reply, context)
            self._out.append(frame)
            self._out_bytes += len(frame)
            if self._out_bytes > self.held.budget.limits.pause_output:  # pipelined calls: bound them before flush
                self._check_output(self._out_bytes + self.transport.get_write_buffer_size())

    def _flush(self) -> None:
        out, self._out, self._out_bytes = self._out, [], 0
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(out[0] if len(out) == 1 else b"".join(out))
            unsent = self.transport.get_write_buffer_size()
            if unsent or self.held.output:
                self._check_output(unsent)

    def _check_output(self, unsent: int) -> None:
        # Counted only above the pause mark: below it the buffer drains unnoticed (no callback says so), and a count
        # left behind would charge the budget for memory long given back.
        if reason := self.held.update_output(unsent if unsent > self.held.budget.limits.pause_output else 0):
            self.drop(reason)

    def _frame_overdue(self, seconds: float) -> None:
        self._frame_timer = None
        if self.decoder.pending:
            self.drop(f"a frame begun {seconds:g} s ago is still not whole ({self.decoder.pending} bytes)")

    def _stop_frame_timer(self) -> None:
        if self._frame_timer is not None:
            self._frame_timer.cancel()
            self._frame_timer = None

    def drop(self, reason: str) -> None:
        """Drop the connection now, with what it holds (its unsent replies too: the peer does not read them)."""
        _warnings.emit("limit", "%s: dropping the connection of %s: %s", self.adapter.config.name, self.peer, reason)
        self.held.budget.dropped += 1
        self._out, self._out_bytes = [], 0
        self._stop_frame_timer()
        if self.transport is not None:
            self.transport.abort()
        self.held.release()

    def send_reconnect(self) -> None:
        """Ask the client to use another connection (TarsGo's graceful-stop push)."""
        if self.transport is not None and not self.transport.is_closing():
            pkt = ResponsePacket(iVersion=1, iRequestId=0, sBuffer=b"", status={}, sResultDesc=RECONNECT_DESC)
            self.transport.write(encode_response(pkt))

    def close(self) -> None:
        if self.transport is not None:
            self._flush()  # replies already made must not be lost
            self.transport.close()


class _UdpReply:
    """Where the reply to one datagram goes."""

    def __init__(self, transport: asyncio.DatagramTransport, peer: tuple[str, int]) -> None:
        self.transport, self.peer = transport, peer

    def send_reply(self, req: RequestPacket, reply: Reply, context: dict[str, str] | None = None) -> None:
        if req.cPacketType != TARSONEWAY and not self.transport.is_closing():
            self.transport.sendto(_reply_frame(req, reply, context), self.peer)


class _UdpServerProtocol(asyncio.DatagramProtocol):
    def __init__(self, adapter: Adapter) -> None:
        self.adapter = adapter
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # selector datagram transports lack the ABC

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self.transport is not None
        try:
            (body,) = FrameDecoder(self.adapter.config.max_frame_size).feed(data)
            req = decode_request(body)
        except (DecodeError, ValueError) as e:
            _warnings.emit("datagram", "%s: bad datagram from %s: %s", self.adapter.config.name, addr,
                           printable(str(e)))  # fmt: skip
            return
        self.adapter.on_request(req, _UdpReply(self.transport, addr), time.monotonic())


@dataclass
class Server:
    """A set of adapters started and stopped together, by ``processes`` processes (see :mod:`.processes`: the first
    starts the others, copies of its own command line, which share its adapters' ports)."""

    adapters: dict[str, Adapter] = field(default_factory=dict)
    grace_seconds: float = 10.0
    processes: int = 1
    on_first_gone: Callable[[], object] | None = None  # in a copy: the first process stopped (default: stop)
    copies: Copies | None = None  # in the first process of several: the others
    _stopped: asyncio.Event | None = None

    def add_adapter(self, config: AdapterConfig) -> Adapter:
        if config.name in self.adapters:
            raise ValueError(f"adapter {config.name} already exists")
        adapter = Adapter(config)
        self.adapters[config.name] = adapter
        return adapter

    def add_servant(self, servant: Servant, name: str, endpoint: Endpoint | str, **adapter_opts: Any) -> Adapter:
        """Serve ``servant`` as ``name`` (``App.Server.Obj``) on its own adapter ``<name>Adapter``."""
        ep = Endpoint.parse(endpoint) if isinstance(endpoint, str) else endpoint
        adapter = self.add_adapter(AdapterConfig(f"{name}Adapter", ep, name, **adapter_opts))
        adapter.add_servant(name, servant)
        return adapter

    @property
    def is_copy(self) -> bool:
        """A process the first process of the server started (it has no AdminObj, heartbeats or registrations)."""
        return this_copy() is not None

    async def start(self) -> None:
        self._stopped = asyncio.Event()
        copy = this_copy()
        several = self.processes > 1 or copy is not None
        started: list[Adapter] = []
        try:
            for a in self.adapters.values():
                if copy is not None and not a.config.shared:
                    continue  # the first process's alone
                port = copy.ports.get(a.config.name) if copy is not None else None
                await a.start(reuse_port=several and a.config.shared, port=port)
                started.append(a)
        except BaseException:
            for a in started:
                a.stop_accepting()
                await a.drain(0)
            raise
        for a in started:
            log.info("adapter %s serving %s on %s", a.config.name, a.config.servant, a.endpoint)
        if copy is not None:
            watch_first_process(copy, self._first_gone)
        elif self.processes > 1:
            ports = {a.config.name: a.endpoint.port for a in started if a.config.shared}
            self.copies = Copies(self.processes, ports)
            self.copies.start()

    def _first_gone(self) -> None:
        if self.on_first_gone is not None:
            self.on_first_gone()
        else:
            asyncio.get_running_loop().create_task(self.stop())

    async def stop(self, grace: float | None = None) -> None:
        """Refuse new calls, let calls in flight finish (up to ``grace`` seconds), then close."""
        for a in self.adapters.values():
            a.stop_accepting()
        timeout = self.grace_seconds if grace is None else grace
        copies = [self.copies.stop(timeout)] if self.copies is not None else []
        await asyncio.gather(*(a.drain(timeout) for a in self.adapters.values()), *copies)
        if self._stopped is not None:
            self._stopped.set()

    async def wait_stopped(self) -> None:
        assert self._stopped is not None, "server not started"
        await self._stopped.wait()
