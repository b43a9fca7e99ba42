"""MySQL or MariaDB, through a small pool; the database is created when missing.

Every pooled connection is in autocommit mode at READ COMMITTED, so each read is a fresh snapshot (a replica
polling for changes must never sit in an old REPEATABLE READ snapshot); transactions are explicit. ``FOUND_ROWS``
makes UPDATE report the rows it matched, not only those it changed, as SQLite does.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import aiomysql  # type: ignore[import-untyped]
import pymysql  # type: ignore[import-untyped]
from pymysql.constants import CLIENT  # type: ignore[import-untyped]

from k8stars.sql.db import Database, Dialect, Params, Row, Tx, utc_datetime, utc_epoch
from k8stars.sql.dsn import MysqlDsn, parse_dsn
from k8stars.sql.migrate import Schema

CONNECT_TIMEOUT = 5.0
CLOSE_TIMEOUT = 5.0  # seconds a closing pool waits for its connections to come back
SCHEMA_LOCK_TIMEOUT = 60  # seconds a replica waits while another one migrates
_RETRYABLE = {1213, 1205}  # ER_LOCK_DEADLOCK, ER_LOCK_WAIT_TIMEOUT


def _interrupted(e: BaseException) -> bool:
    """Whether ``e`` may have stopped a statement half way (a cancelled task, a socket error). aiomysql is then in
    the middle of a reply on that connection: the next read would take the rest of it for a new reply and could wait
    forever, so such a connection is closed, never reused."""
    return not isinstance(e, Exception) or isinstance(e, OSError)


class MysqlDialect(Dialect):
    name = "mysql"
    for_update = " FOR UPDATE"

    def _on_conflict(self, keys: Sequence[str], update: Sequence[str]) -> str:
        return "ON DUPLICATE KEY UPDATE " + ", ".join(f"{c} = VALUES({c})" for c in update)

    def _update_join(self, table: str, rows_sql: str, on: str, sets: str, where: str) -> str:
        return f"UPDATE {table} JOIN {rows_sql} ON {on} SET {sets} WHERE {where}"

    def columns_query(self, table: str) -> tuple[str, Params]:
        return (
            "SELECT column_name FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = ?",
            (table,),
        )

    def ts(self, epoch: float) -> Any:
        return utc_datetime(epoch)

    def epoch(self, value: Any) -> float | None:
        return utc_epoch(value) if isinstance(value, dt.datetime) else None

    def retryable(self, error: Exception) -> bool:
        return isinstance(error, pymysql.err.OperationalError) and bool(error.args) and error.args[0] in _RETRYABLE


DIALECT = MysqlDialect()


def _q(sql: str) -> str:
    # the SQL is ours and holds no '%' or '?' inside literals: a plain swap of placeholders is safe
    return sql.replace("?", "%s")


class _MysqlTx(Tx):
    dialect = DIALECT

    def __init__(self, cur: Any) -> None:
        self.cur = cur

    async def execute(self, sql: str, params: Params = ()) -> int:
        return int(await self.cur.execute(_q(sql), tuple(params)))

    async def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        await self.cur.executemany(_q(sql), [tuple(r) for r in rows])  # one multi-row INSERT

    async def fetch(self, sql: str, params: Params = ()) -> list[Row]:
        await self.cur.execute(_q(sql), tuple(params))
        return [tuple(r) for r in await self.cur.fetchall()]


class MysqlDatabase(Database):
    dialect = DIALECT

    def __init__(self, dsn: MysqlDsn | str, schema: Schema, pool_size: int = 4) -> None:
        """ValueError for a DSN that is not one (the message never shows the password)."""
        parsed = parse_dsn(dsn) if isinstance(dsn, str) else dsn
        super().__init__(schema, str(parsed))
        self.dsn = parsed
        self.pool_size = pool_size
        self._pool: Any = None

    def _args(self) -> dict[str, Any]:
        d = self.dsn
        return {
            "host": d.host,
            "port": d.port,
            "user": d.user,
            "password": d.password,
            "autocommit": True,
            "client_flag": CLIENT.FOUND_ROWS,
            "charset": "utf8",
            "connect_timeout": CONNECT_TIMEOUT,
            "init_command": "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
        }

    async def _connect(self) -> None:
        async with self._session(db=None) as cur:
            await cur.execute(f"CREATE DATABASE IF NOT EXISTS `{self.dsn.database}` DEFAULT CHARACTER SET utf8")
        self._pool = await aiomysql.create_pool(minsize=1, maxsize=self.pool_size, db=self.dsn.database, **self._args())

    @asynccontextmanager
    async def _session(self, db: str | None) -> AsyncIterator[Any]:
        """A connection of its own (outside the pool), for schema work."""
        conn = await aiomysql.connect(db=db, **self._args())
        try:
            async with conn.cursor() as cur:
                await cur.execute("SET SESSION sql_notes = 0")  # no "already exists" warnings on every start
                yield cur
        finally:
            conn.close()  # a named lock it held goes with it

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            pool.close()
            try:
                await asyncio.wait_for(pool.wait_closed(), CLOSE_TIMEOUT)
            except TimeoutError:  # a connection is still out (a statement that will never answer): cut it
                pool.terminate()

    def _require_pool(self) -> Any:
        if self._pool is None:
            raise RuntimeError(f"the {self.schema.store} store {self.where} is not open")
        return self._pool

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[Any]:
        """A pooled connection, closed instead of pooled again when a statement on it may have stopped half way."""
        async with self._require_pool().acquire() as conn:
            try:
                yield conn
            except BaseException as e:
                if _interrupted(e):
                    conn.close()  # the server ends what it was doing, its transaction included
                raise

    # Cursors are aiomysql's buffered ones: execute reads the whole reply, so there is nothing to close after it.
    async def fetch(self, sql: str, params: Params = ()) -> list[Row]:
        async with self._connection() as conn:
            return await _MysqlTx(await conn.cursor()).fetch(sql, params)

    async def execute(self, sql: str, params: Params = ()) -> int:
        async with self._connection() as conn:
            return await _MysqlTx(await conn.cursor()).execute(sql, params)

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Tx]:
        async with self._connection() as conn:
            await conn.begin()
            try:
                yield _MysqlTx(await conn.cursor())
            except Exception as e:
                if not _interrupted(e) and not conn.closed:  # else it is (or will be) closed: the server rolls back
                    await conn.rollback()
                raise
            await conn.commit()

    def transaction(self) -> AbstractAsyncContextManager[Tx]:
        return self._transaction()

    @asynccontextmanager
    async def _migration(self) -> AsyncIterator[Tx]:
        # named locks are server-wide: one per database, at most 64 characters
        lock = f"k8stars.schema.{self.dsn.database}"[:64]
        async with self._session(db=self.dsn.database) as cur:
            await cur.execute("SELECT GET_LOCK(%s, %s)", (lock, SCHEMA_LOCK_TIMEOUT))
            (got,) = await cur.fetchone()
            if got != 1:
                raise RuntimeError(f"another process held the schema lock {lock!r} for {SCHEMA_LOCK_TIMEOUT} s")
            yield _MysqlTx(cur)
            await cur.execute("SELECT RELEASE_LOCK(%s)", (lock,))  # after a failure, closing releases it

    def migration(self) -> AbstractAsyncContextManager[Tx]:
        return self._migration()
