"""Versioned schemas on SQLite and on a real MariaDB: adopting a database made before versions were recorded,
a new step applied once, replicas opening at once, a newer database refused, a failed step losing nothing."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from pathlib import Path

import pytest

from k8stars.registry.store.schema import SCHEMA as REGISTRY_SCHEMA
from k8stars.services.config.sqlstore import SCHEMA as CONFIG_SCHEMA
from k8stars.services.config.sqlstore import SqlConfigStore
from k8stars.services.notify.sqlstore import SCHEMA as NOTIFY_SCHEMA
from k8stars.services.notify.sqlstore import SqlNotifyStore
from k8stars.sql import VERSION_TABLE, Database, DatabaseUnavailable, Schema, Step, database, parse_dsn
from k8stars.testing.mariadb import SqlSpec, sql_spec

ITEMS = "CREATE TABLE IF NOT EXISTS t_items (id int NOT NULL PRIMARY KEY, name varchar(32) NOT NULL DEFAULT '')"
V1 = Schema("items", [Step(sqlite=[ITEMS], mysql=[ITEMS])])
# step 2 is not idempotent: run twice it would fail (the column exists) or leave two rows
STEP2 = [
    "ALTER TABLE t_items ADD COLUMN size int NOT NULL DEFAULT 0",
    "INSERT INTO t_items (id, name) VALUES (2, 'v2')",
]
V2 = Schema("items", [*V1.steps, Step(sqlite=STEP2, mysql=STEP2)])


@pytest.fixture(params=["sqlite", "mysql"])
def spec(request: pytest.FixtureRequest, tmp_path: Path) -> SqlSpec:
    return sql_spec(str(request.param), request, tmp_path)


def db_of(spec: SqlSpec, schema: Schema) -> Database:
    return database(spec.kind, schema, path=spec.data_dir / "items.db", dsn=spec.dsn)


async def versions(db: Database) -> dict[str, int]:
    return {str(r[0]): int(r[1]) for r in await db.fetch(f"SELECT store, version FROM {VERSION_TABLE}")}


def run_statements(spec: SqlSpec, statements: list[str], file: Path) -> None:
    """As the code before versioned schemas did: plain statements, no version row."""
    if spec.kind == "sqlite":
        file.parent.mkdir(parents=True, exist_ok=True)
        with sqlite3.connect(file) as conn:
            for stmt in statements:
                conn.execute(stmt)
        conn.close()
        return
    import pymysql  # type: ignore[import-untyped]

    dsn = parse_dsn(spec.dsn or "")
    conn = pymysql.connect(host=dsn.host, port=dsn.port, user=dsn.user, password=dsn.password, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE {dsn.database}")
            cur.execute(f"USE {dsn.database}")
            for stmt in statements:
                cur.execute(stmt)
    finally:
        conn.close()


async def test_an_unversioned_database_is_adopted_as_version_1(spec: SqlSpec) -> None:
    """The notify table with a row in it, made as the notify service made it before versions: it opens, keeps the
    row, and is recorded as version 1."""
    old = list(NOTIFY_SCHEMA.steps[0].statements(spec.kind))
    row = "INSERT INTO t_server_notifys (application, server_name, node_name, command, result) VALUES ('A', 'S', 'n', '[normal]', 'old')"  # noqa: E501
    run_statements(spec, [*old, row], spec.data_dir / "notify.db")
    store = SqlNotifyStore(spec.kind, data_dir=spec.data_dir, dsn=spec.dsn)
    await store.open()
    try:
        assert [r.message for r in await store.recent("A")] == ["old"]
        assert await versions(store.db) == {"notify": 1}
    finally:
        await store.close()


async def test_a_config_database_of_tarsweb_is_adopted(spec: SqlSpec) -> None:
    """A config file TarsWeb wrote, before this k8stars ever opened the database."""
    old = list(CONFIG_SCHEMA.steps[0].statements(spec.kind))
    row = "INSERT INTO t_config_files (server_name, filename, config, level) VALUES ('App', 'a.conf', '<a>', 1)"
    run_statements(spec, [*old, row], spec.data_dir / "config.db")
    store = SqlConfigStore(spec.kind, data_dir=spec.data_dir, dsn=spec.dsn)
    await store.open()
    try:
        assert [(f.filename, f.config) for f in await store.files("App")] == [("a.conf", "<a>")]
        assert await versions(store.db) == {"config": 1}
    finally:
        await store.close()


async def test_a_new_step_is_applied_once(spec: SqlSpec) -> None:
    db = db_of(spec, V1)
    await db.open()
    await db.execute("INSERT INTO t_items (id, name) VALUES (1, 'v1')")
    await db.close()
    for _ in range(2):  # the second open finds version 2 and runs nothing
        db = db_of(spec, V2)
        await db.open()
        try:
            assert await db.fetch("SELECT id, name, size FROM t_items ORDER BY id") == [(1, "v1", 0), (2, "v2", 0)]
            assert await versions(db) == {"items": 2}
        finally:
            await db.close()


async def test_replicas_opening_at_once_apply_each_step_once(spec: SqlSpec) -> None:
    """On MySQL the schema lock, on SQLite the write lock, make the others wait and then find the steps done."""
    dbs = [db_of(spec, V2) for _ in range(6)]
    try:
        assert await asyncio.gather(*(db.open() for db in dbs), return_exceptions=True) == [None] * len(dbs)
        assert await dbs[0].fetch("SELECT id FROM t_items") == [(2,)]
        assert await versions(dbs[-1]) == {"items": 2}
    finally:
        for db in dbs:
            await db.close()
    # and the registry's whole db_tars, four replicas at once on a fresh database
    registries = [
        database(spec.kind, REGISTRY_SCHEMA, path=spec.data_dir / "registry.db", dsn=spec.dsn) for _ in range(4)
    ]
    try:
        assert await asyncio.gather(*(db.open() for db in registries), return_exceptions=True) == [None] * 4
        assert (await versions(registries[0]))["registry"] == 1
        assert "last_heartbeat" in await registries[1].columns("t_server_conf")
    finally:
        for db in registries:
            await db.close()


async def test_a_newer_database_is_refused(spec: SqlSpec) -> None:
    db = db_of(spec, V2)
    await db.open()
    await db.close()
    older = db_of(spec, V1)
    with pytest.raises(DatabaseUnavailable, match=r"items store .*: its items schema is at version 2, newer than"):
        await older.open()
    await older.close()  # nothing was left open: closing again is harmless


async def test_a_failing_step_loses_nothing(spec: SqlSpec) -> None:
    db = db_of(spec, V1)
    await db.open()
    await db.execute("INSERT INTO t_items (id, name) VALUES (1, 'kept')")
    await db.close()
    broken = db_of(spec, Schema("items", [*V1.steps, Step(sqlite=["ALTER TABLE t_nothing ADD x int"],
                                                          mysql=["ALTER TABLE t_nothing ADD x int"])]))  # fmt: skip
    with pytest.raises(DatabaseUnavailable, match="items store"):
        await broken.open()
    db = db_of(spec, V1)
    await db.open()
    try:
        assert await db.fetch("SELECT id, name FROM t_items") == [(1, "kept")]
        assert await versions(db) == {"items": 1}
    finally:
        await db.close()


async def test_queries_mean_the_same_on_both(spec: SqlSpec) -> None:
    """Upserts, matched-row counts, batches and rollbacks, written once with ``?`` placeholders."""
    db = db_of(spec, V1)
    await db.open()
    try:
        upsert = db.dialect.upsert("t_items", ("id", "name"), ("id",), ("name",), rows=2)
        await db.execute(upsert, (1, "a", 2, "b"))
        await db.execute(upsert, (2, "B", 3, "c"))
        assert await db.fetch("SELECT id, name FROM t_items ORDER BY id") == [(1, "a"), (2, "B"), (3, "c")]
        assert await db.execute("UPDATE t_items SET name = ? WHERE id = ?", ("a", 1)) == 1  # matched, not changed
        await db.executemany("INSERT INTO t_items (id, name) VALUES (?, ?)", [(4, "d"), (5, "e")])
        with pytest.raises(ZeroDivisionError):
            async with db.transaction() as tx:
                await tx.execute("DELETE FROM t_items")
                assert await tx.fetch("SELECT COUNT(*) FROM t_items") == [(0,)]
                raise ZeroDivisionError
        assert await db.fetch("SELECT COUNT(*) FROM t_items") == [(5,)]
        assert await db.columns("t_items") == {"id", "name"}
    finally:
        await db.close()


def test_bad_options_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="bad DSN 'postgres://root:\\*\\*\\*@h/db'") as err:
        database("mysql", V1, dsn="postgres://root:secret@h/db")
    assert "secret" not in str(err.value)
    with pytest.raises(ValueError, match="database name"):
        database("mysql", V1, dsn="mysql://root@h/db-x")
    with pytest.raises(ValueError, match="--store mysql needs --dsn"):
        database("mysql", V1)
    with pytest.raises(ValueError, match="unknown SQL store 'etcd' \\(sqlite or mysql\\)"):
        database("etcd", V1, path=tmp_path / "x.db")


async def test_an_unreachable_or_unusable_database_is_a_clear_error(tmp_path: Path) -> None:
    from k8stars.testing.procs import free_port

    db = database("mysql", V1, dsn=f"mysql://root:secret@127.0.0.1:{free_port()}/db_tars")
    with pytest.raises(DatabaseUnavailable, match=r"^items store mysql://root@127.0.0.1:\d+/db_tars: ") as err:
        await db.open()
    assert "secret" not in str(err.value)
    (tmp_path / "file").write_text("")
    db = database("sqlite", V1, path=tmp_path / "file" / "items.db")  # under a file
    with pytest.raises(DatabaseUnavailable, match=f"^items store {re.escape(str(tmp_path))}/file/items.db: "):
        await db.open()
    with pytest.raises(RuntimeError, match=r"items store .* is not open"):
        await db.fetch("SELECT 1")
