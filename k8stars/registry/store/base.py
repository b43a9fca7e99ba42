"""The one interface every registry store implements (SQLite and MySQL today; a Kubernetes-backed one later).

Writes that change what a lookup answers return :class:`Changes`: the change number they committed and the servers
they touched, so the caller refreshes its cache at once. Other replicas learn the same through :meth:`Store.poll`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Collection, Mapping
from dataclasses import dataclass, field

from k8stars.registry.model import Registration, ServerKey, ServerRow


@dataclass(frozen=True)
class Changes:
    """What one write committed: its change number (0 when nothing changed) and the servers it touched."""

    seq: int = 0
    keys: tuple[ServerKey, ...] = ()


@dataclass(frozen=True)
class Poll:
    """Changes committed after the ones a replica has seen: ``(seq, key)`` pairs, or None to reload everything
    (the change log no longer reaches back that far)."""

    seq: int
    changes: list[tuple[int, ServerKey]] | None


@dataclass(frozen=True)
class Expiry:
    changes: Changes = field(default_factory=Changes)
    expired: int = 0  # servers turned inactive by a lost heartbeat
    removed: int = 0  # servers deleted after the retention


@dataclass(frozen=True)
class GroupTables:
    """The classic IP-group tables: ``t_server_group_rule`` (group_id, allow_ip_rule) and ``t_group_priority``
    (id, group_list, list_order, station)."""

    rules: tuple[tuple[int, str], ...] = ()
    priorities: tuple[tuple[int, str, int, str], ...] = ()


class Store(ABC):
    kind: str = ""
    batches_heartbeats = False  # True: keepAlives that change no state come to touch() in batches, not heartbeat()

    @abstractmethod
    async def open(self) -> None:
        """Connect, and create whatever tables are missing."""

    @abstractmethod
    async def close(self) -> None: ...

    # -- reads ------------------------------------------------------------------------------------------------
    @abstractmethod
    async def load(self, keys: Collection[ServerKey] | None = None) -> list[ServerRow]:
        """Server rows with their adapters: those of ``keys`` (absent ones are simply missing), or all."""

    @abstractmethod
    def scan(self, page: int = 2000) -> AsyncIterator[list[ServerRow]]:
        """Every server row, ``page`` servers at a time (a full load without holding the whole table twice)."""

    @abstractmethod
    async def group_tables(self) -> GroupTables: ...

    @abstractmethod
    async def seq(self) -> int:
        """The newest committed change number."""

    @abstractmethod
    async def poll(self, seen: int) -> Poll: ...

    # -- writes -----------------------------------------------------------------------------------------------
    @abstractmethod
    async def register(self, reg: Registration, now: float) -> Changes:
        """onStartup: upsert node, server and adapters; delete the server's adapters that are no longer listed."""

    @abstractmethod
    async def heartbeat(self, key: ServerKey, state: str, now: float) -> Changes:
        """keepAlive of one server; RegistryError(ERR_NOT_REGISTERED) if it has no row."""

    async def touch(self, servers: Mapping[ServerKey, float], nodes: Mapping[str, float]) -> None:
        """Heartbeat times of many servers and nodes at once, each kept only where it is newer than the stored one
        (replicas flush what they received; the newest wins). Servers without a row are skipped."""
        raise NotImplementedError(f"the {self.kind} store takes heartbeats one by one")

    @abstractmethod
    async def node_heartbeat(self, node: str, state: str, now: float, live_after: float) -> Changes:
        """Legacy keepAlive without app/server: only servers of the node whose own heartbeat is newer than
        ``live_after`` follow it (a reused IP must not revive a dead pod's rows)."""

    @abstractmethod
    async def deregister(self, key: ServerKey, now: float) -> Changes:
        """onPrestop: delete the server's adapters, its row and its host-specific config files."""

    @abstractmethod
    async def destroy_node(self, node: str, now: float) -> Changes:
        """Legacy onPrestop without app/server: every server of the node is disabled and marked destroyed."""

    @abstractmethod
    async def set_metrics_port(self, key: ServerKey, port: int, now: float) -> Changes: ...

    @abstractmethod
    async def expire(self, now: float, inactive_before: float, remove_before: float) -> Expiry:
        """Servers whose heartbeat is older than ``inactive_before`` turn inactive; older than ``remove_before``
        are removed. Nodes follow their servers."""

    @abstractmethod
    async def clean(self, before: float, dry_run: bool, now: float) -> tuple[list[str], Changes]:
        """K8STARS's ``clean``: servers (``node.app.server``) and bare nodes of nodes that are inactive with a
        heartbeat older than ``before``; deleted unless ``dry_run``."""

    @abstractmethod
    async def prune_changes(self, before: float) -> int:
        """Drop change-log entries older than ``before`` (replicas further behind reload everything)."""
