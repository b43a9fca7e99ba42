"""What every store runs its SQL through: a database (autocommit statements, transactions, the schema lock) and the
dialect details that differ between SQLite and MySQL, in one place.

SQL is written once, with ``?`` placeholders; each backend translates what differs (placeholders, upserts, row
locks, timestamps, introspection, which errors are worth a retry).
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from k8stars.sql.migrate import Schema

Row = tuple[Any, ...]
Params = Sequence[Any]


class DatabaseUnavailable(RuntimeError):
    """The database cannot be opened or migrated; the message names the store, where it is, and why."""


class Dialect(ABC):
    """The SQL that differs between the backends."""

    name: str = ""
    for_update: str = ""  # the row-lock suffix of a SELECT inside a transaction

    def upsert(
        self, table: str, columns: Sequence[str], keys: Sequence[str], update: Sequence[str], rows: int = 1
    ) -> str:
        """``INSERT`` of ``rows`` rows of ``columns`` that updates the ``update`` columns where the unique ``keys``
        already exist."""
        marks = ", ".join(["(" + ", ".join("?" for _ in columns) + ")"] * rows)
        return f"INSERT INTO {table} ({', '.join(columns)}) VALUES {marks} {self._on_conflict(keys, update)}"

    @abstractmethod
    def _on_conflict(self, keys: Sequence[str], update: Sequence[str]) -> str: ...

    def update_from(
        self, table: str, keys: Sequence[str], values: Sequence[str], sets: str, where: str, rows: int
    ) -> str:
        """``UPDATE`` of ``table`` from ``rows`` rows of parameters (each ``keys`` then ``values``): one statement
        for many rows with values of their own. The parameter rows are ``v``: ``sets`` and ``where`` name
        ``v.<column>`` and the table's columns unqualified (``sets="n = v.n", where="n < v.n"``)."""
        first = ", ".join(f"? AS {c}" for c in (*keys, *values))
        more = " UNION ALL SELECT " + ", ".join("?" for _ in (*keys, *values))
        rows_sql = f"(SELECT {first}{more * (rows - 1)}) AS v"
        on = " AND ".join(f"{table}.{k} = v.{k}" for k in keys)
        return self._update_join(table, rows_sql, on, sets, where)

    @abstractmethod
    def _update_join(self, table: str, rows_sql: str, on: str, sets: str, where: str) -> str: ...

    @abstractmethod
    def columns_query(self, table: str) -> tuple[str, Params]:
        """A query whose rows' first value is a column name of ``table`` (of the connection's database)."""

    @abstractmethod
    def ts(self, epoch: float) -> Any:
        """A timestamp parameter (UTC, see utc_datetime)."""

    @abstractmethod
    def epoch(self, value: Any) -> float | None:
        """A timestamp column value back to epoch seconds."""

    def retryable(self, error: Exception) -> bool:
        """The statement failed for contention only (a deadlock victim, a lock timeout): running it again works."""
        return False


class Queries(ABC):
    """Statements with ``?`` placeholders, run by a database (each alone, autocommit) or inside a transaction."""

    dialect: Dialect

    @abstractmethod
    async def fetch(self, sql: str, params: Params = ()) -> list[Row]: ...

    @abstractmethod
    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run a statement; the number of rows it matched (not only those it changed)."""

    @abstractmethod
    async def executemany(self, sql: str, rows: Sequence[Params]) -> None: ...

    async def columns(self, table: str) -> set[str]:
        """The column names of ``table``, lower case (empty when there is no such table)."""
        return {str(r[0]).lower() for r in await self.fetch(*self.dialect.columns_query(table))}


class Tx(Queries):
    """Statements of one transaction (committed when its context exits cleanly, rolled back otherwise)."""


class Database(Queries):
    """One store's database. ``open`` connects and migrates it to the store's schema (see k8stars.sql.migrate);
    ``fetch``, ``execute`` and ``executemany`` run alone, each on a fresh snapshot."""

    def __init__(self, schema: Schema, where: str) -> None:
        self.schema = schema
        self.where = where  # what messages name: the file, or the DSN without its password

    async def open(self) -> None:
        """Connect and migrate; DatabaseUnavailable (nothing left open) when either fails."""
        from k8stars.sql.migrate import migrate

        try:
            await self._connect()
            await migrate(self)
        except Exception as e:  # driver errors (pymysql, sqlite3, OSError) share no useful base
            await self.close()
            raise DatabaseUnavailable(f"{self.schema.store} store {self.where}: {e}") from e

    @abstractmethod
    async def _connect(self) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    def transaction(self) -> AbstractAsyncContextManager[Tx]: ...

    @abstractmethod
    def migration(self) -> AbstractAsyncContextManager[Tx]:
        """Statements under the schema lock: one process at a time, whatever else is connected. On SQLite one
        transaction (DDL included); on MySQL, where DDL commits by itself, a named lock held while they run."""

    async def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        async with self.transaction() as tx:  # one commit for the batch
            await tx.executemany(sql, rows)


def utc_datetime(epoch: float) -> dt.datetime:
    """Timestamps are written in UTC (naive, as the DATETIME columns hold them): replicas whose time zones differ
    must still agree on how old a heartbeat is."""
    return dt.datetime.fromtimestamp(epoch, dt.UTC).replace(tzinfo=None)


def utc_epoch(value: dt.datetime) -> float:
    return value.replace(tzinfo=dt.UTC).timestamp()


def in_clause(column_groups: Sequence[str], count: int) -> str:
    """``(a=? AND b=?) OR (...)`` for ``count`` tuples: row-value IN lists are not portable to SQLite."""
    one = "(" + " AND ".join(f"{c} = ?" for c in column_groups) + ")"
    return " OR ".join([one] * count)
