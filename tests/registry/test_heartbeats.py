"""Batched heartbeats (k8stars/registry/heartbeats.py), against SQLite and MariaDB: a keepAlive that changes no state
is kept in memory and flushed in batches, a state change is written at once. Heartbeats keep servers active (on
every replica), silence expires them no sooner than the timeout, state changes reach lookups at once and across
replicas, and a kill -9 loses no more than the documented window of timestamps and no state change."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

from k8stars.registry.model import ServerKey
from k8stars.registry.service import FLUSH_INTERVAL
from k8stars.tars.protocol.queryf import QueryFProxy
from k8stars.tars.protocol.tarsregistry import AdapterConf, keepAliveReq, onStartupReq, tarsregistryProxy
from k8stars.tars.rpc import Communicator
from tests.registry.conftest import Client, Launch, StoreSpec, eventually, free_port
from tests.registry.test_e2e import RegistryProcess, registry_argv

OBJ = "App.Beat.MainObj"
CRASH_SLACK = 1.5  # seconds a loaded test machine may delay a flush beyond FLUSH_INTERVAL


async def beat_for(c: Client, node: str, seconds: float, interval: float = 0.1) -> float:
    """keepAlive ``active`` for ``node``'s App.Beat for ``seconds``; returns when the last acknowledged one was sent."""
    last = time.time()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        sent = time.time()
        await c.registry.keepAlive(keepAliveReq(node, "active", "App", "Beat"))
        last = sent
        await asyncio.sleep(interval)
    return last


async def test_heartbeats_keep_servers_active_and_silence_expires_them(launch: Launch, comm: Communicator) -> None:
    timeout = 1.0
    c = Client(comm, await launch(heartbeat_timeout=timeout))
    await c.start("10.0.0.1", "App", "Beat", ("MainObj", 1))
    await c.start("10.0.0.2", "App", "Beat", ("MainObj", 1))
    beating = asyncio.create_task(beat_for(c, "10.0.0.1", 3 * timeout + 1))
    silent_since = await beat_for(c, "10.0.0.2", timeout)  # 10.0.0.2 stops after one timeout
    # only batched heartbeats kept both alive this long; then 10.0.0.2 expires, no sooner than its timeout
    await eventually(lambda: _is(c.inactive(OBJ), {("10.0.0.2", 1)}), timeout=timeout + 5)
    assert time.time() - silent_since >= timeout
    assert await c.active(OBJ) == {("10.0.0.1", 1)}
    await beating
    assert await c.active(OBJ) == {("10.0.0.1", 1)}
    # the batches reached the store: its time is that of a recent keepAlive, not of the registration
    (row,) = await c.server.store.load([ServerKey("App", "Beat", "10.0.0.1")])
    assert row.last_heartbeat is not None and time.time() - row.last_heartbeat < 3 * timeout


async def test_state_changes_reach_lookups_at_once_and_other_replicas(launch: Launch, comm: Communicator) -> None:
    timeout = 1.0
    a = Client(comm, await launch(host="127.0.0.2", heartbeat_timeout=timeout))
    b = Client(comm, await launch(host="127.0.0.3", heartbeat_timeout=timeout))
    await a.start("10.0.0.1", "App", "Beat", ("MainObj", 1))
    await eventually(lambda: _is(b.active(OBJ), {("10.0.0.1", 1)}), timeout=5)
    # heartbeats to A alone keep the server active on B too (B expires by the times A flushed)
    await beat_for(a, "10.0.0.1", 3 * timeout)
    assert await b.active(OBJ) == {("10.0.0.1", 1)}
    for state, active in (("inactive", set()), ("active", {("10.0.0.1", 1)}), ("deactivating", set())):
        await a.registry.keepAlive(keepAliveReq("10.0.0.1", state, "App", "Beat"))
        assert await a.active(OBJ) == active  # at once on the replica that took it
        await eventually(lambda: _is(b.active(OBJ), active), timeout=5)  # noqa: B023  (awaited here)
    # a change through B while A's cache still says deactivating: written through, seen by both
    await b.registry.keepAlive(keepAliveReq("10.0.0.1", "active", "App", "Beat"))
    assert await b.active(OBJ) == {("10.0.0.1", 1)}
    await eventually(lambda: _is(a.active(OBJ), {("10.0.0.1", 1)}), timeout=5)


async def test_kill_9_loses_at_most_the_flush_window(store_spec: StoreSpec, tmp_path: Path) -> None:
    port = free_port()
    proc = RegistryProcess(registry_argv(store_spec, port, "--http-port", "0"), port, 0, tmp_path / "registry.log")
    proc.start()
    try:
        async with Communicator() as comm:
            registry, _ = _proxies(comm, port)
            for node in ("10.0.0.1", "10.0.0.2"):
                adapters = [AdapterConf(OBJ, f"tcp -h {node} -p 1 -t 30000")]
                await registry.onStartup(onStartupReq(node, "App", "Beat", adapters=adapters))
            last = time.time()
            deadline = time.monotonic() + 4.0
            while time.monotonic() < deadline:
                sent = time.time()
                await registry.keepAlive(keepAliveReq("10.0.0.1", "active", "App", "Beat"))
                last = sent
                await asyncio.sleep(0.02)
            await registry.keepAlive(keepAliveReq("10.0.0.2", "inactive", "App", "Beat"))  # acknowledged: kept
            assert proc.proc is not None
            os.kill(proc.proc.pid, signal.SIGKILL)
            killed = time.time()
            proc.proc.wait(timeout=10)
    finally:
        proc.stop()
    store = store_spec.new()
    await store.open()
    try:
        rows = {r.key.node: r for r in await store.load()}
    finally:
        await store.close()
    stored = rows["10.0.0.1"].last_heartbeat
    assert stored is not None and killed - FLUSH_INTERVAL - CRASH_SLACK <= stored <= last + 1.0
    assert rows["10.0.0.2"].present_state == "inactive"
    # a restarted registry serves what was acknowledged
    proc.log.write_text("")
    proc.start()
    try:
        async with Communicator() as comm:
            _, query = _proxies(comm, port)
            res = await query.findObjectById4Any(OBJ)
            assert [e.host for e in res.activeEp] == ["10.0.0.1"]
            assert [e.host for e in res.inactiveEp] == ["10.0.0.2"]
    finally:
        proc.stop()


def _proxies(comm: Communicator, port: int) -> tuple[tarsregistryProxy, QueryFProxy]:
    """Registry and QueryObj of a registry process (both on --port)."""
    registry = comm.string_to_proxy(tarsregistryProxy, f"tars.tarsregistry.Registry@tcp -h 127.0.0.1 -p {port}")
    return registry, comm.string_to_proxy(QueryFProxy, f"tars.tarsregistry.QueryObj@tcp -h 127.0.0.1 -p {port}")


async def _is(value: object, expected: object) -> bool:
    assert asyncio.iscoroutine(value)
    return await value == expected
