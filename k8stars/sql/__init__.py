"""The SQL layer every store uses: one way to open a database (a file for SQLite, a DSN for MySQL/MariaDB), to
migrate it (versioned schemas, see ``migrate``) and to query it (``?`` placeholders, transactions, dialect details
in one place).

Neutral ground below ``k8stars/registry`` and ``k8stars/services``: it imports neither. The drivers (aiosqlite,
aiomysql) are imported only by the backend a store opens.
"""

from __future__ import annotations

from pathlib import Path

from k8stars.sql.db import Database, DatabaseUnavailable, Dialect, Params, Queries, Row, Tx, in_clause
from k8stars.sql.dsn import MysqlDsn, parse_dsn
from k8stars.sql.migrate import VERSION_TABLE, Schema, Step

__all__ = [
    "KINDS",
    "VERSION_TABLE",
    "Database",
    "DatabaseUnavailable",
    "Dialect",
    "MysqlDsn",
    "Params",
    "Queries",
    "Row",
    "Schema",
    "Step",
    "Tx",
    "database",
    "in_clause",
    "parse_dsn",
]

KINDS = ("sqlite", "mysql")


def database(
    kind: str, schema: Schema, *, path: str | Path | None = None, dsn: str | None = None, pool_size: int = 4
) -> Database:
    """An unopened database of ``schema``: ``sqlite``, the file at ``path``; ``mysql``, the database of ``dsn``
    (``pool_size`` connections at most). ValueError says what is missing or malformed."""
    if kind == "sqlite":
        from k8stars.sql.sqlite import SqliteDatabase

        if path is None:
            raise ValueError(f"the sqlite {schema.store} store needs a file")
        return SqliteDatabase(path, schema)
    if kind == "mysql":
        from k8stars.sql.mysql import MysqlDatabase

        if not dsn:
            raise ValueError("--store mysql needs --dsn mysql://user:pass@host:port/db_tars")
        return MysqlDatabase(dsn, schema, pool_size)
    raise ValueError(f"unknown SQL store {kind!r} (sqlite or mysql)")
