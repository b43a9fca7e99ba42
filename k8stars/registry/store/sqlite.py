"""The embedded store's database: one SQLite file in WAL mode, a writer connection and a reader connection.

WAL lets lookups' reloads read while a registration commits. ``synchronous=NORMAL`` keeps every committed
transaction across a crash of the process (only a power loss may drop the last ones).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from k8stars.registry.store.db import Database, Params, Row, Tx, utc_datetime, utc_epoch
from k8stars.registry.store.schema import SQLITE_ADDED_COLUMNS, SQLITE_INDEXES, SQLITE_TABLES

_TS_FORMAT = "%Y-%m-%d %H:%M:%S.%f"


async def _run(conn: aiosqlite.Connection, sql: str) -> None:
    # a statement whose cursor stays open keeps its lock: the other connection would then see "database is locked"
    async with conn.execute(sql) as cur:
        await cur.fetchall()


class _SqliteTx(Tx):
    def __init__(self, conn: aiosqlite.Connection) -> None:
        self.conn = conn

    async def execute(self, sql: str, params: Params = ()) -> int:
        async with self.conn.execute(sql, tuple(params)) as cur:
            return int(cur.rowcount)

    async def fetch(self, sql: str, params: Params = ()) -> list[Row]:
        return [tuple(r) for r in await self.conn.execute_fetchall(sql, tuple(params))]


class SqliteDatabase(Database):
    name = "sqlite"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._write_lock = asyncio.Lock()  # one writer connection: statements of two transactions must not mix

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._writer = await self._connect()
            await _run(self._writer, "PRAGMA journal_mode=WAL")
            self._reader = await self._connect()
        except BaseException:
            await self.close()  # the connections' threads would keep the process alive
            raise

    async def _connect(self) -> aiosqlite.Connection:
        conn = await aiosqlite.connect(self.path, isolation_level=None)  # autocommit; BEGIN is explicit
        try:
            await _run(conn, "PRAGMA busy_timeout=5000")
            await _run(conn, "PRAGMA synchronous=NORMAL")
        except BaseException:
            await conn.close()
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
            raise RuntimeError("the SQLite store is not open")
        return conn

    async def fetch(self, sql: str, params: Params = ()) -> list[Row]:
        rows = await self._conn(False).execute_fetchall(sql, tuple(params))
        return [tuple(r) for r in rows]

    async def execute(self, sql: str, params: Params = ()) -> int:
        async with self._write_lock:
            return await _SqliteTx(self._conn(True)).execute(sql, params)

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Tx]:
        async with self._write_lock:
            conn = self._conn(True)
            await _run(conn, "BEGIN IMMEDIATE")
            try:
                yield _SqliteTx(conn)
            except BaseException:
                await _run(conn, "ROLLBACK")
                raise
            await _run(conn, "COMMIT")

    def transaction(self) -> AbstractAsyncContextManager[Tx]:
        return self._transaction()

    def retryable(self, error: Exception) -> bool:
        return isinstance(error, sqlite3.OperationalError) and "locked" in str(error)  # another process writes

    def upsert(
        self, table: str, columns: Sequence[str], keys: Sequence[str], update: Sequence[str], rows: int = 1
    ) -> str:
        marks = ", ".join(["(" + ", ".join("?" for _ in columns) + ")"] * rows)
        sets = ", ".join(f"{c} = excluded.{c}" for c in update)
        return (
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES {marks} "
            f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {sets}"
        )

    def ddl(self) -> list[str]:
        return list(SQLITE_TABLES)

    def indexes(self) -> list[str]:
        return list(SQLITE_INDEXES)

    async def columns(self, table: str) -> set[str]:
        return {str(r[1]) for r in await self.fetch(f"PRAGMA table_info({table})")}

    def add_column(self, table: str, column: str) -> list[str]:
        return list(SQLITE_ADDED_COLUMNS[column])

    def ts(self, epoch: float) -> Any:
        return utc_datetime(epoch).strftime(_TS_FORMAT)[:-3]

    def epoch(self, value: Any) -> float | None:
        if value is None or value == "":
            return None
        text = str(value)
        fmt = _TS_FORMAT if "." in text else "%Y-%m-%d %H:%M:%S"
        return utc_epoch(dt.datetime.strptime(text, fmt))
