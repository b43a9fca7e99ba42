"""The notify service's SQL store: TarsFramework's ``db_tars.t_server_notifys``, on SQLite or MySQL/MariaDB.

Same table, columns and values as TarsFramework's NotifyServer writes, so TarsWeb's server page shows them:
``application``, ``server_name``, ``container_name``, ``node_name`` (the reporting node), ``set_name``/``set_area``/
``set_group``, ``server_id`` (``App.Server_node``), ``thread_id``, ``command`` (the level tag: ``[alarm]``,
``[error]``, ``[warn]``, ``[normal]``), ``result`` (the message), ``notifytime``. The table (and the database) is
created when missing. Writes are batched: one transaction (on MySQL one multi-row INSERT) per batch the queue hands
over.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from k8stars.services.notify.model import Notification
from k8stars.sql import Schema, Step
from k8stars.sql.store import SqlBackedStore

SQLITE_FILE = "notify.db"
POOL_SIZE = 2
MAX_LIMIT = 10000
PAGE_SIZE = 10  # getNotifyInfo: records per page
LEVELS = {"[warn]": 1, "[error]": 2, "[alarm]": 2}  # command tag -> NOTIFYLEVEL (else NOTIFYNORMAL)

NOTIFYS_MYSQL = """CREATE TABLE IF NOT EXISTS t_server_notifys (
  id int(11) NOT NULL AUTO_INCREMENT,
  application varchar(128) DEFAULT '',
  server_name varchar(128) DEFAULT NULL,
  container_name varchar(128) DEFAULT '',
  node_name varchar(128) NOT NULL DEFAULT '',
  set_name varchar(16) DEFAULT NULL,
  set_area varchar(16) DEFAULT NULL,
  set_group varchar(16) DEFAULT NULL,
  server_id varchar(100) DEFAULT NULL,
  thread_id varchar(20) DEFAULT NULL,
  command varchar(50) DEFAULT NULL,
  result text,
  notifytime datetime DEFAULT NULL,
  PRIMARY KEY (id),
  KEY index_name (server_name),
  KEY servernoticetime_i_1 (notifytime),
  KEY indx_1_server_id (server_id),
  KEY query_index (application, server_name, node_name, set_name, set_area, set_group)
) ENGINE=InnoDB DEFAULT CHARSET=utf8"""

NOTIFYS_SQLITE = [
    """CREATE TABLE IF NOT EXISTS t_server_notifys (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  application TEXT DEFAULT '',
  server_name TEXT DEFAULT NULL,
  container_name TEXT DEFAULT '',
  node_name TEXT NOT NULL DEFAULT '',
  set_name TEXT DEFAULT NULL,
  set_area TEXT DEFAULT NULL,
  set_group TEXT DEFAULT NULL,
  server_id TEXT DEFAULT NULL,
  thread_id TEXT DEFAULT NULL,
  command TEXT DEFAULT NULL,
  result TEXT,
  notifytime TEXT DEFAULT NULL
)""",
    "CREATE INDEX IF NOT EXISTS query_index ON t_server_notifys "
    "(application, server_name, node_name, set_name, set_area, set_group)",
]

# version 1: the table as the service created it before versions were recorded
SCHEMA = Schema("notify", [Step(sqlite=NOTIFYS_SQLITE, mysql=[NOTIFYS_MYSQL])])

_COLUMNS = ("application", "server_name", "container_name", "node_name", "set_name", "set_area", "set_group",
            "server_id", "thread_id", "command", "result", "notifytime")  # fmt: skip
_LIMITS = {"application": 128, "server_name": 128, "container_name": 128, "node_name": 128, "set_name": 16,
           "set_area": 16, "set_group": 16, "server_id": 100, "thread_id": 20, "command": 50}  # fmt: skip


@dataclass(frozen=True, slots=True)
class NotifyRow:
    id: int
    app: str
    server: str
    node: str
    command: str
    message: str
    time: str
    thread_id: str = ""
    set_text: str = ""


def _values(n: Notification) -> tuple[Any, ...]:
    values = dict(zip(_COLUMNS, (n.app, n.server, n.container, n.node, *n.set_division, n.server_id, n.thread_id,
                                 n.command, n.message, n.time.strftime("%Y-%m-%d %H:%M:%S")), strict=True))  # fmt: skip
    for col, limit in _LIMITS.items():  # MySQL in strict mode refuses a too long value: cut it as the column allows
        values[col] = values[col][:limit]
    return tuple(values[c] for c in _COLUMNS)


class SqlNotifyStore(SqlBackedStore):
    """``t_server_notifys`` on SQLite (``<data_dir>/notify.db``) or MySQL (``dsn``)."""

    schema = SCHEMA
    sqlite_file = SQLITE_FILE
    pool_size = POOL_SIZE

    # -- what the queue writes and the CLI reads ---------------------------------------------------------------
    async def notify_page(self, name: str, where: str, page: int) -> NotifyPage:
        """getNotifyInfo's page (k8stars.services.notify.queue.NotifyQueryable)."""
        return await notify_page(self, name, where, page)

    async def write(self, items: Sequence[Notification]) -> int:
        placeholders = ", ".join("?" * len(_COLUMNS))
        await self.db.executemany(f"INSERT INTO t_server_notifys ({', '.join(_COLUMNS)}) VALUES ({placeholders})",
                                [_values(n) for n in items])  # fmt: skip
        return len(items)

    async def recent(self, app: str, server: str | None = None, node: str | None = None,
                     limit: int = 20) -> list[NotifyRow]:  # fmt: skip
        """The newest ``limit`` notifications of ``app`` (and ``server``, ``node``), newest first."""
        if not 1 <= limit <= MAX_LIMIT:
            raise ValueError(f"--limit {limit}: expected 1 to {MAX_LIMIT}")
        sql = ("SELECT id, application, server_name, node_name, command, result, notifytime, thread_id, set_name, "
               "set_area, set_group FROM t_server_notifys WHERE application = ?")  # fmt: skip
        params: list[Any] = [app]
        if server is not None:
            sql, params = sql + " AND server_name = ?", [*params, server]
        if node is not None:
            sql, params = sql + " AND node_name = ?", [*params, node]
        rows = await self.db.fetch(sql + f" ORDER BY id DESC LIMIT {int(limit)}", params)
        return [_row(r) for r in rows]


@dataclass(frozen=True, slots=True)
class NotifyPage:
    """One page of getNotifyInfo: ``(time, server_id, level, message)`` items, and the next page or -1."""

    items: list[tuple[str, str, int, str]]
    nextpage: int


def split_name(name: str) -> tuple[str, str]:
    """``App.Server`` -> (app, server); a name without a dot is both (as TarsFramework's notifyServer)."""
    app, _, server = name.partition(".")
    return app, server or app


async def notify_page(store: SqlNotifyStore, name: str, ip: str, page: int,
                      size: int = PAGE_SIZE) -> NotifyPage:  # fmt: skip
    """Page ``page`` (from 0) of ``name``'s records, newest first, only node ``ip`` (or container: TarsGo's
    ``sContainer``, the pod name) when given."""
    app, server = split_name(name)
    sql = ("SELECT notifytime, server_id, command, result FROM t_server_notifys "
           "WHERE application = ? AND server_name = ?")  # fmt: skip
    params: list[Any] = [app, server]
    if ip:
        sql, params = sql + " AND (node_name = ? OR container_name = ?)", [*params, ip, ip]
    offset = max(page, 0) * size
    rows = await store.db.fetch(sql + f" ORDER BY id DESC LIMIT {int(size) + 1} OFFSET {int(offset)}", params)
    items = [(str(r[0] or ""), str(r[1] or ""), LEVELS.get(str(r[2] or ""), 0), str(r[3] or "")) for r in rows]
    return NotifyPage(items[:size], max(page, 0) + 1 if len(items) > size else -1)


def _row(r: Sequence[Any]) -> NotifyRow:
    parts = [str(p or "") for p in r[8:11]]
    return NotifyRow(int(r[0]), str(r[1] or ""), str(r[2] or ""), str(r[3] or ""), str(r[4] or ""), str(r[5] or ""),
                     str(r[6] or ""), str(r[7] or ""), ".".join(parts) if any(parts) else "")  # fmt: skip
