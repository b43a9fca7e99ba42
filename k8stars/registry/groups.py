"""Classic TARS IP groups: which group an address belongs to, and which groups stand in for one another.

``t_server_group_rule.allow_ip_rule`` lists addresses of a group (separated by ``,`` ``;`` ``|`` or spaces): an exact
IP, or a prefix ending in ``*`` (``10.1.2.*``). As in the classic registry, ``denny_ip_rule`` and ``ip_order`` are
not consulted. ``t_group_priority`` rows (by ``list_order``) list group ids that may serve each other, and name the
station (``findObjectByIdInSameStation``) they belong to.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from k8stars.registry.store.base import GroupTables

NO_GROUP = -1
_SPLIT = re.compile(r"[,;|\s]+")
_CACHE_LIMIT = 65536


@dataclass(frozen=True)
class Priority:
    station: str
    groups: tuple[int, ...]


class GroupRules:
    def __init__(self, tables: GroupTables | None = None) -> None:
        self.tables = tables or GroupTables()
        self.exact: dict[str, int] = {}
        self.prefixes: list[tuple[str, int]] = []
        for group_id, rule in self.tables.rules:
            for item in _SPLIT.split(rule.strip()):
                if item.endswith("*"):
                    self.prefixes.append((item[:-1], group_id))
                elif item:
                    self.exact.setdefault(item, group_id)
        self.prefixes.sort(key=lambda p: -len(p[0]))  # the most specific prefix wins
        self.priorities = [
            Priority(station, tuple(int(g) for g in _SPLIT.split(group_list.strip()) if g.lstrip("-").isdigit()))
            for _, group_list, _, station in self.tables.priorities
        ]
        self._memo: dict[str, int] = {}

    @property
    def enabled(self) -> bool:
        """No group rules at all: every lookup answers with every endpoint."""
        return bool(self.exact or self.prefixes)

    def group_of(self, ip: str) -> int:
        g = self._memo.get(ip)
        if g is None:
            g = self._match(ip)
            if len(self._memo) >= _CACHE_LIMIT:
                self._memo.clear()
            self._memo[ip] = g
        return g

    def _match(self, ip: str) -> int:
        g = self.exact.get(ip)
        if g is not None:
            return g
        for prefix, group_id in self.prefixes:
            if ip.startswith(prefix):
                return group_id
        return NO_GROUP

    def fallback_groups(self, group: int) -> list[int]:
        """Groups that may serve callers of ``group``, in priority order (the group itself excluded)."""
        out: list[int] = []
        for p in self.priorities:
            if group in p.groups:
                out += [g for g in p.groups if g != group and g not in out]
        return out

    def station_groups(self, station: str) -> set[int]:
        return {g for p in self.priorities if p.station == station for g in p.groups}
