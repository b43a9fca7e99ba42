"""The shape every SQL-backed service store shares: a kind (``sqlite`` or ``mysql``), one database of the store's
schema, opened (connected and migrated) and closed with the store."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from k8stars.paths import data_home
from k8stars.sql import Database, Schema, database


class SqlBackedStore:
    schema: ClassVar[Schema]
    sqlite_file: ClassVar[str]  # the file under the data directory
    pool_size: ClassVar[int] = 4  # MySQL connections at most

    def __init__(self, kind: str, *, data_dir: str | Path | None = None, dsn: str | None = None) -> None:
        """``sqlite``: ``<data_dir>/<sqlite_file>`` (data_dir: k8stars.paths.data_home() by default); ``mysql``: the
        database of ``dsn``. ValueError names what is wrong."""
        path = Path(data_dir or data_home()) / self.sqlite_file
        self.db: Database = database(kind, self.schema, path=path, dsn=dsn, pool_size=self.pool_size)
        self.kind, self.where = kind, self.db.where

    async def open(self) -> None:
        """DatabaseUnavailable names the database and why it cannot be opened or migrated."""
        await self.db.open()

    async def close(self) -> None:
        await self.db.close()
