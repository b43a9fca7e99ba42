"""The lookup side of the registry: every servant's endpoints in memory, answered without touching the store.

Each endpoint keeps its EndpointF already encoded (as a vector element), so an answer is a concatenation of bytes:
encoding ten EndpointF structs field by field costs more than everything else in a lookup together. A servant's
sorted active/inactive lists and their encoded payloads are rebuilt lazily, on the first lookup after a change.

Rules (those of the classic C++ registry, see docs/registry.md):
- active iff setting_state and present_state are both ``active`` (and the server did not ask for ``disableFlow``);
- 4Any: everything; 4All and InSameGroup: group priority by the caller's IP (same group, then the priority list,
  then endpoints in no group, then all; without group rules, all);
- InSameSet: ``name.area.group`` (group may be ``*``); a servant without set servers falls back to InSameGroup;
- InSameStation: endpoints in the groups of that station.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import NamedTuple

from k8stars.registry.groups import NO_GROUP, GroupRules
from k8stars.registry.model import AdapterRow, ServerKey, ServerRow
from k8stars.tars.codec import TarsWriter, decode_value, encode_value, struct_of
from k8stars.tars.endpoint import PROTOCOLS, Endpoint, EndpointError
from k8stars.tars.errors import EncodeError
from k8stars.tars.protocol.endpointf import EndpointF
from k8stars.tars.untrusted import printable

log = logging.getLogger("k8stars.registry")

_ENDPOINTF = struct_of(EndpointF)
SET_FALLBACK = 1  # same_set(): the servant has no set servers, answer as InSameGroup
MAX_BAD_SHOWN = 1000  # distinct unusable endpoints warned about, at most
SET_ERROR = -1  # the classic registry's answer for a bad set id or an empty set
_intern = sys.intern  # the same servant and host names come back for every server and node


@dataclass(slots=True)
class EndpointRecord:
    """One endpoint of one servant; only its encoded form is kept (at 100k endpoints, EndpointF objects would cost
    more than everything else together), decoded again for the rare TUP/JSON caller."""

    key: ServerKey
    servant: str
    encoded: bytes  # the EndpointF as a vector element (tag 0)
    active: bool
    set_name: str
    set_area: str
    set_group: str
    group: int

    @property
    def epf(self) -> EndpointF:
        value: EndpointF = decode_value(_ENDPOINTF, self.encoded)
        return value


class Selection(NamedTuple):
    active: list[EndpointRecord]
    inactive: list[EndpointRecord]


def vector_payload(records: Iterable[EndpointRecord]) -> bytes:
    """A vector<EndpointF> after its head: the length, then the elements."""
    items = [r.encoded for r in records]
    w = TarsWriter()
    w.write_int(0, len(items))
    return bytes(w.buf) + b"".join(items)


@dataclass(slots=True)
class ServantView:
    by_key: dict[ServerKey, EndpointRecord] = field(default_factory=dict)
    dirty: bool = True
    active: list[EndpointRecord] = field(default_factory=list)
    inactive: list[EndpointRecord] = field(default_factory=list)
    active_payload: bytes = b""
    inactive_payload: bytes = b""

    def refresh(self) -> ServantView:
        if self.dirty:
            records = [self.by_key[k] for k in sorted(self.by_key)]
            self.active = [r for r in records if r.active]
            self.inactive = [r for r in records if not r.active]
            self.active_payload = vector_payload(self.active)
            self.inactive_payload = vector_payload(self.inactive)
            self.dirty = False
        return self

    @property
    def has_sets(self) -> bool:
        return any(r.set_name for r in self.by_key.values())


class Directory:
    """Servers by key and endpoints by servant name; changed only through :meth:`apply` / :meth:`reset`."""

    def __init__(self, groups: GroupRules | None = None) -> None:
        self.groups = groups or GroupRules()
        self.servers: dict[ServerKey, ServerRow] = {}
        # present_state by (application, server, node) as plain strings: the keepAlive fast path builds no ServerKey
        self.states: dict[tuple[str, str, str], str] = {}
        self.views: dict[str, ServantView] = {}
        self._servants_of: dict[ServerKey, list[str]] = {}
        self.active_count = 0
        self.inactive_count = 0
        self._bad_endpoints: set[str] = set()

    # -- changes ------------------------------------------------------------------------------------------------
    def reset(self, rows: Iterable[ServerRow]) -> None:
        self.servers.clear()
        self.states.clear()
        self.views.clear()
        self._servants_of.clear()
        self.active_count = self.inactive_count = 0
        self.add(rows)

    def add(self, rows: Iterable[ServerRow]) -> None:
        """Rows of servers not known yet (a full load, page by page)."""
        for row in rows:
            self._add(row)

    def take(self, other: Directory) -> None:
        """Become ``other`` (a directory filled off to the side while this one kept answering)."""
        self.groups, self.servers, self.views, self.states = other.groups, other.servers, other.views, other.states
        self._servants_of = other._servants_of
        self.active_count, self.inactive_count = other.active_count, other.inactive_count

    def apply(self, keys: Iterable[ServerKey], rows: Iterable[ServerRow]) -> None:
        """Replace what is known of ``keys`` by ``rows`` (a key without a row is gone)."""
        fresh = {r.key: r for r in rows}
        for key in keys:
            self._remove(key)
            row = fresh.get(key)
            if row is not None:
                self._add(row)

    def _remove(self, key: ServerKey) -> None:
        if self.servers.pop(key, None) is None:
            return
        del self.states[(key.application, key.server, key.node)]
        for servant in self._servants_of.pop(key, []):
            view = self.views.get(servant)
            if view is None:
                continue
            record = view.by_key.pop(key, None)
            if record is not None:
                self._count(record, -1)
            view.dirty = True
            if not view.by_key:
                del self.views[servant]

    def _add(self, row: ServerRow) -> None:
        servants = []
        for adapter in row.adapters:
            record = self._record(row, adapter)
            if record is None:
                continue
            view = self.views.get(record.servant)
            if view is None:
                view = self.views[record.servant] = ServantView()
            old = view.by_key.get(row.key)
            if old is not None:
                self._count(old, -1)
            view.by_key[row.key] = record
            view.dirty = True
            self._count(record, 1)
            servants.append(record.servant)
        self._servants_of[row.key] = servants
        # the records hold what lookups need; the server itself is kept for getMetricsAdapters, without adapters
        self.servers[row.key] = replace(row, adapters=[])
        self.states[(row.key.application, row.key.server, row.key.node)] = row.present_state

    def _count(self, record: EndpointRecord, n: int) -> None:
        if record.active:
            self.active_count += n
        else:
            self.inactive_count += n

    def _record(self, row: ServerRow, adapter: AdapterRow) -> EndpointRecord | None:
        """The endpoint of one adapter row, or None when it cannot be served: one bad row (written by another tool
        or an older k8stars) is skipped, never allowed to stop a load of the rest."""
        try:
            return self._encode(row, adapter)
        except (EndpointError, EncodeError) as e:
            if len(self._bad_endpoints) < MAX_BAD_SHOWN and adapter.endpoint not in self._bad_endpoints:  # once each
                self._bad_endpoints.add(adapter.endpoint)
                log.warning("%s of %s: unusable endpoint skipped: %s", printable(adapter.servant), row.key, e)
            return None

    def _encode(self, row: ServerRow, adapter: AdapterRow) -> EndpointRecord:
        ep = Endpoint.parse(adapter.endpoint)
        group = self.groups.group_of(ep.host)
        epf = EndpointF(
            host=_intern(ep.host),
            port=ep.port,
            timeout=ep.timeout,
            istcp=PROTOCOLS[ep.protocol],
            grid=ep.grid,
            groupworkid=group if row.enable_group else NO_GROUP,
            grouprealid=group,
            setId=row.set_id,
            qos=ep.qos,
            bakFlag=row.bak_flag,
            weight=ep.weight,
            weightType=ep.weight_type,
            authType=ep.auth_type,
            nodeName=row.key.node,
        )
        set_name, set_area, set_group = (row.set_name, row.set_area, row.set_group) if row.enable_set else ("", "", "")
        return EndpointRecord(
            row.key,
            _intern(adapter.servant),
            encode_value(_ENDPOINTF, epf),
            row.active,
            set_name,
            set_area,
            set_group,
            group,
        )

    # -- lookups ------------------------------------------------------------------------------------------------
    def view(self, servant: str) -> ServantView | None:
        view = self.views.get(servant)
        return view.refresh() if view is not None else None

    def by_group_priority(self, view: ServantView, caller: str) -> Selection | None:
        """The endpoints for a caller at ``caller`` (IP); None means all of them (use the cached payloads)."""
        if not self.groups.enabled:
            return None
        mine = self.groups.group_of(caller)
        if mine == NO_GROUP:
            return None
        for group in (mine, *self.groups.fallback_groups(mine), NO_GROUP):
            chosen = _in_groups(view, {group})
            if chosen.active:
                return chosen
        return None

    def by_station(self, view: ServantView, station: str) -> Selection:
        return _in_groups(view, self.groups.station_groups(station))

    def by_set(self, view: ServantView, set_id: str) -> tuple[int, Selection]:
        """(0, endpoints of the caller's set), (SET_FALLBACK, empty) or (SET_ERROR, empty)."""
        empty = Selection([], [])
        parts = set_id.split(".")
        if len(parts) != 3 or not all(parts) or "*" in parts[:2]:
            return SET_ERROR, empty
        if not view.has_sets:
            return SET_FALLBACK, empty
        name, area, group = parts

        def pick(match_group: str | None) -> Selection:
            def ok(r: EndpointRecord) -> bool:
                return r.set_name == name and r.set_area == area and (match_group is None or r.set_group == match_group)

            return Selection([r for r in view.active if ok(r)], [r for r in view.inactive if ok(r)])

        chosen = pick(None) if group == "*" else pick(group)
        if not chosen.active and not chosen.inactive and group != "*":
            chosen = pick("*")  # servers of the area's wildcard group serve every group of it
        if not chosen.active and not chosen.inactive:
            return SET_ERROR, empty
        return 0, chosen


def _in_groups(view: ServantView, groups: set[int]) -> Selection:
    return Selection([r for r in view.active if r.group in groups], [r for r in view.inactive if r.group in groups])
