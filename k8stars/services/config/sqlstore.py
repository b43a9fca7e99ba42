"""The config service's SQL store: TarsFramework's classic ``db_tars`` config tables, on SQLite or MySQL/MariaDB.

Tables, with the columns and meanings TarsFramework (and TarsWeb) give them, so an existing ``db_tars`` works as it is:

- ``t_config_files``: one file of one owner. ``level`` 1 = app level (``server_name`` = ``App``), 2 = server level
  (``server_name`` = ``App.Server``), 3 = node level (``App.Server`` plus the node's IP in ``host``); ``set_name``,
  ``set_area``, ``set_group`` are empty unless the file belongs to a TARS set; ``config`` is the content.
- ``t_config_references``: ``config_id`` (a server- or node-level file) references ``reference_id`` (an app-level
  file), whose content is served before the file's own.
- ``t_config_history_files``: the content of every ``put`` (``configid``, ``reason``, ``content``), as TarsWeb keeps
  it; the service never reads it.

Every lookup reads the database (the servant caches answers for half a second), so a change made by any writer —
``k8stars config put``, TarsWeb, plain SQL — is served within a second without any change log.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from k8stars.paths import data_home
from k8stars.sql import CONFIG_FILES_MYSQL, CONFIG_FILES_SQLITE

LEVEL_APP, LEVEL_SERVER, LEVEL_NODE = 1, 2, 3  # TarsFramework's eLevelApp, eLevelAllServer, eLevelIpServer
SQLITE_FILE = "config.db"
CONNECT_TIMEOUT = 5.0
POOL_SIZE = 4

SetDivision = tuple[str, str, str]  # (set_name, set_area, set_group); all empty: no set
NO_SET: SetDivision = ("", "", "")

_MYSQL_TABLES = [
    CONFIG_FILES_MYSQL,
    """CREATE TABLE IF NOT EXISTS t_config_references (
  id int(11) NOT NULL AUTO_INCREMENT,
  config_id int(11) DEFAULT NULL,
  reference_id int(11) DEFAULT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY config_id (config_id, reference_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8""",
    """CREATE TABLE IF NOT EXISTS t_config_history_files (
  id int(11) NOT NULL AUTO_INCREMENT,
  configid int(11) DEFAULT NULL,
  reason varchar(128) DEFAULT '',
  reason_select varchar(20) NOT NULL DEFAULT '',
  content longtext,
  posttime datetime DEFAULT NULL,
  lastuser varchar(50) DEFAULT NULL,
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8""",
]

# the same tables for SQLite (the registry's embedded store declares t_config_files identically)
_SQLITE_TABLES = [
    CONFIG_FILES_SQLITE,
    """CREATE TABLE IF NOT EXISTS t_config_references (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  config_id INTEGER DEFAULT NULL,
  reference_id INTEGER DEFAULT NULL,
  UNIQUE (config_id, reference_id)
)""",
    """CREATE TABLE IF NOT EXISTS t_config_history_files (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  configid INTEGER DEFAULT NULL,
  reason TEXT DEFAULT '',
  reason_select TEXT NOT NULL DEFAULT '',
  content TEXT,
  posttime TEXT DEFAULT NULL,
  lastuser TEXT DEFAULT NULL
)""",
]

_FILE_COLUMNS = "id, server_name, filename, host, level, set_name, set_area, set_group, config, posttime, lastuser"


class ConfigStoreUnavailable(RuntimeError):
    """The database cannot be opened or read; the message says which and why."""


@dataclass(frozen=True, slots=True)
class FileRow:
    """One row of ``t_config_files``."""

    id: int
    server_name: str
    filename: str
    host: str
    level: int
    set_division: SetDivision
    config: str
    posttime: str = ""
    lastuser: str = ""

    @property
    def set_text(self) -> str:
        return ".".join(self.set_division) if any(self.set_division) else ""


def _file_row(r: Sequence[Any]) -> FileRow:
    return FileRow(int(r[0]), str(r[1] or ""), str(r[2] or ""), str(r[3] or ""), int(r[4] or 0),
                   (str(r[5] or ""), str(r[6] or ""), str(r[7] or "")), str(r[8] or ""), str(r[9] or ""),
                   str(r[10] or ""))  # fmt: skip


def parse_set_division(text: str) -> SetDivision:
    """``name.area.group`` (ConfigInfo.setdivision); "" = no set. ValueError for anything else."""
    if not text.strip():
        return NO_SET
    parts = text.strip().split(".")
    if len(parts) != 3 or not all(parts):
        raise ValueError(f"bad setdivision {text!r}: expected name.area.group")
    return (parts[0], parts[1], parts[2])


# -- the two databases: autocommit reads (each a fresh snapshot) and short write transactions --------------------
class _Tx(ABC):
    @abstractmethod
    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    @abstractmethod
    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int: ...


class _Db(_Tx):
    kind = ""

    @abstractmethod
    async def open(self) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    def transaction(self) -> AbstractAsyncContextManager[_Tx]: ...


class _SqliteConn(_Tx):
    def __init__(self, conn: Any) -> None:
        self.conn = conn

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in await self.conn.execute_fetchall(sql, tuple(params))]

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        async with self.conn.execute(sql, tuple(params)) as cur:  # closed at once: an open cursor keeps its lock
            return int(cur.rowcount)


class _SqliteDb(_Db):
    """One file in WAL mode (readers never wait for the writer), one connection: lookups are a few indexed
    SELECTs and writes come from the CLI, so one connection with a lock per transaction is plenty."""

    kind = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: Any = None
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        import aiosqlite

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = await aiosqlite.connect(self.path, isolation_level=None)  # autocommit; BEGIN is explicit
        try:
            for pragma in ("PRAGMA busy_timeout=5000", "PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL"):
                await self._conn.execute_fetchall(pragma)
            for stmt in _SQLITE_TABLES:
                await _SqliteConn(self._conn).execute(stmt)
        except BaseException:
            await self.close()  # the connection's thread would keep the process alive
            raise

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    def _c(self) -> _SqliteConn:
        if self._conn is None:
            raise RuntimeError("the SQLite config store is not open")
        return _SqliteConn(self._conn)

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        async with self._lock:  # never in the middle of another task's transaction on this connection
            return await self._c().fetch(sql, params)

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        async with self._lock:
            return await self._c().execute(sql, params)

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[_Tx]:
        async with self._lock:
            c = self._c()
            await c.execute("BEGIN IMMEDIATE")
            try:
                yield c
            except BaseException:
                await c.execute("ROLLBACK")
                raise
            await c.execute("COMMIT")

    def transaction(self) -> AbstractAsyncContextManager[_Tx]:
        return self._tx()


class _MysqlCursor(_Tx):
    def __init__(self, cur: Any) -> None:
        self.cur = cur

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        await self.cur.execute(sql.replace("?", "%s"), tuple(params))  # our SQL has no '?' or '%' in literals
        return [tuple(r) for r in await self.cur.fetchall()]

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return int(await self.cur.execute(sql.replace("?", "%s"), tuple(params)))


class _MysqlDb(_Db):
    """A small autocommit pool at READ COMMITTED, so every lookup sees what was committed before it."""

    kind = "mysql"

    def __init__(self, dsn: str) -> None:
        from k8stars.sql import parse_dsn

        self.dsn = parse_dsn(dsn)
        self._pool: Any = None

    def _args(self) -> dict[str, Any]:
        d = self.dsn
        return {"host": d.host, "port": d.port, "user": d.user, "password": d.password, "autocommit": True,
                "charset": "utf8", "connect_timeout": CONNECT_TIMEOUT,
                "init_command": "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED"}  # fmt: skip

    async def open(self) -> None:
        import aiomysql  # type: ignore[import-untyped]

        conn = await aiomysql.connect(**self._args())
        try:
            async with conn.cursor() as cur:
                await cur.execute("SET SESSION sql_notes = 0")  # no "already exists" warnings on every start
                await cur.execute(f"CREATE DATABASE IF NOT EXISTS `{self.dsn.database}` DEFAULT CHARACTER SET utf8")
                await cur.execute(f"USE `{self.dsn.database}`")
                for stmt in _MYSQL_TABLES:
                    await cur.execute(stmt)
        finally:
            conn.close()
        self._pool = await aiomysql.create_pool(minsize=1, maxsize=POOL_SIZE, db=self.dsn.database, **self._args())

    async def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            await self._pool.wait_closed()
            self._pool = None

    def _p(self) -> Any:
        if self._pool is None:
            raise RuntimeError("the MySQL config store is not open")
        return self._pool

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        async with self._p().acquire() as conn, conn.cursor() as cur:
            return await _MysqlCursor(cur).fetch(sql, params)

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        async with self._p().acquire() as conn, conn.cursor() as cur:
            return await _MysqlCursor(cur).execute(sql, params)

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[_Tx]:
        async with self._p().acquire() as conn:
            await conn.begin()
            try:
                async with conn.cursor() as cur:
                    yield _MysqlCursor(cur)
            except BaseException:
                await conn.rollback()
                raise
            await conn.commit()

    def transaction(self) -> AbstractAsyncContextManager[_Tx]:
        return self._tx()


class SqlConfigStore:
    """Reads for the ConfigF servant and writes for ``k8stars config put/rm``, over one database."""

    def __init__(self, kind: str, *, data_dir: str | Path | None = None, dsn: str | None = None) -> None:
        """``sqlite``: ``<data_dir>/config.db``; ``mysql``: the database of ``dsn``. ValueError names what is wrong."""
        if kind == "sqlite":
            self.where = str(Path(data_dir or data_home()) / SQLITE_FILE)
            self.db: _Db = _SqliteDb(Path(self.where))
        elif kind == "mysql":
            if not dsn:
                raise ValueError("--store mysql needs --dsn mysql://user:pass@host:port/db_tars")
            self.db = _MysqlDb(dsn)
            self.where = str(self.db.dsn)
        else:
            raise ValueError(f"unknown SQL store {kind!r} (sqlite or mysql)")
        self.kind = kind

    async def open(self) -> None:
        try:
            await self.db.open()
        except Exception as e:  # driver errors (pymysql, sqlite3, OSError) share no useful base
            raise ConfigStoreUnavailable(f"config store {self.where}: {e}") from None

    async def close(self) -> None:
        await self.db.close()

    # -- what the servant reads -------------------------------------------------------------------------------
    async def file(self, owner: str, filename: str, level: int, host: str = "", sd: SetDivision = NO_SET,
                   tx: _Tx | None = None) -> FileRow | None:  # fmt: skip
        """The one row of a file at a level (``host`` for the node level only), or None."""
        rows = await (tx or self.db).fetch(
            f"SELECT {_FILE_COLUMNS} FROM t_config_files WHERE server_name = ? AND filename = ? AND level = ? "
            "AND host = ? AND set_name = ? AND set_area = ? AND set_group = ?",
            (owner, filename, level, host if level == LEVEL_NODE else "", *sd),
        )
        return _file_row(rows[0]) if rows else None

    async def by_id(self, config_id: int) -> FileRow | None:
        rows = await self.db.fetch(f"SELECT {_FILE_COLUMNS} FROM t_config_files WHERE id = ?", (config_id,))
        return _file_row(rows[0]) if rows else None

    async def reference_ids(self, config_id: int) -> list[int]:
        """The files ``config_id`` references, in the order the references were made."""
        rows = await self.db.fetch(
            "SELECT reference_id FROM t_config_references WHERE config_id = ? ORDER BY id", (config_id,)
        )
        return [int(r[0]) for r in rows if r[0] is not None]

    async def filenames(self, owner: str, level: int | None = None, host: str | None = None,
                        sd: SetDivision | None = NO_SET) -> list[str]:  # fmt: skip
        """Distinct file names of ``owner``; ``level``/``host``/``sd`` None = any."""
        sql, params = "SELECT DISTINCT filename FROM t_config_files WHERE server_name = ?", list[object]([owner])
        if level is not None:
            sql, params = sql + " AND level = ?", [*params, level]
        if host is not None:
            sql, params = sql + " AND host = ?", [*params, host]
        if sd is not None:
            sql, params = sql + " AND set_name = ? AND set_area = ? AND set_group = ?", [*params, *sd]
        return sorted(str(r[0]) for r in await self.db.fetch(sql, params) if r[0])

    # -- what the CLI writes ----------------------------------------------------------------------------------
    async def files(self, owner: str) -> list[FileRow]:
        """Every row of ``owner`` (``App`` or ``App.Server``), by level, host, set and name."""
        rows = await self.db.fetch(f"SELECT {_FILE_COLUMNS} FROM t_config_files WHERE server_name = ?", (owner,))
        return sorted((_file_row(r) for r in rows), key=lambda f: (f.level, f.host, f.set_division, f.filename))

    async def put(self, owner: str, filename: str, level: int, content: str, *, host: str = "",
                  sd: SetDivision = NO_SET, user: str = "", reason: str = "",
                  references: Sequence[str] | None = None) -> tuple[FileRow, bool]:  # fmt: skip
        """Create or replace a file, record it in the history; with ``references`` (app-level file names of the
        same app) replace its references. Returns the row and whether it was created. ValueError: a referenced
        file does not exist."""
        async with self.db.transaction() as tx:
            ref_ids = await self._reference_ids_of(tx, owner.split(".")[0], references or [], sd)
            found = await self.file(owner, filename, level, host, sd, tx)
            if found is None:
                await tx.execute(
                    "INSERT INTO t_config_files (server_name, filename, host, level, set_name, set_area, set_group, "
                    "config, posttime, lastuser) VALUES (?, ?, ?, ?, ?, ?, ?, ?, CURRENT_TIMESTAMP, ?)",
                    (owner, filename, host, level, *sd, content, user),
                )
            else:
                await tx.execute(
                    "UPDATE t_config_files SET config = ?, posttime = CURRENT_TIMESTAMP, lastuser = ? WHERE id = ?",
                    (content, user, found.id),
                )
            row = await self.file(owner, filename, level, host, sd, tx)
            assert row is not None
            await tx.execute(
                "INSERT INTO t_config_history_files (configid, reason, reason_select, content, posttime, lastuser) "
                "VALUES (?, ?, '', ?, CURRENT_TIMESTAMP, ?)",
                (row.id, reason, content, user),
            )
            if references is not None:
                await tx.execute("DELETE FROM t_config_references WHERE config_id = ?", (row.id,))
                for ref in ref_ids:
                    await tx.execute("INSERT INTO t_config_references (config_id, reference_id) VALUES (?, ?)",
                                     (row.id, ref))  # fmt: skip
        return row, found is None

    async def _reference_ids_of(self, tx: _Tx, app: str, names: Sequence[str], sd: SetDivision) -> list[int]:
        ids = []
        for name in dict.fromkeys(names):  # once each, in the order given
            ref = await self.file(app, name, LEVEL_APP, "", NO_SET, tx)
            if ref is None:
                raise ValueError(f"--ref {name}: no app-level file {name} of app {app} (put it first)")
            ids.append(ref.id)
        return ids

    async def remove(self, owner: str, filename: str, level: int, host: str = "", sd: SetDivision = NO_SET) -> bool:
        """Delete a file and every reference from or to it; False when there was no such file."""
        async with self.db.transaction() as tx:
            found = await self.file(owner, filename, level, host, sd, tx)
            if found is None:
                return False
            await tx.execute("DELETE FROM t_config_references WHERE config_id = ? OR reference_id = ?",
                             (found.id, found.id))  # fmt: skip
            await tx.execute("DELETE FROM t_config_files WHERE id = ?", (found.id,))
        return True
