"""The registry's logic: K8STARS's registration calls on top of a store, the lookup cache, expiry, and keeping
replicas in step.

Consistency: a write commits to the store, then the servers it touched are re-read and applied to the cache before
the call returns, so a lookup right after sees it. Other replicas poll the store's change number every
``poll_interval`` and re-read what changed. Re-reads and applies are serialized by one lock, so an older read can
never overwrite a newer one in the cache.

A keepAlive that changes no state (the cache holds the state it reports) is no write: its time is kept in memory and
flushed with all others every ``flush_interval`` (:mod:`k8stars.registry.heartbeats`); one that changes a state is
written through like any other call.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TypeVar

from k8stars.registry.directory import Directory
from k8stars.registry.groups import GroupRules
from k8stars.registry.heartbeats import Heartbeats
from k8stars.registry.metrics import RegistryMetrics
from k8stars.registry.model import (
    DEFAULT_METRICS_PORT,
    ERR_BAD_REQUEST,
    ERR_NOT_REGISTERED,
    ERR_STORE,
    LEN_NODE,
    AdapterSpec,
    Registration,
    RegistryError,
    ServerKey,
    bad_request,
    check_name,
    check_state,
    registration,
    server_key,
)
from k8stars.registry.query import Lookup
from k8stars.registry.store import Changes, Store
from k8stars.tars.protocol.tarsregistry import MetricsAdapterInfo, keepAliveReq, onPrestopReq, onStartupReq

log = logging.getLogger("k8stars.registry")

T = TypeVar("T")
CLEAN_USAGE = "usage: clean [dryRun] [datetime]"
CLEAN_DEFAULT_AGE = 24 * 3600.0
CHANGE_LOG_KEEP = 600.0  # seconds of change log kept for replicas that fall behind
FLUSH_INTERVAL = 1.0  # seconds between heartbeat batches (at most this much of timestamps is lost in a crash)
STOP_TIMEOUT = 10.0  # seconds a stopping replica waits for its loops
SD_LABELS = ("application", "server", "set")


class RegistryService:
    def __init__(
        self,
        store: Store,
        *,
        heartbeat_timeout: float = 60.0,
        retention: float = 3600.0,
        poll_interval: float = 0.25,
        groups_interval: float = 5.0,
        metrics: RegistryMetrics | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if heartbeat_timeout <= 0 or retention < 0:
            raise ValueError("heartbeat timeout must be > 0 and retention >= 0")
        self.store = store
        self.heartbeat_timeout = heartbeat_timeout
        self.retention = retention
        self.poll_interval = poll_interval
        self.groups_interval = groups_interval
        self.metrics = metrics or RegistryMetrics()
        self.clock = clock
        self.directory = Directory()
        self.lookup = Lookup(self.directory)
        self.metrics.watch(self.directory)
        self.seen = 0
        self._own: set[int] = set()  # change numbers this replica wrote and already applied
        self._lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._expire_after = 0.0  # monotonic: no expiry before this (see _hold_expiry)
        self.heartbeats = Heartbeats(store)
        self._beats_ok = self.metrics.calls.labels("keepAlive", "ok")

    @property
    def sweep_interval(self) -> float:
        return min(1.0, max(0.05, self.heartbeat_timeout / 4))

    @property
    def flush_interval(self) -> float:
        """Far inside the timeout: other replicas expire servers by the times this one flushed."""
        return min(FLUSH_INTERVAL, max(0.05, self.heartbeat_timeout / 8))

    # -- lifecycle --------------------------------------------------------------------------------------------
    async def start(self) -> None:
        await self.store.open()
        try:
            await self.reload_all()
        except BaseException:
            await self.store.close()
            raise
        self._hold_expiry()
        loops = [self._poll_loop, self._expiry_loop, self._groups_loop]
        if self.store.batches_heartbeats:
            loops.append(self._flush_loop)
        for loop in loops:
            self._tasks.append(asyncio.create_task(loop(), name=f"registry{loop.__name__}"))

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        _, running = await asyncio.wait(self._tasks, timeout=STOP_TIMEOUT)
        for t in running:  # bounded: a stop must not hang on a store that never answers
            log.warning("%s did not stop in %.0f s", t.get_name(), STOP_TIMEOUT)
        self._tasks.clear()
        try:
            await self.heartbeats.flush()  # a clean stop loses no heartbeat
        except Exception as e:
            log.warning("last heartbeats not written (%d servers): %s", len(self.heartbeats), e)
        await self.store.close()

    def _hold_expiry(self) -> None:
        """Servers could not heartbeat while this replica (or its store) was away: give them one timeout first."""
        self._expire_after = time.monotonic() + self.heartbeat_timeout

    # -- cache ------------------------------------------------------------------------------------------------
    async def reload_all(self) -> None:
        async with self._lock:
            seq = await self.store.seq()
            fresh = Directory(GroupRules(await self.store.group_tables()))
            async for rows in self.store.scan():
                fresh.add(rows)
            self.directory.take(fresh)
            self.seen = max(self.seen, seq)
        self.metrics.reloads.labels("full").inc()
        self.metrics.seq.set(self.seen)

    async def _refresh(self, keys: Iterable[ServerKey]) -> None:
        keys = set(keys)
        if keys:
            rows = await self.store.load(keys)
            self.directory.apply(keys, rows)

    async def _applied(self, changes: Changes) -> None:
        if not changes.keys:
            return
        self._own.add(changes.seq)
        try:
            async with self._lock:
                await self._refresh(changes.keys)
        except Exception as e:
            # committed, but not re-read: leave it to the poller (the caller's write did succeed)
            self._own.discard(changes.seq)
            log.warning("change %d committed but not re-read yet (%s); the next poll applies it", changes.seq, e)

    async def poll_once(self) -> None:
        """Apply what other replicas (or this one) committed since the last poll."""
        poll = await self.store.poll(self.seen)
        if poll.changes is None:
            log.info("change log does not reach back to %d: reloading everything", self.seen)
            await self.reload_all()
            return
        if not poll.changes:
            return
        keys = {key for seq, key in poll.changes if seq not in self._own}
        async with self._lock:
            await self._refresh(keys)
            self.seen = max(self.seen, poll.seq)
        self._own = {s for s in self._own if s > self.seen}
        self.metrics.reloads.labels("incremental").inc()
        self.metrics.seq.set(self.seen)

    async def _poll_loop(self) -> None:
        await self._every(self.poll_interval, self.poll_once, hold_expiry_on_error=True)

    async def _groups_loop(self) -> None:
        async def check() -> None:
            groups = GroupRules(await self.store.group_tables())
            if groups.tables != self.directory.groups.tables:
                await self.reload_all()  # every endpoint is regrouped
                log.info(
                    "IP group rules changed: %d rules, %d priorities", len(groups.tables.rules), len(groups.priorities)
                )

        await self._every(self.groups_interval, check)

    async def _flush_loop(self) -> None:
        await self._every(self.flush_interval, self.heartbeats.flush)

    async def _expiry_loop(self) -> None:
        last_prune = 0.0

        async def sweep() -> None:
            nonlocal last_prune
            if time.monotonic() < self._expire_after:
                return
            await self.expire_once()
            if time.monotonic() - last_prune > 60:
                last_prune = time.monotonic()
                await self.store.prune_changes(self.clock() - CHANGE_LOG_KEEP)

        await self._every(self.sweep_interval, sweep)

    async def expire_once(self) -> None:
        await self.heartbeats.flush()  # the store decides by its times: this replica's must be there first
        now = self.clock()
        res = await self.store.expire(now, now - self.heartbeat_timeout, now - self.heartbeat_timeout - self.retention)
        if res.expired or res.removed:
            log.info("heartbeat loss: %d server(s) inactive, %d removed", res.expired, res.removed)
            self.metrics.expired.inc(res.expired)
            self.metrics.removed.inc(res.removed)
        await self._applied(res.changes)

    async def _every(
        self, interval: float, step: Callable[[], Awaitable[None]], hold_expiry_on_error: bool = False
    ) -> None:
        failing = False
        while True:
            try:
                await step()
                if failing:
                    log.info("store reachable again")
                failing = False
            except asyncio.CancelledError:
                raise
            except Exception as e:  # a store outage must not end the loop: log once, keep trying
                if _cancelling():  # a stop's cancel that a driver turned into an error: stop all the same
                    raise
                self.metrics.store_errors.inc()
                if hold_expiry_on_error:
                    self._hold_expiry()
                if not failing:
                    log.warning("%s failed: %s", getattr(step, "__name__", "step"), e)
                failing = True
            await asyncio.sleep(interval)

    # -- registration calls ---------------------------------------------------------------------------------
    async def _write(self, method: str, op: Callable[[], Awaitable[Changes]]) -> Changes:
        try:
            changes = await op()
        except RegistryError as e:
            self.metrics.calls.labels(method, _result(e.code)).inc()
            raise
        except Exception as e:
            self.metrics.calls.labels(method, "store_error").inc()
            self.metrics.store_errors.inc()
            log.warning("%s: store failed: %s", method, e)
            raise RegistryError(f"store unavailable: {type(e).__name__}: {e}", ERR_STORE) from None
        await self._applied(changes)
        self.metrics.calls.labels(method, "ok").inc()
        return changes

    def _check(self, method: str, check: Callable[[], T]) -> T:
        try:
            return check()
        except RegistryError as e:
            self.metrics.calls.labels(method, _result(e.code)).inc()
            raise

    async def register(self, reg: Registration) -> Changes:
        return await self._write("onStartup", lambda: self.store.register(reg, self.clock()))

    async def on_startup(self, req: onStartupReq) -> Changes:
        reg = self._check("onStartup", lambda: registration(
            req.nodeName, req.application, req.server, state=req.State, version=req.Version, set_id=req.setID,
            disable_flow=req.disableFlow,
            adapters=[AdapterSpec(a.servant, a.endpoint, a.protocol, a.maxConns, a.threadNum, a.queueCap,
                                  a.queueTimeout) for a in req.adapters],
        ))  # fmt: skip
        return await self.register(reg)

    async def keep_alive(self, req: keepAliveReq) -> Changes:
        if self.store.batches_heartbeats and req.state:
            # the hot path: a server the cache holds, reporting the state it has (a known key is a valid one)
            key3 = (req.application, req.server, req.nodeName)
            if self.directory.states.get(key3) == req.state:
                self.heartbeats.beat(key3, self.clock())
                self._beats_ok.inc()
                return Changes()

        def check() -> tuple[str, str, ServerKey | None]:
            state = check_state(req.state)
            node = check_name("nodeName", req.nodeName, LEN_NODE)
            if not req.application and not req.server:
                return state, node, None
            return state, node, server_key(req.nodeName, req.application, req.server)

        state, node, key = self._check("keepAlive", check)
        now = self.clock()
        if key is not None and self.store.batches_heartbeats:
            if self.directory.states.get((key.application, key.server, key.node)) == state:  # e.g. "Active"
                self.heartbeats.beat((key.application, key.server, key.node), now)
                self._beats_ok.inc()
                return Changes()
        if key is None:  # the old node-wide form
            return await self._write(
                "keepAlive", lambda: self.store.node_heartbeat(node, state, now, now - self.heartbeat_timeout)
            )
        return await self._write("keepAlive", lambda: self.store.heartbeat(key, state, now))

    async def on_prestop(self, req: onPrestopReq) -> Changes:
        def check() -> tuple[str, ServerKey | None]:
            node = check_name("nodeName", req.nodeName, LEN_NODE)
            if not req.application and not req.server:
                return node, None
            return node, server_key(req.nodeName, req.application, req.server)

        node, key = self._check("onPrestop", check)
        if key is None:  # the old "disable the whole node" form
            return await self._write("onPrestop", lambda: self.store.destroy_node(node, self.clock()))
        return await self._write("onPrestop", lambda: self.store.deregister(key, self.clock()))

    async def register_metrics(self, node: str, application: str, server: str, port: int) -> Changes:
        def check() -> tuple[ServerKey, int]:
            key = server_key(node, application, server)
            p = port or DEFAULT_METRICS_PORT
            if not 0 < p < 65536:
                raise bad_request(f"metricsPort {port} is not a port")
            return key, p

        key, p = self._check("registerMetrics", check)
        return await self._write("registerMetrics", lambda: self.store.set_metrics_port(key, p, self.clock()))

    def metrics_adapters(self, filters: Mapping[str, str]) -> list[MetricsAdapterInfo]:
        """Prometheus target groups: servers with a metrics port, by application, server and set."""
        unknown = set(filters) - set(SD_LABELS)
        if unknown:
            self.metrics.calls.labels("getMetricsAdapters", "bad_request").inc()
            raise bad_request(f"unknown filter {', '.join(sorted(unknown))} (filter on {', '.join(SD_LABELS)})")
        groups: dict[tuple[str, str, str], list[str]] = {}
        for row in self.directory.servers.values():
            if row.metrics_port > 0:
                group = (row.key.application, row.key.server, row.set_id)
                groups.setdefault(group, []).append(f"{row.key.node}:{row.metrics_port}")
        out = []
        for (app, server, set_id), targets in sorted(groups.items()):
            labels = {"application": app, "server": server, "set": set_id}
            if all(labels[k] == v for k, v in filters.items()):
                out.append(MetricsAdapterInfo(sorted(targets), labels))
        self.metrics.calls.labels("getMetricsAdapters", "ok").inc()
        return out

    # -- admin ------------------------------------------------------------------------------------------------
    async def clean(self, params: str) -> str:
        """``clean [dryRun] [datetime]``: a dry run unless the first argument is n/N; the cutoff defaults to 24 h
        ago and may contain a space (``2024-05-01 12:00:00``)."""
        args = params.split()
        if len(args) > 3:
            return CLEAN_USAGE
        dry_run = not args or args[0] not in ("n", "N")
        before = self.clock() - CLEAN_DEFAULT_AGE
        if len(args) > 1:
            parsed = _parse_datetime(" ".join(args[1:]))
            if parsed is None:
                return f"{CLEAN_USAGE}\nbad datetime {' '.join(args[1:])!r} (YYYY-MM-DD HH:MM:SS)"
            before = parsed
        try:
            lines, changes = await self.store.clean(before, dry_run, self.clock())
        except Exception as e:
            self.metrics.store_errors.inc()
            return f"clean failed: store unavailable: {e}"
        await self._applied(changes)
        return "\n" + "\n".join(lines) + ("\nDry run.\n" if dry_run else "\nDeleted\n")


def _result(code: int) -> str:
    return {ERR_BAD_REQUEST: "bad_request", ERR_NOT_REGISTERED: "not_registered", ERR_STORE: "store_error"}.get(
        code, "error"
    )


def _parse_datetime(text: str) -> float | None:
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"):
        try:
            return dt.datetime.strptime(text, fmt).timestamp()
        except ValueError:
            continue
    return None


def _cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
