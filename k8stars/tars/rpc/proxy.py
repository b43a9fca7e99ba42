"""The client side of the runtime: the communicator that owns connections and resolves servant names through the
locator (the registry's QueryF), and the object proxies generated :class:`~k8stars.tars.stub.ServantProxy` classes
call through."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from contextvars import Context
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from k8stars.tars.config import TarsConfig
from k8stars.tars.endpoint import Endpoint, local_ip, parse_proxy
from k8stars.tars.errors import (
    AdapterNullError,
    ConnectError,
    InvokeTimeoutError,
    SendRequestError,
    TarsRpcError,
    rpc_error,
)
from k8stars.tars.interface import Interface
from k8stars.tars.packet import (
    STATUS_TRACE_KEY,
    TARSMESSAGETYPEHASH,
    TARSMESSAGETYPETRACE,
    TARSNORMAL,
    TARSONEWAY,
    TARSVERSION,
    RequestPacket,
    ResponsePacket,
    encode_request,
)
from k8stars.tars.protocol.endpointf import EndpointF
from k8stars.tars.protocol.queryf import QueryFProxy
from k8stars.tars.rpc import trace
from k8stars.tars.rpc.property import Policy, PropertyReport, PropertyReporter
from k8stars.tars.rpc.stat import EXCEPTION, OK, TIMEOUT, StatReporter
from k8stars.tars.rpc.transport import CallExpired, Connection
from k8stars.tars.stub import CallOptions, ServantProxy

log = logging.getLogger("k8stars.tars.rpc")

P = TypeVar("P", bound="ServantProxy")


@dataclass
class CommunicatorConfig:
    """The ``<tars><application><client>`` settings a client honours (times in ms, as in the config file)."""

    locator: str = ""
    sync_invoke_timeout: int = 3000
    async_invoke_timeout: int = 5000
    refresh_endpoint_interval: int = 60000
    connect_timeout: int = 3000
    enable_set: bool = False
    set_division: str = ""
    node_name: str = ""
    module_name: str = ""
    max_frame_size: int = 10 << 20
    stat: str = ""  # tars.tarsstat.StatObj: where call statistics go (empty: not reported)
    property: str = ""  # tars.tarsproperty.PropertyObj: where property_report values go (empty: not reported)
    report_interval: int = 60000

    @classmethod
    def from_config(cls, conf: TarsConfig) -> CommunicatorConfig:
        c = conf.domain("/tars/application/client")
        p = c.params if c else {}
        app = conf.domain("/tars/application")
        ap = app.params if app else {}

        def num(key: str, default: int) -> int:
            try:
                return int(p.get(key, default))
            except ValueError:
                return default

        return cls(
            locator=p.get("locator", ""),
            sync_invoke_timeout=num("sync-invoke-timeout", 3000),
            async_invoke_timeout=num("async-invoke-timeout", 5000),
            refresh_endpoint_interval=num("refresh-endpoint-interval", 60000),
            enable_set=ap.get("enableset", "n").lower() in ("y", "yes", "true", "1"),
            set_division=ap.get("setdivision", ""),
            node_name=conf.get("/tars/application/server<node_name>") or conf.get("/tars/application/server<localip>"),
            module_name=p.get("modulename", ""),
            stat=p.get("stat", ""),
            property=p.get("property", ""),
            report_interval=num("report-interval", 60000),
        )


class Communicator:
    """Owns the connections and name resolution of a process's proxies."""

    def __init__(self, config: CommunicatorConfig | None = None, **overrides: Any) -> None:
        self.config = replace(config or CommunicatorConfig(), **overrides)
        self._ids = itertools.count(1)
        self._objects: dict[str, ObjectProxy] = {}
        self._connections: dict[Endpoint, Connection] = {}
        if not self.config.node_name:
            self.config.node_name = local_ip()
        self.stat: StatReporter | None = None
        if self.config.stat:
            cfg = self.config
            self.stat = StatReporter(self, cfg.stat, cfg.module_name, cfg.node_name, cfg.report_interval / 1000)
        self.tracer: trace.Tracer | None = None  # where trace records go (Application sets it from log=)
        self.properties: PropertyReporter | None = None
        if self.config.property:
            cfg = self.config
            self.properties = PropertyReporter(self, cfg.property, cfg.module_name, cfg.node_name,
                                               cfg.report_interval / 1000)  # fmt: skip

    def next_request_id(self) -> int:
        rid = next(self._ids)
        if rid >= 2**31 - 1:
            self._ids = itertools.count(1)
            rid = next(self._ids)
        return rid

    def string_to_proxy(self, cls: type[P], text: str, interface: Interface | None = None) -> P:
        """A proxy for ``App.Server.Obj@tcp -h H -p P`` (direct) or ``App.Server.Obj`` (through the locator)."""
        key = text.strip()
        target = self._objects.get(key)
        if target is None:
            name, endpoints = parse_proxy(key)
            if not endpoints and not self.config.locator:
                raise ValueError(f"{name}: no endpoints and no locator is configured (locator is not valid)")
            target = ObjectProxy(self, name, endpoints)
            self._objects[key] = target
        return cls(target, None, interface)

    def property_report(self, name: str, *policies: Policy) -> PropertyReport:
        """A business metric with its policies (Sum(), Avg(), Max(), Min(), Count(), Distr([...])), reported to
        ``property=`` every report-interval; the same name gives the same report. Without ``property=`` the values
        are kept and never sent."""
        if not policies:
            raise ValueError(f"property {name!r}: give at least one policy (Sum(), Avg(), ...)")
        if self.properties is None:
            return PropertyReport(name, policies, None)
        return self.properties.create(name, policies)

    def connection(self, ep: Endpoint) -> Connection:
        conn = self._connections.get(ep)
        if conn is None:
            conn = Connection(ep, self.config.connect_timeout / 1000, self.config.max_frame_size)
            self._connections[ep] = conn
        return conn

    def locator_proxy(self) -> QueryFProxy:
        return self.string_to_proxy(QueryFProxy, self.config.locator)

    async def close(self) -> None:
        if self.stat is not None:
            await self.stat.close()  # what was counted since the last report, while connections are still up
        if self.properties is not None:
            await self.properties.close()
        for obj in self._objects.values():
            obj.stop_refresh()
            obj.forget_connections()
        for conn in self._connections.values():
            conn.close()
        self._connections.clear()
        self._objects.clear()
        await asyncio.sleep(0)

    async def __aenter__(self) -> Communicator:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _ms_since(start: float) -> int:
    return int((time.monotonic() - start) * 1000)


# Resolution timing of TarsCpp/TarsGo/Node (seconds): retry an empty answer after 10 s, a failed lookup after
# 2 s, and after 3 failures in a row every 30 s.
EMPTY_RETRY = 10.0
FAIL_RETRY = 2.0
FAIL_RETRY_SLOW = 30.0


class ObjectProxy:
    """One servant name: its endpoints (fixed, or from the locator), round-robin/hash choice, and calls."""

    def __init__(self, comm: Communicator, name: str, endpoints: list[Endpoint]) -> None:
        self.comm = comm
        self.name = name
        self.direct = bool(endpoints)
        self.endpoints: list[Endpoint] = endpoints
        self.inactive: list[Endpoint] = []
        self._rr = 0
        self._next_refresh = 0.0
        self._failures = 0
        self._resolving: asyncio.Task[None] | None = None
        self._conns: list[Connection] = []
        self._conns_of: list[Endpoint] | None = None

    # -- resolution -----------------------------------------------------------------------------------------------
    async def resolve(self) -> None:
        if self.direct:
            return
        now = time.monotonic()
        if self.endpoints and now < self._next_refresh:
            return
        if self._resolving is None or self._resolving.done():
            self._resolving = asyncio.create_task(self._refresh(), context=Context())  # not the caller's trace
        if not self.endpoints:
            await asyncio.shield(self._resolving)

    async def _refresh(self) -> None:
        cfg = self.comm.config
        locator = self.comm.locator_proxy().tars_options(
            context={"node_name": cfg.node_name}, timeout_ms=min(cfg.sync_invoke_timeout, 5000)
        )
        try:
            if cfg.enable_set and cfg.set_division:
                res: tuple[int, list[EndpointF], list[EndpointF]]
                res = await locator.findObjectByIdInSameSet(self.name, cfg.set_division)
            else:
                res = await locator.findObjectByIdInSameGroup(self.name)
        except TarsRpcError as e:
            self._failures += 1
            delay = FAIL_RETRY if self._failures < 3 else FAIL_RETRY_SLOW
            self._next_refresh = time.monotonic() + delay
            log.warning("locator lookup of %s failed (%s); retry in %.0f s", self.name, e, delay)
            return
        self._failures = 0
        _, active_ep, inactive_ep = res  # the same (ret, activeEp, inactiveEp) from either lookup
        active = [Endpoint.from_endpointf(e) for e in active_ep]
        if not active:
            self._next_refresh = time.monotonic() + EMPTY_RETRY
            if self.endpoints:
                log.warning("locator has no active endpoint for %s; keeping the last known ones", self.name)
            return
        self.endpoints = active
        self.inactive = [Endpoint.from_endpointf(e) for e in inactive_ep]
        self._next_refresh = time.monotonic() + cfg.refresh_endpoint_interval / 1000

    def stop_refresh(self) -> None:
        if self._resolving is not None:
            self._resolving.cancel()

    def _connections(self) -> list[Connection]:
        """The connections of ``endpoints``, in its order (looked up again only when the endpoints change)."""
        if self._conns_of is not self.endpoints:
            self._conns = [self.comm.connection(e) for e in self.endpoints]
            self._conns_of = self.endpoints
        return self._conns

    def forget_connections(self) -> None:
        self._conns, self._conns_of = [], None

    def _pick(self, opts: CallOptions, exclude: set[Endpoint] | frozenset[Endpoint]) -> Connection | None:
        conns = self._connections()
        if not exclude and len(conns) == 1:
            return conns[0]
        eps = [c for c in conns if c.endpoint not in exclude]
        if not eps:
            return None
        if opts.hash_code is not None:
            return eps[opts.hash_code % len(eps)]
        now = time.monotonic()
        healthy = [c for c in eps if c.failed_until <= now] or eps
        self._rr = (self._rr + 1) % len(healthy)
        return healthy[self._rr]

    # -- calls --------------------------------------------------------------------------------------------------
    async def invoke(self, func: str, body: bytes, opts: CallOptions, trace_key: str = "") -> ResponsePacket | None:
        if not trace_key and (span := trace.active()) is not None:  # tracing off: this one lookup
            return await trace.call_traced(self, span, func, body, opts)  # type: ignore[no-any-return]
        start = time.monotonic()
        if not self.direct and (not self.endpoints or start >= self._next_refresh):
            await self.resolve()
        comm = self.comm
        timeout_ms = opts.timeout_ms if opts.timeout_ms is not None else comm.config.sync_invoke_timeout
        rid = comm.next_request_id()
        req = RequestPacket(
            iVersion=TARSVERSION,
            cPacketType=TARSONEWAY if opts.oneway else TARSNORMAL,
            iMessageType=(TARSMESSAGETYPEHASH if opts.hash_code is not None else 0)
            | (TARSMESSAGETYPETRACE if trace_key else 0),
            iRequestId=rid,
            sServantName=self.name,
            sFuncName=func,
            sBuffer=body,
            iTimeout=timeout_ms,
            context=opts.context,
            status={**opts.status, STATUS_TRACE_KEY: trace_key} if trace_key else opts.status,
        )
        frame = encode_request(req)
        deadline = start + timeout_ms / 1000
        conn = self._pick(opts, _NONE_TRIED)
        if conn is not None and conn.ready:  # the common case: no await before the answer's
            fut = conn.send(rid, frame, opts.oneway)
        else:
            conn, fut = await self._connect_and_send(conn, func, opts, rid, frame, deadline)
        ep = conn.endpoint
        if fut is None:
            return None
        loop = conn.loop
        assert loop is not None
        # one timer per call, no wait_for: its extra future, Task and loop step cost a fifth of a call
        timer = loop.call_later(max(deadline - time.monotonic(), 0.001), conn.expire, rid)
        stat = comm.stat
        try:
            rsp = await fut
        except CallExpired:
            if stat is not None:
                stat.record(self.name, func, ep.host, ep.port, -7, TIMEOUT, _ms_since(start))
            raise InvokeTimeoutError(f"{self.name}.{func} got no answer from {ep} in {timeout_ms} ms") from None
        finally:
            timer.cancel()
            if not fut.done():  # cancelled by the caller: its answer is not awaited any more
                conn.forget(rid)
        if stat is not None:
            stat.record(self.name, func, ep.host, ep.port, rsp.iRet, EXCEPTION if rsp.iRet else OK, _ms_since(start))
        if rsp.iRet != 0:
            raise rpc_error(rsp.iRet, rsp.sResultDesc or f"{self.name}.{func} failed")
        return rsp

    async def _connect_and_send(
        self, conn: Connection | None, func: str, opts: CallOptions, rid: int, frame: bytes, deadline: float
    ) -> tuple[Connection, asyncio.Future[ResponsePacket] | None]:
        """Send on ``conn`` (the one picked) once it connects, trying the other endpoints when one refuses."""
        tried: set[Endpoint] = set()
        while True:
            if tried:
                conn = self._pick(opts, tried)
            if conn is None:
                if tried:
                    raise ConnectError(f"{self.name}: no endpoint reachable (tried {len(tried)})")
                raise AdapterNullError(f"no active endpoint for {self.name}")
            ep = conn.endpoint
            try:
                await asyncio.wait_for(conn.ensure_connected(), max(deadline - time.monotonic(), 0.001))
            except ConnectError:
                tried.add(ep)  # nothing was sent: another endpoint may take the call
                continue
            except TimeoutError:
                raise InvokeTimeoutError(f"{self.name}.{func}: connect to {ep} timed out") from None
            try:
                return conn, conn.send(rid, frame, opts.oneway)
            except SendRequestError:
                tried.add(ep)  # closed by the peer right after connecting (e.g. over its maxconns)


_NONE_TRIED: frozenset[Endpoint] = frozenset()
