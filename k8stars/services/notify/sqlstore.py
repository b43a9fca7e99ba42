"""The notify service's SQL store: TarsFramework's ``db_tars.t_server_notifys``, on SQLite or MySQL/MariaDB.

Same table, columns and values as TarsFramework's NotifyServer writes, so TarsWeb's server page shows them:
``application``, ``server_name``, ``container_name``, ``node_name`` (the reporting node), ``set_name``/``set_area``/
``set_group``, ``server_id`` (``App.Server_node``), ``thread_id``, ``command`` (the level tag: ``[alarm]``,
``[error]``, ``[warn]``, ``[normal]``), ``result`` (the message), ``notifytime``. The table (and the database) is
created when missing. Writes are batched: one multi-row INSERT per batch the queue hands over.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from k8stars.paths import data_home
from k8stars.services.notify.model import Notification
from k8stars.sql import parse_dsn

SQLITE_FILE = "notify.db"
CONNECT_TIMEOUT = 5.0
POOL_SIZE = 2
MAX_LIMIT = 10000

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

_COLUMNS = ("application", "server_name", "container_name", "node_name", "set_name", "set_area", "set_group",
            "server_id", "thread_id", "command", "result", "notifytime")  # fmt: skip
_LIMITS = {"application": 128, "server_name": 128, "container_name": 128, "node_name": 128, "set_name": 16,
           "set_area": 16, "set_group": 16, "server_id": 100, "thread_id": 20, "command": 50}  # fmt: skip


class NotifyStoreUnavailable(RuntimeError):
    """The database cannot be opened; the message says which and why."""


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


class SqlNotifyStore:
    """``t_server_notifys`` on SQLite (``<data_dir>/notify.db``) or MySQL (``dsn``)."""

    def __init__(self, kind: str, *, data_dir: str | Path | None = None, dsn: str | None = None) -> None:
        if kind == "sqlite":
            self.where = str(Path(data_dir or data_home()) / SQLITE_FILE)
        elif kind == "mysql":
            if not dsn:
                raise ValueError("--store mysql needs --dsn mysql://user:pass@host:port/db_tars")
            self.dsn = parse_dsn(dsn)
            self.where = str(self.dsn)
        else:
            raise ValueError(f"unknown SQL store {kind!r} (sqlite or mysql)")
        self.kind = kind
        self._conn: Any = None  # sqlite
        self._pool: Any = None  # mysql
        self._lock = asyncio.Lock()

    # -- open / close ----------------------------------------------------------------------------------------------
    async def open(self) -> None:
        try:
            await (self._open_sqlite() if self.kind == "sqlite" else self._open_mysql())
        except Exception as e:  # driver errors (pymysql, sqlite3, OSError) share no useful base
            await self.close()
            raise NotifyStoreUnavailable(f"notify store {self.where}: {e}") from None

    async def _open_sqlite(self) -> None:
        import aiosqlite

        Path(self.where).parent.mkdir(parents=True, exist_ok=True)
        self._conn = await aiosqlite.connect(self.where, isolation_level=None)
        for stmt in ("PRAGMA busy_timeout=5000", "PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL",
                     *NOTIFYS_SQLITE):  # fmt: skip
            await self._conn.execute_fetchall(stmt)

    def _mysql_args(self) -> dict[str, Any]:
        d = self.dsn
        return {"host": d.host, "port": d.port, "user": d.user, "password": d.password, "autocommit": True,
                "charset": "utf8", "connect_timeout": CONNECT_TIMEOUT}  # fmt: skip

    async def _open_mysql(self) -> None:
        import aiomysql  # type: ignore[import-untyped]

        conn = await aiomysql.connect(**self._mysql_args())
        try:
            async with conn.cursor() as cur:
                await cur.execute("SET SESSION sql_notes = 0")  # no "already exists" warnings on every start
                await cur.execute(f"CREATE DATABASE IF NOT EXISTS `{self.dsn.database}` DEFAULT CHARACTER SET utf8")
                await cur.execute(f"USE `{self.dsn.database}`")
                await cur.execute(NOTIFYS_MYSQL)
        finally:
            conn.close()
        self._pool = await aiomysql.create_pool(minsize=1, maxsize=POOL_SIZE, db=self.dsn.database,
                                                **self._mysql_args())  # fmt: skip

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None
        if self._pool is not None:
            self._pool.close()
            await self._pool.wait_closed()
            self._pool = None

    # -- statements ------------------------------------------------------------------------------------------------
    async def _executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if self._conn is not None:
            async with self._lock:  # one transaction per batch: one commit (fsync) instead of one per row
                await self._conn.execute_fetchall("BEGIN")
                try:
                    async with self._conn.executemany(sql, rows):  # its cursor closed at once
                        pass
                except BaseException:
                    await self._conn.execute_fetchall("ROLLBACK")
                    raise
                await self._conn.execute_fetchall("COMMIT")
        elif self._pool is not None:
            async with self._pool.acquire() as conn, conn.cursor() as cur:
                await cur.executemany(sql.replace("?", "%s"), rows)
        else:
            raise RuntimeError(f"the notify store {self.where} is not open")

    async def _fetch(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        if self._conn is not None:
            async with self._lock:
                return [tuple(r) for r in await self._conn.execute_fetchall(sql, tuple(params))]
        if self._pool is not None:
            async with self._pool.acquire() as conn, conn.cursor() as cur:
                await cur.execute(sql.replace("?", "%s"), tuple(params))
                return [tuple(r) for r in await cur.fetchall()]
        raise RuntimeError(f"the notify store {self.where} is not open")

    # -- what the queue writes and the CLI reads ---------------------------------------------------------------
    async def write(self, items: Sequence[Notification]) -> int:
        placeholders = ", ".join("?" * len(_COLUMNS))
        await self._executemany(f"INSERT INTO t_server_notifys ({', '.join(_COLUMNS)}) VALUES ({placeholders})",
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
        rows = await self._fetch(sql + f" ORDER BY id DESC LIMIT {int(limit)}", params)
        return [_row(r) for r in rows]


def _row(r: Sequence[Any]) -> NotifyRow:
    parts = [str(p or "") for p in r[8:11]]
    return NotifyRow(int(r[0]), str(r[1] or ""), str(r[2] or ""), str(r[3] or ""), str(r[4] or ""), str(r[5] or ""),
                     str(r[6] or ""), str(r[7] or ""), ".".join(parts) if any(parts) else "")  # fmt: skip
