"""Versioned schemas: each store lists its steps in order, and ``t_k8stars_schema`` records, per store, how many of
them its database has had. Opening a database applies the missing ones, under the schema lock, so replicas that
start at once apply each step once.

Step 1 is the schema every store had before versions were recorded. It must be idempotent (``CREATE ... IF NOT
EXISTS``, columns added only when missing): a database made then has its tables but no version row, and step 1
adopts it as it is. Later steps run exactly once each; a new step is appended, never edited. On SQLite a failed step
leaves nothing behind (one transaction); on MySQL each DDL statement commits by itself, so a step there should be
one change, or safe to run again after a partial failure.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from k8stars.sql.db import Database, Tx

log = logging.getLogger("k8stars.sql")

VERSION_TABLE = "t_k8stars_schema"
# one row per store: stores that share a MySQL database (the registry's and the config service's db_tars) each
# keep their own version
_VERSION_DDL = f"""CREATE TABLE IF NOT EXISTS {VERSION_TABLE} (
  store varchar(64) NOT NULL PRIMARY KEY,
  version int NOT NULL
)"""


@dataclass(frozen=True)
class Step:
    """One version of a schema: the statements of each dialect, then ``run`` for what depends on what exists."""

    sqlite: Sequence[str] = ()
    mysql: Sequence[str] = ()
    run: Callable[[Tx], Awaitable[None]] | None = None

    def statements(self, dialect: str) -> Sequence[str]:
        return self.sqlite if dialect == "sqlite" else self.mysql


@dataclass(frozen=True)
class Schema:
    store: str  # its row in t_k8stars_schema, and the name messages give the store
    steps: Sequence[Step]

    @property
    def version(self) -> int:
        return len(self.steps)


async def migrate(db: Database) -> int:
    """Bring ``db`` (connected) to its schema's version; returns the version it had. A step that fails, or a database
    newer than this code, raises (``Database.open`` reports it as DatabaseUnavailable)."""
    schema = db.schema
    async with db.migration() as tx:
        await tx.execute(_VERSION_DDL)
        found = await tx.fetch(f"SELECT version FROM {VERSION_TABLE} WHERE store = ?", (schema.store,))
        have = int(found[0][0]) if found else 0
        if have > schema.version:
            raise RuntimeError(
                f"its {schema.store} schema is at version {have}, newer than this k8stars knows ({schema.version}):"
                " run a k8stars at least as new as the one that wrote it"
            )
        if have == 0 and await tx.columns(_first_table(schema, tx.dialect.name)):
            log.info("%s store %s: tables without a recorded version, adopted as version 1", schema.store, db.where)
        for version in range(have + 1, schema.version + 1):
            await _apply(tx, schema.steps[version - 1])
            await tx.execute(
                tx.dialect.upsert(VERSION_TABLE, ("store", "version"), ("store",), ("version",)),
                (schema.store, version),
            )
        if have < schema.version:
            log.info("%s store %s: schema version %d -> %d", schema.store, db.where, have, schema.version)
    return have


async def _apply(tx: Tx, step: Step) -> None:
    for statement in step.statements(tx.dialect.name):
        await tx.execute(statement)
    if step.run is not None:
        await step.run(tx)


def _first_table(schema: Schema, dialect: str) -> str:
    """The first table step 1 creates: if it is there, the database predates recorded versions."""
    for statement in schema.steps[0].statements(dialect) if schema.steps else ():
        words = statement.split()
        if [w.upper() for w in words[:5]] == ["CREATE", "TABLE", "IF", "NOT", "EXISTS"]:
            return words[5]
    return VERSION_TABLE
