"""The monitoring history's store: per-minute numbers of call statistics and property values, on SQLite (the
default, ``monitor.db``) or MySQL/MariaDB.

The fields are K8SFramework's (StatServer and PropertyServer write them to Elasticsearch; tarsquerystat and
tarsqueryproperty query them): ``f_date`` (``YYYYMMDD``), ``f_tflag`` (``HHMM``), the report's dimensions and its
numbers. They are kept in two tables per kind, so a day of minutes does not repeat the dimensions 1,440 times:

- ``<kind>_series``: one row per series, ``k`` (a 64-bit hash of the dimensions) and the dimensions, with
  ``last_date`` (the newest day it has minutes of: retention deletes series by it);
- ``<kind>_minute``: one row per (day, series, minute, writer): ``f_date``, ``k``, ``f_tflag``, ``source`` and the
  numbers. ``source`` is the writing process: each stat replica writes its own rows and a query sums them, so N
  replicas over one store answer as one. A writer rewrites its row of a minute with the minute's totals so far, so
  a flush that is repeated (a retry after an error) counts nothing twice.

Version 1 kept the dimensions in every minute's row (three times the size); version 2 replaces those tables.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from k8stars.sql import Schema, Step
from k8stars.sql.store import SqlBackedStore

SQLITE_FILE = "monitor.db"
TEXT_LEN = 128  # dimension values are cut to this (as the stat service's labels are)


@dataclass(frozen=True)
class Table:
    """One kind of history: its dimensions (text, except those in ``ints``) and its numbers."""

    name: str  # the tables are <name>_series and <name>_minute
    dims: tuple[str, ...]
    values: tuple[str, ...]
    ints: frozenset[str] = frozenset()
    lookup: str = ""  # the dimension most queries filter on (indexed)

    @property
    def series(self) -> str:
        return f"{self.name}_series"

    @property
    def minute(self) -> str:
        return f"{self.name}_minute"

    @property
    def fields(self) -> tuple[str, ...]:
        """What a query may name: the date fields and the dimensions."""
        return ("f_date", "f_tflag", *self.dims)

    def column(self, field: str) -> str:
        """``field`` qualified by its table in a query's join (m: minutes, s: series)."""
        return f"m.{field}" if field in ("f_date", "f_tflag") else f"s.{field}"


STAT = Table(
    "t_monitor_stat",
    ("master_name", "slave_name", "interface_name", "master_ip", "slave_ip", "slave_port", "return_value",
     "tars_version"),
    ("succ_count", "timeout_count", "exce_count", "total_time"),
    frozenset({"slave_port", "return_value"}),
    "slave_name",
)  # fmt: skip
PROPERTY = Table(
    "t_monitor_property",
    ("master_name", "master_ip", "property_name", "set_name", "set_area", "set_id", "policy"),
    ("value",),
    lookup="master_name",
)


def _ddl(table: Table, dialect: str) -> list[str]:
    mysql = dialect == "mysql"

    def dim(name: str) -> str:
        if name in table.ints:
            return f"{name} {'int' if mysql else 'INTEGER'} NOT NULL DEFAULT 0"
        return f"{name} {f'varchar({TEXT_LEN})' if mysql else 'TEXT'} NOT NULL DEFAULT ''"

    number = ("double" if mysql else "REAL") if table is PROPERTY else ("bigint" if mysql else "INTEGER")
    series = ",\n  ".join([f"k {'bigint' if mysql else 'INTEGER'} NOT NULL PRIMARY KEY", *map(dim, table.dims),
                           "last_date char(8) NOT NULL DEFAULT ''"])  # fmt: skip
    minute = ",\n  ".join(["f_date char(8) NOT NULL", f"k {'bigint' if mysql else 'INTEGER'} NOT NULL",
                           "f_tflag char(4) NOT NULL", "source char(8) NOT NULL",
                           *(f"{v} {number} NOT NULL DEFAULT 0" for v in table.values),
                           "PRIMARY KEY (f_date, k, f_tflag, source)"])  # fmt: skip
    if mysql:  # MySQL has no CREATE INDEX IF NOT EXISTS: the indexes go with the tables
        return [f"CREATE TABLE IF NOT EXISTS {table.series} (\n  {series},\n  KEY lookup ({table.lookup}),\n"
                f"  KEY last_date (last_date)\n) ENGINE=InnoDB DEFAULT CHARSET=utf8",
                f"CREATE TABLE IF NOT EXISTS {table.minute} (\n  {minute}\n) ENGINE=InnoDB DEFAULT CHARSET=utf8",
                f"DROP TABLE IF EXISTS {table.name}"]  # fmt: skip
    return [f"CREATE TABLE IF NOT EXISTS {table.series} (\n  {series}\n)",
            f"CREATE INDEX IF NOT EXISTS {table.series}_lookup ON {table.series} ({table.lookup})",
            f"CREATE INDEX IF NOT EXISTS {table.series}_last_date ON {table.series} (last_date)",
            f"CREATE TABLE IF NOT EXISTS {table.minute} (\n  {minute}\n) WITHOUT ROWID",
            f"DROP TABLE IF EXISTS {table.name}"]  # fmt: skip


def _v1(table: Table, dialect: str) -> list[str]:
    """Version 1's table (the dimensions in every row), as step 1 created it; step 2 drops it."""
    mysql = dialect == "mysql"

    def dim(d: str) -> str:
        if d in table.ints:
            return f"{d} {'int' if mysql else 'INTEGER'} NOT NULL DEFAULT 0"
        return f"{d} {'varchar(128)' if mysql else 'TEXT'} NOT NULL DEFAULT ''"

    number = ("double" if mysql else "REAL") if table is PROPERTY else ("bigint" if mysql else "INTEGER")
    head = ["source char(8) NOT NULL", "f_date char(8) NOT NULL", "f_tflag char(4) NOT NULL", "k char(16) NOT NULL"]
    body = ",\n  ".join([*head, *map(dim, table.dims), *(f"{v} {number} NOT NULL DEFAULT 0" for v in table.values)])
    keys = "UNIQUE (source, f_date, f_tflag, k)"
    if mysql:
        keys += f",\n  KEY lookup (f_date, {table.lookup}, f_tflag)"
        return [f"CREATE TABLE IF NOT EXISTS {table.name} (\n  {body},\n  {keys}\n) ENGINE=InnoDB DEFAULT CHARSET=utf8"]
    index = f"CREATE INDEX IF NOT EXISTS {table.name}_lookup ON {table.name} (f_date, {table.lookup}, f_tflag)"
    return [f"CREATE TABLE IF NOT EXISTS {table.name} (\n  {body},\n  {keys}\n)", index]


def _step(make: Callable[[Table, str], list[str]]) -> Step:
    return Step(
        sqlite=make(STAT, "sqlite") + make(PROPERTY, "sqlite"), mysql=make(STAT, "mysql") + make(PROPERTY, "mysql")
    )


SCHEMA = Schema("monitor", [_step(_v1), _step(_ddl)])


def series_key(dims: Sequence[object]) -> int:
    """``k``: a signed 64-bit hash of the dimensions (a collision would merge two series: 1 in 2^64)."""
    text = "\x1f".join(str(d) for d in dims)
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


Row = tuple[object, ...]


class HistoryStore(SqlBackedStore):
    """Writes of the stat service's recorder and reads of the query services, over one database."""

    schema: ClassVar[Schema] = SCHEMA
    sqlite_file: ClassVar[str] = SQLITE_FILE

    async def write(self, table: Table, series: Sequence[Row], minutes: Sequence[Row]) -> None:
        """In one transaction: ``series`` rows (k, dimensions..., last_date) and ``minutes`` rows (f_date, k,
        f_tflag, source, values...), each inserted or replaced."""
        if not series and not minutes:
            return
        upsert = self.db.dialect.upsert
        s_cols = ("k", *table.dims, "last_date")
        m_cols = ("f_date", "k", "f_tflag", "source", *table.values)
        async with self.db.transaction() as tx:
            if series:
                await tx.executemany(upsert(table.series, s_cols, ("k",), ("last_date",)), series)
            if minutes:
                await tx.executemany(upsert(table.minute, m_cols, m_cols[:4], table.values), minutes)

    async def prune(self, before: str) -> int:
        """Delete the minutes of days before ``before`` (``YYYYMMDD``) and the series seen last then; how many minute
        rows went."""
        gone = 0
        for table in (STAT, PROPERTY):
            gone += await self.db.execute(f"DELETE FROM {table.minute} WHERE f_date < ?", (before,))
            await self.db.execute(f"DELETE FROM {table.series} WHERE last_date < ?", (before,))
        return gone
