"""The monitoring history's store: per-minute rows of call statistics and property values, on SQLite (the default,
``monitor.db``) or MySQL/MariaDB.

The columns are K8SFramework's (StatServer and PropertyServer write them to Elasticsearch; tarsquerystat and
tarsqueryproperty query them): ``f_date`` (``YYYYMMDD``), ``f_tflag`` (``HHMM``), the report's dimensions and its
numbers. Two of ours: ``source``, the writing process (each stat replica writes its own rows; a query sums them, so N
replicas over one store answer as one), and ``k``, a short hash of the dimensions that keeps the unique key small.
One row per (source, minute, series): a writer rewrites its rows of a minute with the minute's totals so far, so a
flush that is repeated (a retry after an error) counts nothing twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from k8stars.sql import Schema, Step
from k8stars.sql.store import SqlBackedStore

SQLITE_FILE = "monitor.db"
STAT_TABLE, PROPERTY_TABLE = "t_monitor_stat", "t_monitor_property"


@dataclass(frozen=True)
class Table:
    """One history table: its dimensions (text, except those in ``ints``) and its numbers."""

    name: str
    dims: tuple[str, ...]
    values: tuple[str, ...]
    ints: frozenset[str] = frozenset()
    lookup: str = ""  # the dimension most queries filter on, indexed after f_date

    @property
    def fields(self) -> tuple[str, ...]:
        """What a query may name: the date fields and the dimensions."""
        return ("f_date", "f_tflag", *self.dims)

    @property
    def columns(self) -> tuple[str, ...]:
        return ("source", "f_date", "f_tflag", "k", *self.dims, *self.values)


STAT = Table(
    STAT_TABLE,
    ("master_name", "slave_name", "interface_name", "master_ip", "slave_ip", "slave_port", "return_value",
     "tars_version"),
    ("succ_count", "timeout_count", "exce_count", "total_time"),
    frozenset({"slave_port", "return_value"}),
    "slave_name",
)  # fmt: skip
PROPERTY = Table(
    PROPERTY_TABLE,
    ("master_name", "master_ip", "property_name", "set_name", "set_area", "set_id", "policy"),
    ("value",),
    lookup="master_name",
)
TEXT_LEN = 128  # dimension values are cut to this (as the stat service's labels are)


def _ddl(table: Table, dialect: str) -> list[str]:
    def col(name: str) -> str:
        if name in table.ints:
            return f"{name} {'INTEGER' if dialect == 'sqlite' else 'int'} NOT NULL DEFAULT 0"
        if dialect == "sqlite":
            return f"{name} TEXT NOT NULL DEFAULT ''"
        return f"{name} varchar({TEXT_LEN}) NOT NULL DEFAULT ''"

    number = "REAL" if table is PROPERTY else "INTEGER"
    if dialect == "mysql":
        number = "double" if table is PROPERTY else "bigint"
    head = ("source char(8) NOT NULL", "f_date char(8) NOT NULL", "f_tflag char(4) NOT NULL", "k char(16) NOT NULL")
    body = ",\n  ".join([*head, *(col(d) for d in table.dims), *(f"{v} {number} NOT NULL DEFAULT 0"
                                                                  for v in table.values)])  # fmt: skip
    keys = "UNIQUE (source, f_date, f_tflag, k)"
    if dialect == "mysql":  # MySQL has no CREATE INDEX IF NOT EXISTS: its index goes with the table
        keys += f",\n  KEY lookup (f_date, {table.lookup}, f_tflag)"
        return [f"CREATE TABLE IF NOT EXISTS {table.name} (\n  {body},\n  {keys}\n) ENGINE=InnoDB DEFAULT CHARSET=utf8"]
    index = f"CREATE INDEX IF NOT EXISTS {table.name}_lookup ON {table.name} (f_date, {table.lookup}, f_tflag)"
    return [f"CREATE TABLE IF NOT EXISTS {table.name} (\n  {body},\n  {keys}\n)", index]


SCHEMA = Schema(
    "monitor",
    [Step(sqlite=_ddl(STAT, "sqlite") + _ddl(PROPERTY, "sqlite"), mysql=_ddl(STAT, "mysql") + _ddl(PROPERTY, "mysql"))],
)


def series_key(dims: Sequence[object]) -> str:
    """``k``: 16 hex digits of the dimensions (a collision would merge two series of one minute: 1 in 2^64)."""
    text = "\x1f".join(str(d) for d in dims)
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


Row = tuple[object, ...]


class HistoryStore(SqlBackedStore):
    """Writes of the stat service's recorder and reads of the query services, over one database."""

    schema: ClassVar[Schema] = SCHEMA
    sqlite_file: ClassVar[str] = SQLITE_FILE

    async def write(self, table: Table, rows: Sequence[Row]) -> None:
        """Insert or replace ``rows`` (values in ``table.columns`` order) in one transaction."""
        if not rows:
            return
        cols = table.columns
        sql = self.db.dialect.upsert(table.name, cols, ("source", "f_date", "f_tflag", "k"), cols[4:])
        await self.db.executemany(sql, rows)

    async def prune(self, before: str) -> int:
        """Delete the rows of days before ``before`` (``YYYYMMDD``); how many went."""
        gone = 0
        for table in (STAT, PROPERTY):
            gone += await self.db.execute(f"DELETE FROM {table.name} WHERE f_date < ?", (before,))
        return gone
