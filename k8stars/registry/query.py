"""``tars.tarsregistry.QueryObj``: the six QueryF lookups, answered from the :class:`Directory`.

TARS-protocol calls (every real client) take a fast path that assembles the response body from pre-encoded
endpoints; TUP and JSON calls go through the generic servant methods below, which give the same answers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import Counter

from k8stars.registry.directory import SET_FALLBACK, Directory, EndpointRecord, Selection, vector_payload
from k8stars.tars import errors
from k8stars.tars.codec import W_LIST, TarsWriter
from k8stars.tars.errors import DecodeError
from k8stars.tars.packet import TARSVERSION, RequestPacket
from k8stars.tars.protocol.endpointf import EndpointF
from k8stars.tars.protocol.queryf import (
    QueryF_findObjectById4All_result,
    QueryF_findObjectById4Any_result,
    QueryF_findObjectByIdInSameGroup_result,
    QueryF_findObjectByIdInSameSet_result,
    QueryF_findObjectByIdInSameStation_result,
    QueryF_interface,
    QueryFServant,
)
from k8stars.tars.rpc import current
from k8stars.tars.rpc.servant import Dispatcher, Reply

LOOKUPS = (
    "findObjectById",
    "findObjectById4Any",
    "findObjectById4All",
    "findObjectByIdInSameGroup",
    "findObjectByIdInSameStation",
    "findObjectByIdInSameSet",
)


def _ret(code: int) -> bytes:
    w = TarsWriter()
    w.write_int(0, code)
    return bytes(w.buf)


def _vector(tag: int, payload: bytes) -> bytes:
    return bytes([tag << 4 | W_LIST]) + payload


class Lookup:
    """The lookups as (ret, active, inactive) in two forms: encoded bodies (fast path) and EndpointF lists."""

    def __init__(self, directory: Directory) -> None:
        self.directory = directory

    def select(self, func: str, servant: str, arg: str, caller: str) -> tuple[int, Selection | None, bool]:
        """(ret, selection, found): selection None means "every endpoint" (the view's cached lists)."""
        d = self.directory
        view = d.view(servant)
        if view is None:
            return 0, Selection([], []), False
        if func in ("findObjectById", "findObjectById4Any"):
            return 0, None, True
        if func == "findObjectByIdInSameStation":
            return 0, d.by_station(view, arg), True
        if func == "findObjectByIdInSameSet":
            ret, chosen = d.by_set(view, arg)
            if ret == SET_FALLBACK:
                return 0, d.by_group_priority(view, caller), True
            return ret, chosen, True
        return 0, d.by_group_priority(view, caller), True  # 4All and InSameGroup

    def body(self, func: str, servant: str, arg: str, caller: str) -> bytes:
        """The response body of a TARS-protocol call, byte for byte what the generic encoder writes."""
        ret, chosen, _ = self.select(func, servant, arg, caller)
        if chosen is None:
            view = self.directory.view(servant)
            assert view is not None
            active, inactive = view.active_payload, view.inactive_payload
        else:
            active, inactive = vector_payload(chosen.active), vector_payload(chosen.inactive)
        if func == "findObjectById":
            return _vector(0, active)
        tags = (3, 4) if func in ("findObjectByIdInSameStation", "findObjectByIdInSameSet") else (2, 3)
        return _ret(ret) + _vector(tags[0], active) + _vector(tags[1], inactive)

    def lists(self, func: str, servant: str, arg: str, caller: str) -> tuple[int, list[EndpointF], list[EndpointF]]:
        ret, chosen, _ = self.select(func, servant, arg, caller)
        if chosen is None:
            view = self.directory.view(servant)
            assert view is not None
            chosen = Selection(view.active, view.inactive)
        return ret, _epfs(chosen.active), _epfs(chosen.inactive)


def _epfs(records: list[EndpointRecord]) -> list[EndpointF]:
    return [r.epf for r in records]


def _caller() -> str:
    try:
        return current().peer_host
    except LookupError:
        return ""


class QueryServant(QueryFServant):
    """QueryF for TUP and JSON callers (and the reference the fast path is tested against)."""

    def __init__(self, lookup: Lookup, counter: Counter | None = None) -> None:
        self.lookup = lookup
        self.counter = counter

    def _lists(self, func: str, servant: str, arg: str = "") -> tuple[int, list[EndpointF], list[EndpointF]]:
        if self.counter is not None:
            self.counter.labels(func).inc()
        return self.lookup.lists(func, servant, arg, _caller())

    async def findObjectById(self, id: str) -> list[EndpointF]:
        return self._lists("findObjectById", id)[1]

    async def findObjectById4Any(self, id: str) -> QueryF_findObjectById4Any_result:
        return QueryF_findObjectById4Any_result(*self._lists("findObjectById4Any", id))

    async def findObjectById4All(self, id: str) -> QueryF_findObjectById4All_result:
        return QueryF_findObjectById4All_result(*self._lists("findObjectById4All", id))

    async def findObjectByIdInSameGroup(self, id: str) -> QueryF_findObjectByIdInSameGroup_result:
        return QueryF_findObjectByIdInSameGroup_result(*self._lists("findObjectByIdInSameGroup", id))

    async def findObjectByIdInSameStation(self, id: str, sStation: str) -> QueryF_findObjectByIdInSameStation_result:
        return QueryF_findObjectByIdInSameStation_result(*self._lists("findObjectByIdInSameStation", id, sStation))

    async def findObjectByIdInSameSet(self, id: str, setId: str) -> QueryF_findObjectByIdInSameSet_result:
        return QueryF_findObjectByIdInSameSet_result(*self._lists("findObjectByIdInSameSet", id, setId))


class QueryDispatcher(Dispatcher):
    """Serves TARS-protocol lookups from pre-encoded bytes; everything else goes to :class:`QueryServant`."""

    def __init__(self, servant: QueryServant) -> None:
        super().__init__(servant)
        self.lookup = servant.lookup
        self._counts = {name: servant.counter.labels(name) for name in LOOKUPS} if servant.counter else {}
        self._fast: dict[str, Callable[[bytes], list[Any]]] = {
            name: QueryF_interface[name].decode_args for name in LOOKUPS
        }

    async def dispatch(self, req: RequestPacket) -> Reply:
        decode = self._fast.get(req.sFuncName)
        if decode is None or req.iVersion != TARSVERSION:
            return await super().dispatch(req)
        try:
            args = decode(req.sBuffer)
        except (DecodeError, ValueError) as e:
            return Reply(errors.TARSSERVERDECODEERR, desc=f"{req.sFuncName}: cannot decode parameters: {e}")
        count = self._counts.get(req.sFuncName)
        if count is not None:
            count.inc()
        arg = args[1] if len(args) > 1 else ""
        return Reply(0, self.lookup.body(req.sFuncName, args[0], arg, _caller()))
