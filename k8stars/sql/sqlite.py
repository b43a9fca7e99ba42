"""SQLite: one file in WAL mode, a writer connection and a reader connection.

WAL lets reads go on while a write commits. ``synchronous=NORMAL`` keeps every committed transaction across a
crash of the process (only a power loss may drop the last ones). Writes of two tasks take turns on the one writer
connection; other processes on the same file wait for its lock (``busy_timeout``).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from k8stars.sql.db import Database, Dialect, Params, Row, Tx, utc_datetime, utc_epoch
from k8stars.sql.migrate import Schema

_TS_FORMAT = "%Y-%m-%d %H:%M:%S.%f"
WAL_TRIES = 100  # 5 s, as busy_timeout


def _owner_only(path: Path) -> None:
    """The database file readable by its owner only (registrations, config files): created so, or narrowed when an
    older k8stars left it readable by all. SQLite gives the -wal and -shm files the database file's mode."""
    os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        with contextlib.suppress(FileNotFoundError, PermissionError):  # not ours to narrow: leave it as it is
            if file.stat().st_mode & 0o077:
                file.chmod(0o600)


class SqliteDialect(Dialect):
    name = "sqlite"

    def _on_conflict(self, keys: Sequence[str], update: Sequence[str]) -> str:
        sets = ", ".join(f"{c} = excluded.{c}" for c in update)
        return f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {sets}"

    def _update_join(self, table: str, rows_sql: str, on: str, sets: str, where: str) -> str:
        return f"UPDATE {table} SET {sets} FROM {rows_sql} WHERE {on} AND ({where})"  # UPDATE FROM: SQLite >= 3.33

    def columns_query(self, table: str) -> tuple[str, Params]:
        return "SELECT name FROM pragma_table_info(?)", (table,)

    def ts(self, epoch: float) -> Any:
        # text that sorts as time: 'YYYY-MM-DD HH:MM:SS.fff', UTC
        return utc_datetime(epoch).strftime(_TS_FORMAT)[:-3]

    def epoch(self, value: Any) -> float | None:
        if value is None or value == "":
            return None
        text = str(value)
        fmt = _TS_FORMAT if "." in text else "%Y-%m-%d %H:%M:%S"
        return utc_epoch(dt.datetime.strptime(text, fmt))

    def retryable(self, error: Exception) -> bool:
        return isinstance(error, sqlite3.OperationalError) and "locked" in str(error)  # another process writes


DIALECT = SqliteDialect()


async def _run(conn: aiosqlite.Connection, sql: str) -> None:
    # a statement whose cursor stays open keeps its lock: the other connection would then see "database is locked"
    async with conn.execute(sql) as cur:
        await cur.fetchall()


async def _wal(conn: aiosqlite.Connection) -> None:
    # switching a file to WAL needs it alone: when another connection opens it at that moment SQLite answers "locked"
    # at once, without waiting out busy_timeout
    for attempt in range(1, WAL_TRIES + 1):
        try:
            await _run(conn, "PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as e:
            if attempt == WAL_TRIES or not DIALECT.retryable(e):
                raise
            await asyncio.sleep(0.05)


class _SqliteTx(Tx):
    dialect = DIALECT

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self.conn = conn

    async def execute(self, sql: str, params: Params = ()) -> int:
        async with self.conn.execute(sql, tuple(params)) as cur:
            return int(cur.rowcount)

    async def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        async with self.conn.executemany(sql, [tuple(r) for r in rows]):
            pass

    async def fetch(self, sql: str, params: Params = ()) -> list[Row]:
        return [tuple(r) for r in await self.conn.execute_fetchall(sql, tuple(params))]


class SqliteDatabase(Database):
    dialect = DIALECT

    def __init__(self, path: str | Path, schema: Schema) -> None:
        super().__init__(schema, str(path))
        self.path = Path(path)
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._write_lock = asyncio.Lock()  # one writer connection: statements of two transactions must not mix

    async def _connect(self) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        _owner_only(self.path)
        self._writer = await self._connection()
        await _wal(self._writer)
        self._reader = await self._connection()

    async def _connection(self) -> aiosqlite.Connection:
        conn = await aiosqlite.connect(self.path, isolation_level=None)  # autocommit; BEGIN is explicit
        try:
            await _run(conn, "PRAGMA busy_timeout=5000")
            await _run(conn, "PRAGMA synchronous=NORMAL")
        except BaseException:
            await conn.close()  # its thread would keep the process alive
            raise
        return conn

    async def close(self) -> None:
        for conn in (self._reader, self._writer):
            if conn is not None:
                await conn.close()
        self._reader = self._writer = None

    def _conn(self, writer: bool) -> aiosqlite.Connection:
        conn = self._writer if writer else self._reader
        if conn is None:
            raise RuntimeError(f"the {self.schema.store} store {self.where} is not open")
        return conn

    async def fetch(self, sql: str, params: Params = ()) -> list[Row]:
        return await _SqliteTx(self._conn(False)).fetch(sql, params)

    async def execute(self, sql: str, params: Params = ()) -> int:
        async with self._write_lock:
            return await _SqliteTx(self._conn(True)).execute(sql, params)

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Tx]:
        async with self._write_lock:
            conn = self._conn(True)
            await _run(conn, "BEGIN IMMEDIATE")  # the write lock now: no upgrade deadlock with another process
            try:
                yield _SqliteTx(conn)
            except BaseException:
                await _run(conn, "ROLLBACK")
                raise
            await _run(conn, "COMMIT")

    def transaction(self) -> AbstractAsyncContextManager[Tx]:
        return self._transaction()

    def migration(self) -> AbstractAsyncContextManager[Tx]:
        return self._transaction()  # SQLite's DDL is transactional: a step applies whole or not at all
