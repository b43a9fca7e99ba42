"""The shared store's database: MySQL or MariaDB holding the classic ``db_tars`` tables, through a small pool.

Every pooled connection is in autocommit mode, so each read is a fresh snapshot (a replica polling for changes must
never sit in an old REPEATABLE READ snapshot); transactions are explicit. ``FOUND_ROWS`` makes UPDATE report the
rows it matched, not only those it changed, as SQLite does.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import aiomysql  # type: ignore[import-untyped]
import pymysql  # type: ignore[import-untyped]
from pymysql.constants import CLIENT  # type: ignore[import-untyped]

from k8stars.registry.store.db import Database, Params, Row, Tx, utc_datetime, utc_epoch
from k8stars.registry.store.schema import MYSQL_ADDED_COLUMNS, MYSQL_TABLES
from k8stars.sql import MysqlDsn as MysqlDsn  # re-exported: older imports name this module
from k8stars.sql import parse_dsn as parse_dsn

POOL_SIZE = 8
_RETRYABLE = {1213, 1205}  # ER_LOCK_DEADLOCK, ER_LOCK_WAIT_TIMEOUT
CONNECT_TIMEOUT = 5.0


def _q(sql: str) -> str:
    # the SQL is ours and holds no '%' or '?' inside literals: a plain swap of placeholders is safe
    return sql.replace("?", "%s")


class _MysqlTx(Tx):
    def __init__(self, cur: Any) -> None:
        self.cur = cur

    async def execute(self, sql: str, params: Params = ()) -> int:
        return int(await self.cur.execute(_q(sql), tuple(params)))

    async def fetch(self, sql: str, params: Params = ()) -> list[Row]:
        await self.cur.execute(_q(sql), tuple(params))
        return list(await self.cur.fetchall())


class MysqlDatabase(Database):
    name = "mysql"
    for_update = " FOR UPDATE"

    def __init__(self, dsn: MysqlDsn | str) -> None:
        self.dsn = parse_dsn(dsn) if isinstance(dsn, str) else dsn
        self._pool: Any = None

    async def open(self) -> None:
        await self._create_database()
        self._pool = await aiomysql.create_pool(minsize=1, maxsize=POOL_SIZE, db=self.dsn.database, **self._args())

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

    async def _create_database(self) -> None:
        await self._script([f"CREATE DATABASE IF NOT EXISTS `{self.dsn.database}` DEFAULT CHARACTER SET utf8"], db=None)

    async def _script(self, statements: Sequence[str], db: str | None) -> None:
        conn = await aiomysql.connect(db=db, **self._args())
        try:
            async with conn.cursor() as cur:
                # "already exists" notes would otherwise come back as Python warnings on every start
                await cur.execute("SET SESSION sql_notes = 0")
                for stmt in statements:
                    await cur.execute(stmt)
        finally:
            conn.close()

    async def execute_script(self, statements: Sequence[str]) -> None:
        await self._script(statements, db=self.dsn.database)

    async def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            await self._pool.wait_closed()
            self._pool = None

    def _require_pool(self) -> Any:
        if self._pool is None:
            raise RuntimeError("the MySQL store is not open")
        return self._pool

    async def fetch(self, sql: str, params: Params = ()) -> list[Row]:
        async with self._require_pool().acquire() as conn, conn.cursor() as cur:
            return await _MysqlTx(cur).fetch(sql, params)

    async def execute(self, sql: str, params: Params = ()) -> int:
        async with self._require_pool().acquire() as conn, conn.cursor() as cur:
            return await _MysqlTx(cur).execute(sql, params)

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Tx]:
        async with self._require_pool().acquire() as conn:
            await conn.begin()
            try:
                async with conn.cursor() as cur:
                    yield _MysqlTx(cur)
            except BaseException:
                await conn.rollback()
                raise
            await conn.commit()

    def transaction(self) -> AbstractAsyncContextManager[Tx]:
        return self._transaction()

    def retryable(self, error: Exception) -> bool:
        return isinstance(error, pymysql.err.OperationalError) and bool(error.args) and error.args[0] in _RETRYABLE

    def upsert(
        self, table: str, columns: Sequence[str], keys: Sequence[str], update: Sequence[str], rows: int = 1
    ) -> str:
        marks = ", ".join(["(" + ", ".join("?" for _ in columns) + ")"] * rows)
        sets = ", ".join(f"{c} = VALUES({c})" for c in update)
        return f"INSERT INTO {table} ({', '.join(columns)}) VALUES {marks} ON DUPLICATE KEY UPDATE {sets}"

    def ddl(self) -> list[str]:
        return list(MYSQL_TABLES)

    async def columns(self, table: str) -> set[str]:
        rows = await self.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ?",
            (self.dsn.database, table),
        )
        return {str(r[0]).lower() for r in rows}

    def add_column(self, table: str, column: str) -> list[str]:
        return list(MYSQL_ADDED_COLUMNS[column])

    def ts(self, epoch: float) -> Any:
        return utc_datetime(epoch)

    def epoch(self, value: Any) -> float | None:
        if isinstance(value, dt.datetime):
            return utc_epoch(value)
        return None
