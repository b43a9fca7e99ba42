"""The registry's store over SQL: the classic ``db_tars`` tables plus a change log, on SQLite or MySQL.

Every transaction that changes what a lookup answers ends by incrementing ``t_k8stars_registry_seq`` (its row lock
serializes them from there to their commit, so change numbers follow commit order) and records the servers it
touched under that number in ``t_k8stars_registry_changes``. A write that turns out to change nothing rolls back,
so change numbers have no holes and a replica can tell when the log has been pruned past what it has seen.
Heartbeats that keep a server's state touch only ``last_heartbeat`` and log nothing; the registry batches them
(:meth:`SqlStore.touch`, see :mod:`k8stars.registry.heartbeats`).
"""

from __future__ import annotations

import asyncio
import logging
import random
import sys
from collections.abc import AsyncIterator, Callable, Collection, Coroutine, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, Concatenate, ParamSpec, TypeVar

from k8stars.registry.model import (
    DESTROYED,
    ERR_NOT_REGISTERED,
    INACTIVE,
    LIVE_STATES,
    AdapterRow,
    Registration,
    RegistryError,
    ServerKey,
    ServerRow,
)
from k8stars.registry.store.base import Changes, Expiry, GroupTables, Poll, Store
from k8stars.sql import Database, Row, Tx, in_clause
from k8stars.tars.untrusted import printable

log = logging.getLogger("k8stars.registry")

P = ParamSpec("P")
T = TypeVar("T")
CHUNK = 100  # keys per statement
RETRIES = 5
MAX_POLL_CHANGES = 20000  # more than this at once: reload everything instead
_KEY_COLUMNS = ("application", "server_name", "node_name")
_LIVE = "(" + ", ".join(f"'{s}'" for s in LIVE_STATES) + ")"

_SELECT_SERVERS = """SELECT s.application, s.server_name, s.node_name, s.setting_state, s.present_state, s.enable_set,
  s.set_name, s.set_area, s.set_group, s.grid_flag, s.bak_flag, s.enable_group, s.metrics_port, s.last_heartbeat,
  a.adapter_name, a.servant, a.endpoint, a.protocol
FROM t_server_conf s LEFT JOIN t_adapter_conf a
  ON a.application = s.application AND a.server_name = s.server_name AND a.node_name = s.node_name"""

_SERVER_COLUMNS = (
    "application", "server_name", "node_name", "patch_version", "present_state", "setting_state", "enable_set",
    "set_name", "set_area", "set_group", "grid_flag", "server_type", "registry_timestamp", "patch_time", "posttime",
    "last_heartbeat",
)  # fmt: skip
_SERVER_UPDATE = tuple(c for c in _SERVER_COLUMNS[3:] if c != "server_type")  # keep a type TarsWeb set
_ADAPTER_COLUMNS = (
    "application", "server_name", "node_name", "adapter_name", "servant", "endpoint", "protocol", "thread_num",
    "max_connections", "queuecap", "queuetimeout", "posttime", "registry_timestamp",
)  # fmt: skip
_NODE_COLUMNS = (
    "node_name", "node_obj", "endpoint_ip", "endpoint_port", "last_reg_time", "last_heartbeat", "setting_state",
    "present_state",
)  # fmt: skip


class _NothingChanged(Exception):
    """Raised at the end of a change transaction that touched nothing, to roll it back."""


class _Change:
    def __init__(self, tx: Tx) -> None:
        self.tx, self.seq = tx, 0
        self.keys: dict[ServerKey, None] = {}  # ordered set

    def add(self, keys: Collection[ServerKey]) -> None:
        self.keys.update(dict.fromkeys(keys))

    @property
    def result(self) -> Changes:
        return Changes(self.seq, tuple(self.keys)) if self.keys else Changes()


def _keys(rows: Sequence[Row], node: str | None = None) -> list[ServerKey]:
    if node is not None:
        return [ServerKey(str(r[0]), str(r[1]), node) for r in rows]
    return [ServerKey(str(r[0]), str(r[1]), str(r[2])) for r in rows]


def _flat(keys: Sequence[ServerKey]) -> list[str]:
    return [v for k in keys for v in (k.application, k.server, k.node)]


def _chunks(items: Sequence[Any], n: int = CHUNK) -> list[Sequence[Any]]:
    return [items[i : i + n] for i in range(0, len(items), n)]


def _retried(
    fn: Callable[Concatenate[SqlStore, P], Coroutine[Any, Any, T]],
) -> Callable[Concatenate[SqlStore, P], Coroutine[Any, Any, T]]:
    """Run a write again when the database gave up on it (InnoDB deadlock or lock wait timeout, SQLite busy):
    transactions that lock different rows in different orders can meet, and the database then picks one to fail."""

    async def retrying(self: SqlStore, /, *args: P.args, **kwargs: P.kwargs) -> T:
        for attempt in range(1, RETRIES + 1):
            try:
                return await fn(self, *args, **kwargs)
            except Exception as e:
                if attempt == RETRIES or not self.sql.retryable(e):
                    raise
                log.debug("%s: %s; retrying (%d)", fn.__name__, e, attempt)
                await asyncio.sleep(random.uniform(0.002, 0.02) * attempt)
        raise AssertionError("unreachable")

    return retrying


class SqlStore(Store):
    batches_heartbeats = True

    def __init__(self, db: Database) -> None:
        self.db = db
        self.sql = db.dialect
        self.kind = db.dialect.name

    # -- lifecycle --------------------------------------------------------------------------------------------
    async def open(self) -> None:
        await self.db.open()

    async def close(self) -> None:
        await self.db.close()

    # -- reads ------------------------------------------------------------------------------------------------
    async def load(self, keys: Collection[ServerKey] | None = None) -> list[ServerRow]:
        if keys is None:
            return self._rows(await self.db.fetch(_SELECT_SERVERS))
        rows: list[Row] = []
        for chunk in _chunks(sorted(keys)):
            where = in_clause([f"s.{c}" for c in _KEY_COLUMNS], len(chunk))
            rows += await self.db.fetch(f"{_SELECT_SERVERS} WHERE {where}", _flat(chunk))
        return self._rows(rows)

    async def scan(self, page: int = 2000) -> AsyncIterator[list[ServerRow]]:
        ids = [int(r[0]) for r in await self.db.fetch("SELECT id FROM t_server_conf ORDER BY id")]
        for i in range(0, len(ids), page):
            lo, hi = ids[i], ids[min(i + page, len(ids)) - 1]
            yield self._rows(await self.db.fetch(f"{_SELECT_SERVERS} WHERE s.id >= ? AND s.id <= ?", (lo, hi)))

    def _rows(self, rows: Sequence[Row]) -> list[ServerRow]:
        servers: dict[ServerKey, ServerRow] = {}
        bad: set[ServerKey] = set()
        for r in rows:
            key = ServerKey(sys.intern(str(r[0])), str(r[1]), sys.intern(str(r[2])))  # many rows share these
            try:
                self._add_row(servers, key, r)
            except (TypeError, ValueError) as e:  # a row another tool wrote: skipped, never the end of a load
                if key not in bad:
                    log.warning("server %s: unreadable row skipped: %s", key, printable(str(e)))
                bad.add(key)
        return [row for key, row in servers.items() if key not in bad]

    def _add_row(self, servers: dict[ServerKey, ServerRow], key: ServerKey, r: Row) -> None:
        server = servers.get(key)
        if server is None:
            server = ServerRow(
                key=key,
                setting_state=str(r[3] or ""),
                present_state=str(r[4] or ""),
                enable_set=str(r[5] or "").upper() == "Y",
                set_name=str(r[6] or ""),
                set_area=str(r[7] or ""),
                set_group=str(r[8] or ""),
                grid_flag=str(r[9] or "NORMAL"),
                bak_flag=int(r[10] or 0),
                enable_group=str(r[11] or "").upper() == "Y",
                metrics_port=int(r[12] or 0),
                last_heartbeat=self.sql.epoch(r[13]),
            )
            servers[key] = server
        if r[15]:  # servant: a server row without adapters comes back from the LEFT JOIN with NULLs
            server.adapters.append(AdapterRow(str(r[14] or ""), str(r[15]), str(r[16] or ""), str(r[17] or "")))

    async def group_tables(self) -> GroupTables:
        rules = await self.db.fetch("SELECT group_id, allow_ip_rule FROM t_server_group_rule ORDER BY group_id")
        prios = await self.db.fetch(
            "SELECT id, group_list, list_order, station FROM t_group_priority ORDER BY list_order, id"
        )
        return GroupTables(
            tuple((int(r[0]), str(r[1] or "")) for r in rules),
            tuple((int(r[0]), str(r[1] or ""), int(r[2] or 0), str(r[3] or "")) for r in prios),
        )

    async def seq(self) -> int:
        rows = await self.db.fetch("SELECT seq FROM t_k8stars_registry_seq WHERE id = 1")
        return int(rows[0][0]) if rows else 0

    async def poll(self, seen: int) -> Poll:
        seq = await self.seq()
        if seq <= seen:
            return Poll(seq, [])
        if seq - seen > MAX_POLL_CHANGES:
            return Poll(seq, None)
        rows = await self.db.fetch(
            "SELECT seq, application, server_name, node_name FROM t_k8stars_registry_changes"
            " WHERE seq > ? AND seq <= ? ORDER BY seq",
            (seen, seq),
        )
        if not rows or int(rows[0][0]) != seen + 1:
            return Poll(seq, None)  # pruned past what we have seen
        return Poll(seq, [(int(r[0]), ServerKey(str(r[1]), str(r[2]), str(r[3]))) for r in rows])

    # -- the change transaction -------------------------------------------------------------------------------
    @asynccontextmanager
    async def _change(self, now: float) -> AsyncIterator[_Change]:
        try:
            async with self.db.transaction() as tx:
                change = _Change(tx)
                yield change
                if not change.keys:
                    raise _NothingChanged
                # the change number is taken last: its row lock serializes only the end of the transactions
                await tx.execute("UPDATE t_k8stars_registry_seq SET seq = seq + 1 WHERE id = 1")
                (row,) = await tx.fetch("SELECT seq FROM t_k8stars_registry_seq WHERE id = 1")
                change.seq = int(row[0])
                await self._log(tx, change, now)
        except _NothingChanged:
            pass

    async def _log(self, tx: Tx, change: _Change, now: float) -> None:
        ts = self.sql.ts(now)
        for chunk in _chunks(list(change.keys)):
            marks = ", ".join(["(?, ?, ?, ?, ?)"] * len(chunk))
            params = [v for k in chunk for v in (change.seq, k.application, k.server, k.node, ts)]
            await tx.execute(
                "INSERT INTO t_k8stars_registry_changes (seq, application, server_name, node_name, changed_at)"
                f" VALUES {marks}",
                params,
            )

    # -- writes -----------------------------------------------------------------------------------------------
    @_retried
    async def register(self, reg: Registration, now: float) -> Changes:
        key, ts = reg.key, self.sql.ts(now)
        async with self._change(now) as ch:
            await self._upsert_node(ch.tx, key.node, ts)
            await ch.tx.execute(
                self.sql.upsert("t_server_conf", _SERVER_COLUMNS, _KEY_COLUMNS, _SERVER_UPDATE),
                (
                    key.application, key.server, key.node, reg.version, reg.state, "active",
                    "Y" if reg.enable_set else "N", reg.set_name, reg.set_area, reg.set_group,
                    "NO_FLOW" if reg.disable_flow else "NORMAL", "tars_cpp", ts, ts, ts, ts,
                ),
            )  # fmt: skip
            if reg.adapters:
                upsert_adapters = self.sql.upsert(
                    "t_adapter_conf", _ADAPTER_COLUMNS, (*_KEY_COLUMNS, "adapter_name"), _ADAPTER_COLUMNS[4:],
                    rows=len(reg.adapters),
                )  # fmt: skip
                await ch.tx.execute(upsert_adapters, [
                    v for a in reg.adapters for v in (
                        key.application, key.server, key.node, a.adapter_name, a.servant, a.endpoint, a.protocol,
                        a.threads, a.max_conns, a.queue_cap, a.queue_timeout, ts, ts,
                    )
                ])  # fmt: skip
            await self._prune_adapters(ch.tx, key, [a.adapter_name for a in reg.adapters])
            ch.add([key])
        return ch.result

    async def _upsert_node(self, tx: Tx, node: str, ts: Any) -> None:
        sql = self.sql.upsert(
            "t_node_info", _NODE_COLUMNS, ("node_name",), ("last_reg_time", "last_heartbeat", "present_state")
        )
        ip = node if len(node) <= 16 else ""  # endpoint_ip is varchar(16): an IPv6 node name does not fit
        await tx.execute(sql, (node, f"tars.tarsnode.NodeObj@tcp -h {node} -p 0", ip, 0, ts, ts, "active", "active"))

    async def _prune_adapters(self, tx: Tx, key: ServerKey, keep: list[str]) -> None:
        """K8STARS never deleted adapters a server stopped announcing; they stayed resolvable forever."""
        sql = "DELETE FROM t_adapter_conf WHERE application = ? AND server_name = ? AND node_name = ?"
        if keep:
            sql += f" AND adapter_name NOT IN ({', '.join('?' for _ in keep)})"
        await tx.execute(sql, [key.application, key.server, key.node, *keep])

    async def _touch_node(self, node: str, ts: Any) -> None:
        await self.db.execute(
            "UPDATE t_node_info SET last_heartbeat = ?, present_state = 'active' WHERE node_name = ?", (ts, node)
        )

    @_retried
    async def heartbeat(self, key: ServerKey, state: str, now: float) -> Changes:
        ts = self.sql.ts(now)
        where = "application = ? AND server_name = ? AND node_name = ?"
        same = await self.db.execute(
            f"UPDATE t_server_conf SET last_heartbeat = ? WHERE {where} AND present_state = ?",
            (ts, key.application, key.server, key.node, state),
        )
        await self._touch_node(key.node, ts)
        if same:
            return Changes()  # state unchanged: nothing a lookup would see
        async with self._change(now) as ch:
            found = await ch.tx.fetch(
                f"SELECT present_state FROM t_server_conf WHERE {where}{self.sql.for_update}", _flat([key])
            )
            if not found:
                raise RegistryError(f"{key} is not registered (call onStartup first)", ERR_NOT_REGISTERED)
            await ch.tx.execute(
                f"UPDATE t_server_conf SET present_state = ?, last_heartbeat = ? WHERE {where}",
                (state, ts, *_flat([key])),
            )
            ch.add([key])
        return ch.result

    @_retried
    async def touch(self, servers: Mapping[ServerKey, float], nodes: Mapping[str, float]) -> None:
        newer = "last_heartbeat IS NULL OR last_heartbeat < v.beat"
        # one transaction, one commit; rows in key order, so replicas flushing at once lock them in the same order
        async with self.db.transaction() as tx:
            for chunk in _chunks(sorted(servers.items())):
                sql = self.sql.update_from(
                    "t_server_conf", _KEY_COLUMNS, ("beat",), "last_heartbeat = v.beat", newer, len(chunk)
                )
                await tx.execute(sql, [v for k, t in chunk for v in (k.application, k.server, k.node, self.sql.ts(t))])
            for chunk in _chunks(sorted(nodes.items())):
                sql = self.sql.update_from(
                    "t_node_info", ("node_name",), ("beat",), "last_heartbeat = v.beat, present_state = 'active'",
                    newer, len(chunk),
                )  # fmt: skip
                await tx.execute(sql, [v for node, t in chunk for v in (node, self.sql.ts(t))])

    @_retried
    async def node_heartbeat(self, node: str, state: str, now: float, live_after: float) -> Changes:
        ts, live = self.sql.ts(now), self.sql.ts(live_after)
        await self._touch_node(node, ts)
        where = "node_name = ? AND last_heartbeat >= ?"
        async with self._change(now) as ch:
            rows = await ch.tx.fetch(
                f"SELECT application, server_name FROM t_server_conf WHERE {where}{self.sql.for_update}", (node, live)
            )
            if state == DESTROYED:
                sets, params = "setting_state = 'inactive', present_state = 'destroyed'", [ts]
            else:
                sets, params = "present_state = ?", [state, ts]
            await ch.tx.execute(
                f"UPDATE t_server_conf SET {sets}, last_heartbeat = ? WHERE {where}", (*params, node, live)
            )
            ch.add(_keys(rows, node))
        return ch.result

    @_retried
    async def deregister(self, key: ServerKey, now: float) -> Changes:
        where = "application = ? AND server_name = ? AND node_name = ?"
        async with self._change(now) as ch:
            adapters = await ch.tx.execute(f"DELETE FROM t_adapter_conf WHERE {where}", _flat([key]))
            servers = await ch.tx.execute(f"DELETE FROM t_server_conf WHERE {where}", _flat([key]))
            await self._delete_config_files(ch.tx, key)
            if adapters or servers:
                ch.add([key])
        return ch.result

    async def _delete_config_files(self, tx: Tx, key: ServerKey) -> None:
        await tx.execute(
            "DELETE FROM t_config_files WHERE host <> '' AND host = ? AND server_name = ?",
            (key.node, f"{key.application}.{key.server}"),
        )

    @_retried
    async def destroy_node(self, node: str, now: float) -> Changes:
        async with self._change(now) as ch:
            rows = await ch.tx.fetch(
                f"SELECT application, server_name FROM t_server_conf WHERE node_name = ?{self.sql.for_update}", (node,)
            )
            await ch.tx.execute(
                "UPDATE t_server_conf SET setting_state = 'inactive', present_state = ? WHERE node_name = ?",
                (DESTROYED, node),
            )
            ch.add(_keys(rows, node))
        return ch.result

    @_retried
    async def set_metrics_port(self, key: ServerKey, port: int, now: float) -> Changes:
        async with self._change(now) as ch:
            n = await ch.tx.execute(
                "UPDATE t_server_conf SET metrics_port = ? WHERE application = ? AND server_name = ? AND node_name = ?",
                (port, *_flat([key])),
            )
            if not n:
                raise RegistryError(f"{key} is not registered (call onStartup first)", ERR_NOT_REGISTERED)
            ch.add([key])
        return ch.result

    @_retried
    async def expire(self, now: float, inactive_before: float, remove_before: float) -> Expiry:
        stale_ts, dead_ts = self.sql.ts(inactive_before), self.sql.ts(remove_before)
        dead_sql = "SELECT application, server_name, node_name FROM t_server_conf WHERE last_heartbeat < ?"
        stale_sql = f"{dead_sql} AND present_state IN {_LIVE}"
        await self.db.execute(
            "UPDATE t_node_info SET present_state = 'inactive' WHERE present_state = 'active' AND last_heartbeat < ?",
            (stale_ts,),
        )
        await self.db.execute(
            "DELETE FROM t_node_info WHERE last_heartbeat < ? AND NOT EXISTS"
            " (SELECT 1 FROM t_server_conf s WHERE s.node_name = t_node_info.node_name)",
            (dead_ts,),
        )
        # look before locking: almost always there is nothing to do
        if not await self.db.fetch(stale_sql + " LIMIT 1", (stale_ts,)) and not await self.db.fetch(
            dead_sql + " LIMIT 1", (dead_ts,)
        ):
            return Expiry()
        async with self._change(now) as ch:
            dead = _keys(await ch.tx.fetch(dead_sql + self.sql.for_update, (dead_ts,)))
            for chunk in _chunks(dead):
                where = in_clause(_KEY_COLUMNS, len(chunk))
                await ch.tx.execute(f"DELETE FROM t_adapter_conf WHERE {where}", _flat(chunk))
                await ch.tx.execute(f"DELETE FROM t_server_conf WHERE {where}", _flat(chunk))
            for key in dead:
                await self._delete_config_files(ch.tx, key)
            stale = _keys(await ch.tx.fetch(stale_sql + self.sql.for_update, (stale_ts,)))
            for chunk in _chunks(stale):
                where = in_clause(_KEY_COLUMNS, len(chunk))
                await ch.tx.execute(
                    f"UPDATE t_server_conf SET present_state = ? WHERE {where}", (INACTIVE, *_flat(chunk))
                )
            ch.add(dead)
            ch.add(stale)
        return Expiry(ch.result, len(stale), len(dead))

    @_retried
    async def clean(self, before: float, dry_run: bool, now: float) -> tuple[list[str], Changes]:
        rows = await self.db.fetch(
            "SELECT node_name FROM t_node_info WHERE present_state = 'inactive' AND last_heartbeat < ?"
            " ORDER BY node_name",
            (self.sql.ts(before),),
        )
        nodes = [str(r[0]) for r in rows]
        servers: list[ServerKey] = []
        for chunk in _chunks(nodes):
            marks = ", ".join("?" for _ in chunk)
            servers += _keys(
                await self.db.fetch(
                    "SELECT application, server_name, node_name FROM t_server_conf"
                    f" WHERE node_name IN ({marks}) ORDER BY node_name, application, server_name",
                    chunk,
                )
            )
        with_servers = {k.node for k in servers}
        lines = [str(k) for k in servers] + [n for n in nodes if n not in with_servers]
        if dry_run or not nodes:
            return lines, Changes()
        async with self._change(now) as ch:
            for chunk in _chunks(nodes):
                marks = ", ".join("?" for _ in chunk)
                for table in ("t_adapter_conf", "t_server_conf"):
                    await ch.tx.execute(f"DELETE FROM {table} WHERE node_name IN ({marks})", chunk)
                await ch.tx.execute(f"DELETE FROM t_config_files WHERE host <> '' AND host IN ({marks})", chunk)
            ch.add(servers)
        for chunk in _chunks(nodes):
            await self.db.execute(
                f"DELETE FROM t_node_info WHERE node_name IN ({', '.join('?' for _ in chunk)})", chunk
            )
        return lines, ch.result

    async def prune_changes(self, before: float) -> int:
        return await self.db.execute(
            "DELETE FROM t_k8stars_registry_changes WHERE changed_at < ?", (self.sql.ts(before),)
        )
