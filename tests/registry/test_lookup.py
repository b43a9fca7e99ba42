"""QueryF semantics on the in-memory directory: active/inactive, group priority, stations, sets, unknown ids; and the
fast path's bytes against the generic encoder's (no store, no network)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from k8stars.registry.directory import Directory
from k8stars.registry.groups import GroupRules
from k8stars.registry.model import AdapterRow, ServerKey, ServerRow
from k8stars.registry.query import LOOKUPS, Lookup, QueryDispatcher, QueryServant
from k8stars.registry.store import GroupTables
from k8stars.tars.packet import TARSVERSION, RequestPacket
from k8stars.tars.protocol.endpointf import EndpointF
from k8stars.tars.protocol.queryf import QueryF_interface
from k8stars.tars.rpc.servant import Dispatcher

OBJ = "App.Hello.MainObj"


def row(node: str, *, state: str = "active", setting: str = "active", set_id: str = "", port: int = 1000,
        flow: str = "NORMAL", servant: str = OBJ) -> ServerRow:  # fmt: skip
    name, area, group = set_id.split(".") if set_id else ("", "", "")
    app, server, _ = servant.split(".")
    return ServerRow(
        key=ServerKey(app, server, node),
        setting_state=setting,
        present_state=state,
        enable_set=bool(set_id),
        set_name=name,
        set_area=area,
        set_group=group,
        grid_flag=flow,
        adapters=[AdapterRow(servant + "Adapter", servant, f"tcp -h {node} -p {port} -t 30000", "tars")],
    )


def hosts(eps: Sequence[EndpointF]) -> list[str]:
    return [e.host for e in eps]


def lists(
    d: Directory, func: str, arg: str = "", caller: str = "", servant: str = OBJ
) -> tuple[int, list[str], list[str]]:
    ret, active, inactive = Lookup(d).lists(func, servant, arg, caller)
    return ret, hosts(active), hosts(inactive)


def test_active_needs_both_states_and_flow() -> None:
    d = Directory()
    d.reset([
        row("10.0.0.1"), row("10.0.0.2", state="activating"), row("10.0.0.3", setting="inactive"),
        row("10.0.0.4", state="deactivating"), row("10.0.0.5", flow="NO_FLOW"), row("10.0.0.6", state="destroyed"),
    ])  # fmt: skip
    assert lists(d, "findObjectById4Any") == (
        0,
        ["10.0.0.1"],
        ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"],
    )
    assert hosts(Lookup(d).lists("findObjectById", OBJ, "", "")[1]) == ["10.0.0.1"]
    assert (d.active_count, d.inactive_count) == (1, 5)


@pytest.mark.parametrize("func", LOOKUPS)
def test_unknown_id_answers_zero_and_empty_lists(func: str) -> None:
    d = Directory()
    d.reset([row("10.0.0.1")])
    arg = "a.b.c" if func == "findObjectByIdInSameSet" else "st"
    assert Lookup(d).lists(func, "No.Such.Obj", arg, "10.0.0.9") == (0, [], [])


def groups(rules: dict[int, str], priorities: list[tuple[str, str]] = ()) -> GroupRules:  # type: ignore[assignment]
    return GroupRules(
        GroupTables(
            tuple(rules.items()),
            tuple((i, group_list, i, station) for i, (group_list, station) in enumerate(priorities)),
        )
    )


def grouped_directory() -> Directory:
    d = Directory(groups({1: "10.1.0.*", 2: "10.2.0.*,10.2.1.5", 3: "10.3.0.*"}, [("1|2", "sz"), ("3,2", "sh")]))
    d.reset([
        row("10.1.0.1"), row("10.1.0.2", state="inactive"), row("10.2.0.1"), row("10.2.1.5"), row("10.3.0.1"),
        row("10.9.0.1"),
    ])  # fmt: skip
    return d


def test_no_group_rules_means_everything() -> None:
    d = Directory()
    d.reset([row("10.1.0.1"), row("10.2.0.1")])
    for func in ("findObjectById4All", "findObjectByIdInSameGroup"):
        assert lists(d, func, caller="10.1.0.7")[1] == ["10.1.0.1", "10.2.0.1"]


@pytest.mark.parametrize("func", ["findObjectById4All", "findObjectByIdInSameGroup"])
def test_group_priority(func: str) -> None:
    d = grouped_directory()
    # same group first (with that group's inactive endpoints)
    assert lists(d, func, caller="10.1.0.9") == (0, ["10.1.0.1"], ["10.1.0.2"])
    assert lists(d, func, caller="10.2.1.5")[1] == ["10.2.0.1", "10.2.1.5"]
    # a caller outside every group gets everything
    assert lists(d, func, caller="192.168.0.1")[1] == ["10.1.0.1", "10.2.0.1", "10.2.1.5", "10.3.0.1", "10.9.0.1"]
    # 4Any ignores groups
    assert len(lists(d, "findObjectById4Any", caller="10.1.0.9")[1]) == 5


def test_group_priority_falls_back_in_list_order_then_ungrouped_then_all() -> None:
    d = grouped_directory()
    d.apply([ServerKey("App", "Hello", "10.1.0.1")], [])  # group 1 has no active endpoint left
    assert lists(d, "findObjectByIdInSameGroup", caller="10.1.0.9")[1] == ["10.2.0.1", "10.2.1.5"]  # priority 1|2
    d.apply([ServerKey("App", "Hello", n) for n in ("10.2.0.1", "10.2.1.5")], [])
    # group 3 is not in group 1's priority list: the ungrouped endpoint comes next
    assert lists(d, "findObjectByIdInSameGroup", caller="10.1.0.9")[1] == ["10.9.0.1"]
    d.apply([ServerKey("App", "Hello", "10.9.0.1")], [])
    assert lists(d, "findObjectByIdInSameGroup", caller="10.1.0.9")[1] == ["10.3.0.1"]  # then all


def test_station() -> None:
    d = grouped_directory()
    assert lists(d, "findObjectByIdInSameStation", "sz") == (0, ["10.1.0.1", "10.2.0.1", "10.2.1.5"], ["10.1.0.2"])
    assert lists(d, "findObjectByIdInSameStation", "sh")[1] == ["10.2.0.1", "10.2.1.5", "10.3.0.1"]
    assert lists(d, "findObjectByIdInSameStation", "nowhere") == (0, [], [])


def set_directory() -> Directory:
    d = Directory()
    d.reset([
        row("10.0.0.1", set_id="app.sz.1"), row("10.0.0.2", set_id="app.sz.2"),
        row("10.0.0.3", set_id="app.sz.*"), row("10.0.0.4", set_id="app.sh.1", state="inactive"),
        row("10.0.0.5"),
    ])  # fmt: skip
    return d


def test_same_set() -> None:
    d = set_directory()
    f = "findObjectByIdInSameSet"
    assert lists(d, f, "app.sz.1") == (0, ["10.0.0.1"], [])
    assert lists(d, f, "app.sz.3") == (0, ["10.0.0.3"], [])  # no group 3: the area's * group serves it
    assert lists(d, f, "app.sz.*") == (0, ["10.0.0.1", "10.0.0.2", "10.0.0.3"], [])  # every group of the area
    assert lists(d, f, "app.sh.1") == (0, [], ["10.0.0.4"])
    assert lists(d, f, "app.bj.1") == (-1, [], [])  # set servers exist, none in this area
    assert lists(d, f, "other.sz.1") == (-1, [], [])
    for bad in ("app.sz", "app..1", "*.sz.1", "app.*.1", ""):
        assert lists(d, f, bad) == (-1, [], []), bad
    # set ids travel in EndpointF.setId
    _, active, _ = Lookup(d).lists(f, OBJ, "app.sz.1", "")
    assert active[0].setId == "app.sz.1"


def test_same_set_falls_back_to_groups_for_servants_without_sets() -> None:
    d = Directory(groups({1: "10.1.0.*"}))
    d.reset([row("10.1.0.1"), row("10.2.0.1")])
    assert lists(d, "findObjectByIdInSameSet", "app.sz.1", caller="10.1.0.5") == (0, ["10.1.0.1"], [])
    assert lists(d, "findObjectByIdInSameSet", "app.sz.1", caller="10.7.0.5")[1] == ["10.1.0.1", "10.2.0.1"]


def test_endpointf_layout() -> None:
    d = Directory(groups({4: "10.0.0.*"}))
    r = row("10.0.0.1")
    r.adapters[0].endpoint = "udp -h 10.0.0.1 -p 9000 -t 5000 -w 30 -v 1 -q 2 -g 7"
    r.bak_flag, r.enable_group = 1, True
    d.reset([r, row("10.0.0.2", port=80, set_id="a.b.c")])
    _, (a, b), _ = Lookup(d).lists("findObjectById4Any", OBJ, "", "")
    assert (a.host, a.port, a.timeout, a.istcp, a.weight, a.weightType, a.qos, a.grid) == (
        "10.0.0.1",
        9000,
        5000,
        0,
        30,
        1,
        2,
        7,
    )
    assert (a.bakFlag, a.grouprealid, a.groupworkid, a.nodeName, a.setId) == (1, 4, 4, "10.0.0.1", "")
    assert (b.istcp, b.timeout, b.weight, b.groupworkid, b.setId) == (1, 30000, -1, -1, "a.b.c")


def test_rows_with_unusable_endpoints_are_skipped(caplog: pytest.LogCaptureFixture) -> None:
    d = Directory()
    r = row("10.0.0.1")
    r.adapters[0].endpoint = "tcp -h 10.0.0.1"
    d.reset([r, row("10.0.0.2")])
    assert lists(d, "findObjectById4Any")[1] == ["10.0.0.2"]
    assert "unusable endpoint" in caplog.text


def _request(func: str, args: tuple[str, ...], version: int = TARSVERSION) -> RequestPacket:
    return RequestPacket(
        iVersion=version, cPacketType=0, iMessageType=0, iRequestId=1, sServantName="tars.tarsregistry.QueryObj",
        sFuncName=func, sBuffer=QueryF_interface[func].encode_args(args), iTimeout=3000, context={}, status={},
    )  # fmt: skip


@pytest.mark.parametrize("func", LOOKUPS)
@pytest.mark.parametrize("servant", [OBJ, "App.Hello.Other", "No.Such.Obj"])
async def test_fast_path_bytes_equal_the_generic_encoder(func: str, servant: str) -> None:
    d = Directory(groups({1: "10.0.0.*"}, [("1", "sz")]))
    d.reset([
        row("10.0.0.1", set_id="app.sz.1"), row("10.0.0.2", state="inactive", set_id="app.sz.1"), row("10.1.0.3"),
        row("10.0.0.4", servant="App.Hello.Other", port=7),
    ])  # fmt: skip
    servant_impl = QueryServant(Lookup(d))
    arg = {"findObjectByIdInSameSet": "app.sz.1", "findObjectByIdInSameStation": "sz"}.get(func)
    args = (servant,) if arg is None else (servant, arg)
    fast = await QueryDispatcher(servant_impl).dispatch(_request(func, args))
    generic = await Dispatcher(servant_impl).dispatch(_request(func, args))
    assert fast.ret == generic.ret == 0
    assert fast.body == generic.body


async def test_fast_path_rejects_garbage() -> None:
    servant_impl = QueryServant(Lookup(Directory()))
    req = _request("findObjectById", ("x",))
    req.sBuffer = b"\x16\xff"
    reply = await QueryDispatcher(servant_impl).dispatch(req)
    assert reply.ret == -1 and "cannot decode" in reply.desc
