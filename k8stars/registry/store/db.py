"""The little a SQL store needs from a database: autocommit reads and writes, transactions, and dialect details.

SQL is written once, with ``?`` placeholders; each backend translates what differs (placeholders, upserts, row
locks, timestamps, introspection).
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

Row = tuple[Any, ...]
Params = Sequence[Any]


class Tx(ABC):
    """Statements of one transaction (committed when its context exits cleanly, rolled back otherwise)."""

    @abstractmethod
    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run a statement; the number of rows it matched."""

    @abstractmethod
    async def fetch(self, sql: str, params: Params = ()) -> list[Row]: ...


class Database(ABC):
    """One database behind a store. ``fetch`` and ``execute`` run alone (autocommit, a fresh snapshot each)."""

    name: str = ""
    for_update: str = ""  # the row-lock suffix of a SELECT inside a transaction

    @abstractmethod
    async def open(self) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def fetch(self, sql: str, params: Params = ()) -> list[Row]: ...

    @abstractmethod
    async def execute(self, sql: str, params: Params = ()) -> int: ...

    @abstractmethod
    def transaction(self) -> AbstractAsyncContextManager[Tx]: ...

    def retryable(self, error: Exception) -> bool:
        """The statement failed for contention only (a deadlock victim, a lock timeout): running it again works."""
        return False

    async def execute_script(self, statements: Sequence[str]) -> None:
        """Run schema statements one after the other (outside any transaction)."""
        for stmt in statements:
            await self.execute(stmt)

    @abstractmethod
    def upsert(
        self, table: str, columns: Sequence[str], keys: Sequence[str], update: Sequence[str], rows: int = 1
    ) -> str:
        """``INSERT`` of ``rows`` rows of ``columns`` that updates the ``update`` columns where the unique ``keys``
        already exist."""

    @abstractmethod
    def ddl(self) -> list[str]:
        """Statements creating every missing table and index (idempotent)."""

    def indexes(self) -> list[str]:
        """Statements creating indexes once every column exists (idempotent)."""
        return []

    @abstractmethod
    async def columns(self, table: str) -> set[str]: ...

    @abstractmethod
    def add_column(self, table: str, column: str) -> list[str]:
        """Statements adding one of the registry's own columns to an existing classic table."""

    @abstractmethod
    def ts(self, epoch: float) -> Any:
        """A timestamp parameter (UTC, see utc_datetime)."""

    @abstractmethod
    def epoch(self, value: Any) -> float | None:
        """A timestamp column value back to epoch seconds."""


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
