"""The registry through its TARS interfaces, the same suite against SQLite and a real MariaDB: registration and
lookups, state changes visible at once, heartbeat loss, restarts, replicas, K8STARS's bugs, bad input, clean."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Awaitable

import aiohttp
import pytest

from k8stars.registry.model import ERR_BAD_REQUEST, ERR_NOT_REGISTERED, ERR_STORE, MAX_ADAPTERS, ServerKey
from k8stars.registry.store import SqlStore
from k8stars.tars.errors import TarsRpcError
from k8stars.tars.protocol.queryf import QueryFProxy
from k8stars.tars.protocol.tarsregistry import (
    AdapterConf,
    GetMetricsAdaptersReq,
    RegisterMetricsReq,
    keepAliveReq,
    onPrestopReq,
    onStartupReq,
    tarsregistryProxy,
)
from k8stars.tars.rpc import Communicator
from tests.registry.conftest import Client, Launch, StoreSpec, eventually, free_port

SETTLE = 10.0  # a bound against a hang, not a speed goal (those are bench.registry's)

HELLO = "App.Hello.MainObj"


async def test_register_then_lookup(launch: Launch, comm: Communicator) -> None:
    c = Client(comm, await launch())
    await c.start("10.0.0.1", "App", "Hello", ("MainObj", 1001), ("AdminObj2", 1002))
    await c.start("10.0.0.2", "App", "Hello", ("MainObj", 1001))
    eps = await c.query.findObjectById(HELLO)
    assert sorted((e.host, e.port, e.timeout, e.istcp, e.nodeName) for e in eps) == [
        ("10.0.0.1", 1001, 30000, 1, "10.0.0.1"),
        ("10.0.0.2", 1001, 30000, 1, "10.0.0.2"),
    ]
    for res in (
        await c.query.findObjectById4Any(HELLO),
        await c.query.findObjectById4All(HELLO),
        await c.query.findObjectByIdInSameGroup(HELLO),
        await c.query.findObjectByIdInSameSet(HELLO, "x.y.z"),  # no set servers: group rules apply
    ):
        assert res.ret == 0 and len(res.activeEp) == 2 and res.inactiveEp == []
    assert await c.active("App.Hello.AdminObj2") == {("10.0.0.1", 1002)}
    # unknown ids: ret 0 and empty lists, for every lookup
    assert await c.query.findObjectById("No.Such.Obj") == []
    assert tuple(await c.query.findObjectById4Any("No.Such.Obj")) == (0, [], [])
    assert tuple(await c.query.findObjectByIdInSameStation("No.Such.Obj", "sz")) == (0, [], [])
    assert tuple(await c.query.findObjectByIdInSameSet("No.Such.Obj", "a.b.c")) == (0, [], [])


async def test_registry_lists_its_own_servants(launch: Launch) -> None:
    server = await launch(registry_port=0)
    locator = f"tars.tarsregistry.QueryObj@{server.query_endpoint}"
    async with Communicator(locator=locator) as comm:
        query = comm.string_to_proxy(QueryFProxy, "tars.tarsregistry.QueryObj")  # resolved by name, through itself
        eps = await query.findObjectById("tars.tarsregistry.Registry")
        assert [(e.host, e.port) for e in eps] == [("127.0.0.1", server.registry_endpoint.port)]
        assert server.registry_endpoint.port != server.query_endpoint.port
        registry = comm.string_to_proxy(tarsregistryProxy, "tars.tarsregistry.Registry")
        await registry.onStartup(
            onStartupReq("10.0.0.1", "App", "Hello", adapters=[AdapterConf(HELLO, "tcp -h 10.0.0.1 -p 5")])
        )
        assert [e.port for e in await query.findObjectById(HELLO)] == [5]


async def test_state_changes_are_visible_at_once(launch: Launch, comm: Communicator) -> None:
    c = Client(comm, await launch())
    await c.start("10.0.0.1", "App", "Hello", ("MainObj", 1001), State="activating")
    assert await c.inactive(HELLO) == {("10.0.0.1", 1001)} and await c.active(HELLO) == set()
    for state, active in (("active", True), ("deactivating", False), ("", True), ("inactive", False), ("ACTIVE", True)):
        await c.registry.keepAlive(keepAliveReq("10.0.0.1", state, "App", "Hello"))
        # no waiting: the answer right after the call reflects it
        assert (await c.active(HELLO) == {("10.0.0.1", 1001)}) is active, state
    await c.registry.onPrestop(onPrestopReq("10.0.0.1", "App", "Hello"))
    assert tuple(await c.query.findObjectById4Any(HELLO)) == (0, [], [])
    await c.registry.onPrestop(onPrestopReq("10.0.0.1", "App", "Hello"))  # twice is fine
    with pytest.raises(TarsRpcError) as err:
        await c.registry.keepAlive(keepAliveReq("10.0.0.1", "active", "App", "Hello"))
    assert err.value.code == ERR_NOT_REGISTERED and "onStartup" in str(err.value)


async def test_disable_flow_keeps_an_endpoint_out_of_the_active_list(launch: Launch, comm: Communicator) -> None:
    c = Client(comm, await launch())
    await c.start("10.0.0.1", "App", "Hello", ("MainObj", 1001), disableFlow=True)
    await c.start("10.0.0.2", "App", "Hello", ("MainObj", 1001))
    assert await c.active(HELLO) == {("10.0.0.2", 1001)} and await c.inactive(HELLO) == {("10.0.0.1", 1001)}


async def test_reregistration_prunes_stale_adapters(launch: Launch, comm: Communicator) -> None:
    c = Client(comm, await launch())
    await c.start("10.0.0.1", "App", "Hello", ("MainObj", 1001), ("OldObj", 1002))
    await c.start("10.0.0.1", "App", "Hello", ("MainObj", 2001), ("NewObj", 2002))
    assert await c.active("App.Hello.OldObj") == set()
    assert await c.active(HELLO) == {("10.0.0.1", 2001)}
    assert await c.active("App.Hello.NewObj") == {("10.0.0.1", 2002)}
    rows = await c.server.store.load([ServerKey("App", "Hello", "10.0.0.1")])
    assert sorted(a.servant for a in rows[0].adapters) == ["App.Hello.MainObj", "App.Hello.NewObj"]


async def test_heartbeat_loss_then_inactive_then_removed(launch: Launch, comm: Communicator) -> None:
    timeout, retention = 0.8, 1.0
    c = Client(comm, await launch(heartbeat_timeout=timeout, retention=retention))
    # 10.0.0.1's last heartbeat is its registration: the clock starts before it (the registry stamps it with its own
    # clock while the call is on its way, so a stamp taken after the call could be late)
    silent_since = time.monotonic()
    await c.start("10.0.0.1", "App", "Hello", ("MainObj", 1001))
    await c.start("10.0.0.2", "App", "Hello", ("MainObj", 1001))
    # 10.0.0.2 keeps sending keepAlive; 10.0.0.1 goes silent
    stop = asyncio.Event()

    async def beat() -> None:
        while not stop.is_set():
            await c.registry.keepAlive(keepAliveReq("10.0.0.2", "active", "App", "Hello"))
            await asyncio.sleep(0.1)

    beating = asyncio.create_task(beat())
    try:
        waited = await eventually(lambda: _is(c.inactive(HELLO), {("10.0.0.1", 1001)}), timeout=timeout + 3)
        assert time.monotonic() - silent_since >= timeout
        assert await c.active(HELLO) == {("10.0.0.2", 1001)}
        await eventually(lambda: _is(c.inactive(HELLO), set()), timeout=retention + 3)
        assert time.monotonic() - silent_since >= timeout + retention
    finally:
        stop.set()
        await beating
    assert waited < timeout + 2
    assert await c.active(HELLO) == {("10.0.0.2", 1001)}
    assert await c.server.store.load([ServerKey("App", "Hello", "10.0.0.1")]) == []  # the rows are gone
    # the registry's own servants keep themselves alive
    assert await c.active("tars.tarsregistry.QueryObj") == {("127.0.0.1", c.server.query_endpoint.port)}
    # a server that comes back re-registers and is active again
    await c.start("10.0.0.1", "App", "Hello", ("MainObj", 1001))
    assert await c.active(HELLO) == {("10.0.0.1", 1001), ("10.0.0.2", 1001)}


async def _is(value: Awaitable[object], expected: object) -> bool:
    return await value == expected


async def test_reused_ip_cannot_revive_a_dead_pods_rows(launch: Launch, comm: Communicator) -> None:
    """K8STARS #14: a node-wide keepAlive from the pod that got a dead pod's IP re-activated the dead one's rows."""
    c = Client(comm, await launch(heartbeat_timeout=0.6, retention=600))
    await c.start("10.0.0.7", "App", "Old", ("MainObj", 1000))
    await eventually(lambda: _is(c.inactive("App.Old.MainObj"), {("10.0.0.7", 1000)}), timeout=4)
    # a new pod gets the same IP
    await c.start("10.0.0.7", "App", "New", ("MainObj", 2000))
    await c.registry.keepAlive(keepAliveReq("10.0.0.7", "active"))  # the old node-wide form
    assert await c.active("App.New.MainObj") == {("10.0.0.7", 2000)}
    assert await c.active("App.Old.MainObj") == set()
    await c.registry.keepAlive(keepAliveReq("10.0.0.7", "deactivating"))
    assert await c.active("App.New.MainObj") == set() and await c.active("App.Old.MainObj") == set()
    await c.registry.keepAlive(keepAliveReq("10.0.0.7", "active", "App", "New"))
    assert await c.active("App.New.MainObj") == {("10.0.0.7", 2000)}


async def test_legacy_prestop_disables_the_node(launch: Launch, comm: Communicator) -> None:
    c = Client(comm, await launch())
    await c.start("10.0.0.1", "App", "A", ("MainObj", 1))
    await c.start("10.0.0.1", "App", "B", ("MainObj", 2))
    await c.start("10.0.0.2", "App", "A", ("MainObj", 1))
    await c.registry.onPrestop(onPrestopReq("10.0.0.1"))
    assert await c.active("App.A.MainObj") == {("10.0.0.2", 1)}
    assert await c.inactive("App.B.MainObj") == {("10.0.0.1", 2)}
    rows = {r.key.server: r for r in await c.server.store.load([ServerKey("App", s, "10.0.0.1") for s in "AB"])}
    assert {(r.setting_state, r.present_state) for r in rows.values()} == {("inactive", "destroyed")}
    await c.start("10.0.0.1", "App", "B", ("MainObj", 2))  # a new start enables it again
    assert await c.active("App.B.MainObj") == {("10.0.0.1", 2)}


async def test_sets_through_rpc(launch: Launch, comm: Communicator) -> None:
    c = Client(comm, await launch())
    await c.start("10.0.0.1", "App", "Hello", ("MainObj", 1), setID="app.sz.1")
    await c.start("10.0.0.2", "App", "Hello", ("MainObj", 1), setID="app.sz.*")
    await c.start("10.0.0.3", "App", "Hello", ("MainObj", 1))
    res = await c.query.findObjectByIdInSameSet(HELLO, "app.sz.1")
    assert (res.ret, [e.host for e in res.activeEp], res.activeEp[0].setId) == (0, ["10.0.0.1"], "app.sz.1")
    assert [e.host for e in (await c.query.findObjectByIdInSameSet(HELLO, "app.sz.5")).activeEp] == ["10.0.0.2"]
    assert (await c.query.findObjectByIdInSameSet(HELLO, "app.bj.1")).ret == -1
    assert len((await c.query.findObjectByIdInSameGroup(HELLO)).activeEp) == 3


async def test_group_rules_from_the_classic_tables(launch: Launch, comm: Communicator, store_spec: StoreSpec) -> None:
    server = await launch()
    c = Client(comm, server)
    await c.start("10.1.0.1", "App", "Hello", ("MainObj", 1))
    await c.start("10.2.0.1", "App", "Hello", ("MainObj", 1))
    store = server.store
    assert isinstance(store, SqlStore)
    await store.db.execute(
        "INSERT INTO t_server_group_rule (group_id, allow_ip_rule, group_name) VALUES (1, '10.1.0.*', 'g1'),"
        " (2, '10.2.0.*,127.0.0.1', 'g2')"
    )
    await store.db.execute("INSERT INTO t_group_priority (group_list, list_order, station) VALUES ('1|2', 1, 'sz')")
    await server.service.reload_all()
    # this test's client calls from 127.0.0.1, in group 2
    assert [e.host for e in (await c.query.findObjectByIdInSameGroup(HELLO)).activeEp] == ["10.2.0.1"]
    assert len((await c.query.findObjectById4Any(HELLO)).activeEp) == 2
    res = await c.query.findObjectByIdInSameStation(HELLO, "sz")
    assert sorted(e.host for e in res.activeEp) == ["10.1.0.1", "10.2.0.1"]
    assert [e.grouprealid for e in (await c.query.findObjectById(HELLO))] == [1, 2]


async def test_restart_loses_nothing(launch: Launch, comm: Communicator) -> None:
    first = await launch()
    c = Client(comm, first)
    await c.start("10.0.0.1", "App", "Hello", ("MainObj", 1001), setID="app.sz.1")
    await c.start("10.0.0.2", "App", "Hello", ("MainObj", 1002), State="activating")
    await c.registry.registerMetrics(RegisterMetricsReq("10.0.0.1", "App", "Hello", 9100))
    before = [
        tuple(await c.query.findObjectById4Any(HELLO)),
        (await c.registry.getMetricsAdapters(GetMetricsAdaptersReq())).rsp,
    ]
    await first.stop()
    second = await launch()
    c2 = Client(comm, second)
    after = [
        tuple(await c2.query.findObjectById4Any(HELLO)),
        (await c2.registry.getMetricsAdapters(GetMetricsAdaptersReq())).rsp,
    ]
    assert after == before
    assert [e.setId for e in (await c2.query.findObjectById4Any(HELLO)).activeEp] == ["app.sz.1"]


async def test_replicas_agree(launch: Launch, comm: Communicator) -> None:
    a = Client(comm, await launch(host="127.0.0.2"))
    b = Client(comm, await launch(host="127.0.0.3"))
    # each replica lists both (they registered themselves through the shared store)
    both = {("127.0.0.2", a.server.query_endpoint.port), ("127.0.0.3", b.server.query_endpoint.port)}
    await eventually(lambda: _is(a.active("tars.tarsregistry.QueryObj"), both), timeout=SETTLE)
    await eventually(lambda: _is(b.active("tars.tarsregistry.QueryObj"), both), timeout=SETTLE)
    # How fast they agree is bench.registry's (keepAlive -> changed lookup across replicas); here only that they do.
    await a.start("10.0.0.1", "App", "Hello", ("MainObj", 1))
    await eventually(lambda: _is(b.active(HELLO), {("10.0.0.1", 1)}), timeout=SETTLE)
    await b.registry.keepAlive(keepAliveReq("10.0.0.1", "deactivating", "App", "Hello"))
    await eventually(lambda: _is(a.active(HELLO), set()), timeout=SETTLE)
    await b.registry.keepAlive(keepAliveReq("10.0.0.1", "active", "App", "Hello"))
    await eventually(lambda: _is(a.active(HELLO), {("10.0.0.1", 1)}), timeout=SETTLE)
    await a.registry.registerMetrics(RegisterMetricsReq("10.0.0.1", "App", "Hello", 0))
    await eventually(lambda: _has_sd(b), timeout=SETTLE)
    await a.registry.onPrestop(onPrestopReq("10.0.0.1", "App", "Hello"))
    await eventually(lambda: _is(b.active(HELLO), set()), timeout=SETTLE)
    assert tuple(await b.query.findObjectById4Any(HELLO)) == (0, [], [])
    # a replica that stops deregisters itself; the other stops listing it
    await b.server.stop()
    await eventually(
        lambda: _is(a.active("tars.tarsregistry.QueryObj"), {("127.0.0.2", a.server.query_endpoint.port)}), 1.0
    )


async def _has_sd(c: Client) -> bool:
    res = await c.registry.getMetricsAdapters(GetMetricsAdaptersReq())
    return [g.targets for g in res.rsp] == [["10.0.0.1:9325"]]


async def test_metrics_adapters_and_http(launch: Launch, comm: Communicator) -> None:
    server = await launch(http_port=free_port())
    c = Client(comm, server)
    await c.start("10.0.0.1", "App", "Hello", ("MainObj", 1))
    await c.start("10.0.0.2", "App", "Hello", ("MainObj", 1))
    await c.start("10.0.0.3", "App", "Hello", ("MainObj", 1), setID="app.sz.1")
    await c.start("10.0.0.4", "App", "Other", ("MainObj", 1))
    for node, port in (("10.0.0.1", 0), ("10.0.0.2", 9100), ("10.0.0.3", 9101)):
        await c.registry.registerMetrics(RegisterMetricsReq(node, "App", "Hello", port))
    groups = (await c.registry.getMetricsAdapters(GetMetricsAdaptersReq())).rsp
    assert [(g.targets, g.labels) for g in groups] == [
        (["10.0.0.1:9325", "10.0.0.2:9100"], {"application": "App", "server": "Hello", "set": ""}),
        (["10.0.0.3:9101"], {"application": "App", "server": "Hello", "set": "app.sz.1"}),
    ]
    filtered = await c.registry.getMetricsAdapters(GetMetricsAdaptersReq({"set": "app.sz.1"}))
    assert [g.targets for g in filtered.rsp] == [["10.0.0.3:9101"]]
    with pytest.raises(TarsRpcError) as err:
        await c.registry.registerMetrics(RegisterMetricsReq("10.0.0.9", "App", "Hello", 1))
    assert err.value.code == ERR_NOT_REGISTERED
    url = f"http://127.0.0.1:{server.http_port}"
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{url}/http_sd") as rsp:
            assert rsp.status == 200 and len(await rsp.json()) == 2
        async with http.get(f"{url}/http_sd", params={"application": "App", "set": "app.sz.1"}) as rsp:
            assert await rsp.json() == [
                {"targets": ["10.0.0.3:9101"], "labels": {"application": "App", "server": "Hello", "set": "app.sz.1"}}
            ]
        async with http.get(f"{url}/http_sd", params={"colour": "red"}) as rsp:
            assert rsp.status == 400 and "colour" in (await rsp.json())["error"]
        await c.query.findObjectById(HELLO)
        async with http.get(f"{url}/metrics") as rsp:
            text = await rsp.text()
        async with http.get(f"{url}/healthz") as rsp:
            assert rsp.status == 200
    assert 'k8stars_registry_lookups_total{method="findObjectById"} 1.0' in text
    assert 'k8stars_registry_calls_total{method="onStartup",result="ok"}' in text
    assert 'k8stars_registry_endpoints{state="active"} 6.0' in text  # 4 servers + QueryObj + Registry
    assert "process_resident_memory_bytes" in text


BAD_STARTUPS: list[tuple[dict[str, object], str]] = [
    ({"State": "running"}, "unknown state 'running'"),
    ({"nodeName": ""}, "nodeName is empty"),
    ({"application": ""}, "application is empty"),
    ({"server": ""}, "server is empty"),
    ({"server": "Hel lo"}, "may only hold"),
    ({"application": "A" * 51}, "longer than 50"),
    ({"setID": "app.sz"}, "must be name.area.group"),
    ({"setID": "*.sz.1"}, "only the group may be *"),
    ({"Version": "v" * 129}, "Version is longer"),
    ({"adapters": [AdapterConf(HELLO, f"tcp -h 10.0.0.1 -p {1000 + i}") for i in range(MAX_ADAPTERS + 1)]},
     f"at most {MAX_ADAPTERS}"),
    ({"adapters": [AdapterConf(HELLO, "tcp -h 10.0.0.1")]}, "needs -h HOST and -p PORT"),
    ({"adapters": [AdapterConf(HELLO, "http -h 10.0.0.1 -p 80")]}, "must start with tcp, udp or ssl"),
    ({"adapters": [AdapterConf(HELLO, "tcp -h 10.0.0.1 -p 99999")]}, "is not a port (0..65535"),
    ({"adapters": [AdapterConf(HELLO, "tcp -h 10.0.0.1 -p 0")]}, "no usable port"),
    ({"adapters": [AdapterConf(HELLO, "tcp -h 0.0.0.0 -p 80")]}, "listens on all interfaces"),
    ({"adapters": [AdapterConf(HELLO, "tcp -h 10.0.0.1 -p 80 -t soon")]}, "(timeout) is not an integer"),
    ({"adapters": [AdapterConf(HELLO, "tcp -h 10.0.0.1 -p 80 " + "x" * 200)]}, "longer than 128"),
    ({"adapters": [AdapterConf("Other.Svc.MainObj", "tcp -h 10.0.0.1 -p 80")]}, "is not an object of App.Hello"),
    ({"adapters": [AdapterConf("App.Hello", "tcp -h 10.0.0.1 -p 80")]}, "is not an object of App.Hello"),
    ({"adapters": [AdapterConf(HELLO, "tcp -h 10.0.0.1 -p 80")] * 2}, "listed twice"),
    ({"adapters": [AdapterConf(HELLO, "tcp -h 10.0.0.1 -p 80", maxConns=-1)]}, "maxConns -1 is negative"),
]  # fmt: skip


async def test_bad_input_is_refused_and_the_store_is_unchanged(launch: Launch, comm: Communicator) -> None:
    c = Client(comm, await launch())
    await c.start("10.0.0.1", "App", "Hello", ("MainObj", 1001))
    before = sorted(await c.server.store.load(), key=lambda r: r.key)
    seq = await c.server.store.seq()

    async def refused(call: object, expected: str) -> None:
        with pytest.raises(TarsRpcError) as err:
            await call  # type: ignore[misc]
        assert err.value.code == ERR_BAD_REQUEST, err.value
        assert expected in str(err.value)

    for change, expected in BAD_STARTUPS:
        fields: dict[str, object] = {"nodeName": "10.0.0.1", "application": "App", "server": "Hello", **change}
        await refused(c.registry.onStartup(onStartupReq(**fields)), expected)  # type: ignore[arg-type]
    await refused(c.registry.keepAlive(keepAliveReq("10.0.0.1", "up", "App", "Hello")), "unknown state 'up'")
    await refused(c.registry.keepAlive(keepAliveReq("10.0.0.1", "up")), "unknown state 'up'")
    await refused(c.registry.keepAlive(keepAliveReq("", "active", "App", "Hello")), "nodeName is empty")
    await refused(c.registry.keepAlive(keepAliveReq("10.0.0.1", "active", "App")), "server is empty")
    await refused(c.registry.onPrestop(onPrestopReq("10.0.0.1", "", "Hello")), "application is empty")
    await refused(c.registry.onPrestop(onPrestopReq("")), "nodeName is empty")
    await refused(c.registry.registerMetrics(RegisterMetricsReq("10.0.0.1", "App", "Hello", 70000)), "not a port")
    await refused(c.registry.getMetricsAdapters(GetMetricsAdaptersReq({"node": "x"})), "unknown filter node")
    assert sorted(await c.server.store.load(), key=lambda r: r.key) == before
    assert await c.server.store.seq() == seq
    assert await c.active(HELLO) == {("10.0.0.1", 1001)}


async def test_clean(launch: Launch, comm: Communicator) -> None:
    c = Client(comm, await launch(heartbeat_timeout=0.6, retention=3600))
    await c.start("10.0.0.1", "App", "A", ("MainObj", 1))
    await c.start("10.0.0.1", "App", "B", ("MainObj", 2))
    await c.start("10.0.0.2", "App", "A", ("MainObj", 1))
    await eventually(lambda: _is(c.inactive("App.A.MainObj"), {("10.0.0.1", 1), ("10.0.0.2", 1)}), timeout=4)
    await c.start("10.0.0.2", "App", "A", ("MainObj", 1))  # 10.0.0.2 came back
    await c.registry.onPrestop(onPrestopReq("10.0.0.2", "App", "A"))  # ... and went: a bare node row is left
    assert await c.admin.notify("clean") == "\n\nDry run.\n"  # nothing is older than 24 h
    cutoff = (dt.datetime.now() + dt.timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S")  # with a space (K8STARS: no)
    assert await c.active("App.B.MainObj") == set() and await c.inactive("App.B.MainObj") == {("10.0.0.1", 2)}
    await eventually(
        lambda: _notify_is(c, f"clean y {cutoff}", "\n10.0.0.1.App.A\n10.0.0.1.App.B\n10.0.0.2\nDry run.\n"), 4
    )
    deleted = _without_registry(await c.admin.notify(f"clean n {cutoff}"))
    assert deleted == "\n10.0.0.1.App.A\n10.0.0.1.App.B\n10.0.0.2\nDeleted\n"
    assert tuple(await c.query.findObjectById4Any("App.B.MainObj")) == (0, [], [])
    assert await c.admin.notify(f"clean n {cutoff}") == "\n\nDeleted\n"
    assert (await c.admin.notify("clean n 2024-01-01 00:00:00 extra")).startswith("usage: clean [dryRun] [datetime]")
    assert "bad datetime" in await c.admin.notify("clean n yesterday")


async def _notify_is(c: Client, command: str, expected: str) -> bool:
    return _without_registry(await c.admin.notify(command)) == expected


def _without_registry(listing: str) -> str:
    """The registry's own rows: under load its 0.2 s self-heartbeat can miss the test's 0.6 s timeout."""
    return "\n".join(line for line in listing.split("\n") if ".tars.tarsregistry" not in line)


async def test_store_outage_keeps_lookups_and_refuses_writes(launch: Launch, comm: Communicator) -> None:
    server = await launch(heartbeat_timeout=0.5)
    c = Client(comm, server)
    await c.start("10.0.0.1", "App", "Hello", ("MainObj", 1001))
    store = server.store
    assert isinstance(store, SqlStore)
    await store.db.close()  # the database goes away
    try:
        assert await c.active(HELLO) == {("10.0.0.1", 1001)}  # lookups are answered from memory
        with pytest.raises(TarsRpcError) as err:
            await c.start("10.0.0.2", "App", "Hello", ("MainObj", 1002))
        assert err.value.code == ERR_STORE and "store unavailable" in str(err.value)
        await asyncio.sleep(1.0)  # longer than the heartbeat timeout: nothing could report, nothing expires
        assert await c.active(HELLO) == {("10.0.0.1", 1001)}
    finally:
        await store.db.open()
    await c.start("10.0.0.2", "App", "Hello", ("MainObj", 1002))  # and it recovers
    assert await c.active(HELLO) == {("10.0.0.1", 1001), ("10.0.0.2", 1002)}


CLASSIC_SERVER_CONF = {
    # t_server_conf as TarsFramework creates it, before K8STARS and k8stars added their columns
    "mysql": """CREATE TABLE t_server_conf (id int NOT NULL AUTO_INCREMENT, application varchar(128) DEFAULT '',
        server_name varchar(128) DEFAULT '', node_group varchar(50) NOT NULL DEFAULT '',
        node_name varchar(50) NOT NULL DEFAULT '', registry_timestamp datetime(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
        bak_flag int NOT NULL DEFAULT 0, setting_state enum('active','inactive') NOT NULL DEFAULT 'inactive',
        present_state enum('active','inactive','activating','deactivating','destroyed') NOT NULL DEFAULT 'inactive',
        patch_version varchar(128) NOT NULL DEFAULT '', patch_time datetime NOT NULL DEFAULT '2021-12-22 10:35:56',
        posttime datetime DEFAULT NULL, server_type enum('tars_cpp','not_tars','tars_java','tars_nodejs','tars_php',
        'tars_go') DEFAULT NULL, enable_group char(1) DEFAULT 'N', enable_set char(1) NOT NULL DEFAULT 'N',
        set_name varchar(16) DEFAULT NULL, set_area varchar(16) DEFAULT NULL, set_group varchar(64) DEFAULT NULL,
        PRIMARY KEY (id), UNIQUE KEY application (application, server_name, node_name)) ENGINE=InnoDB""",
    "sqlite": """CREATE TABLE t_server_conf (id INTEGER PRIMARY KEY AUTOINCREMENT, application TEXT DEFAULT '',
        server_name TEXT DEFAULT '', node_group TEXT NOT NULL DEFAULT '', node_name TEXT NOT NULL DEFAULT '',
        registry_timestamp TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP, bak_flag INTEGER NOT NULL DEFAULT 0,
        setting_state TEXT NOT NULL DEFAULT 'inactive', present_state TEXT NOT NULL DEFAULT 'inactive',
        patch_version TEXT NOT NULL DEFAULT '', patch_time TEXT NOT NULL DEFAULT '2021-12-22 10:35:56',
        posttime TEXT DEFAULT NULL, server_type TEXT DEFAULT NULL, enable_group TEXT DEFAULT 'N',
        enable_set TEXT NOT NULL DEFAULT 'N', set_name TEXT, set_area TEXT, set_group TEXT,
        UNIQUE (application, server_name, node_name))""",
}


async def test_an_existing_classic_database_gets_the_registry_columns(
    store_spec: StoreSpec, launch: Launch, comm: Communicator
) -> None:
    if store_spec.kind == "mysql":
        import pymysql  # type: ignore[import-untyped]

        from k8stars.sql import parse_dsn

        dsn = parse_dsn(store_spec.dsn or "")
        conn = pymysql.connect(host=dsn.host, port=dsn.port, user=dsn.user, password=dsn.password, autocommit=True)
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE {dsn.database}")
            cur.execute(f"USE {dsn.database}")
            cur.execute(CLASSIC_SERVER_CONF["mysql"])
            cur.execute(
                "INSERT INTO t_server_conf (application, server_name, node_name, setting_state, present_state)"
                " VALUES ('Old', 'Web', '10.9.9.9', 'active', 'active')"
            )
        conn.close()
    else:
        import sqlite3

        from k8stars.registry.store import sqlite_path

        path = sqlite_path(store_spec.data_dir)
        path.parent.mkdir(parents=True)
        with sqlite3.connect(path) as db:
            db.execute(CLASSIC_SERVER_CONF["sqlite"])
            db.execute(
                "INSERT INTO t_server_conf (application, server_name, node_name) VALUES ('Old', 'Web', '10.9.9.9')"
            )
        db.close()
    server = await launch(heartbeat_timeout=0.5)
    store = server.store
    assert isinstance(store, SqlStore)
    assert {"grid_flag", "metrics_port", "last_heartbeat"} <= await store.db.columns("t_server_conf")
    c = Client(comm, server)
    await c.start("10.0.0.1", "App", "Hello", ("MainObj", 1001), disableFlow=True)
    await c.registry.registerMetrics(RegisterMetricsReq("10.0.0.1", "App", "Hello", 9100))
    assert await c.inactive(HELLO) == {("10.0.0.1", 1001)}
    assert [g.targets for g in (await c.registry.getMetricsAdapters(GetMetricsAdaptersReq())).rsp] == [
        ["10.0.0.1:9100"]
    ]
    old = ServerKey("Old", "Web", "10.9.9.9")
    before = await store.load([old])
    assert len(before) == 1 and before[0].last_heartbeat is None
    await asyncio.sleep(1.2)  # a row another tool wrote (no last_heartbeat) never expires nor goes away
    assert await store.load([old]) == before
