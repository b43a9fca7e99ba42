"""Registry stores: one interface (:class:`Store`), SQL implementations over SQLite (embedded) and MySQL/MariaDB,
and a read-mostly one over the Kubernetes API (pods and TEndpoints)."""

from __future__ import annotations

from pathlib import Path

from k8stars.registry.store.base import Changes, Expiry, GroupTables, Poll, Store
from k8stars.registry.store.sql import SqlStore

__all__ = ["Changes", "Expiry", "GroupTables", "Poll", "SqlStore", "Store", "open_store", "sqlite_path"]

SQLITE_FILE = "registry.db"


def sqlite_path(data_dir: str | Path) -> Path:
    return Path(data_dir) / SQLITE_FILE


def open_store(
    kind: str,
    *,
    data_dir: str | Path | None = None,
    dsn: str | None = None,
    kubeconfig: str | None = None,
    namespace: str | None = None,
) -> Store:
    """An unopened store of ``kind`` (``sqlite``: a file under ``data_dir``; ``mysql``: the database of ``dsn``;
    ``kubernetes``: pods and TEndpoints of ``namespace`` (all when None) through ``kubeconfig``).
    ValueError names what is missing or malformed."""
    if kind == "sqlite":
        from k8stars.registry.store.sqlite import SqliteDatabase

        if data_dir is None:
            raise ValueError("the sqlite store needs a data directory")
        return SqlStore(SqliteDatabase(sqlite_path(data_dir)))
    if kind == "mysql":
        from k8stars.registry.store.mysql import MysqlDatabase, parse_dsn

        if not dsn:
            raise ValueError("--store mysql needs --dsn mysql://user:pass@host:port/db_tars")
        return SqlStore(MysqlDatabase(parse_dsn(dsn)))
    if kind == "kubernetes":
        from k8stars.registry.store.kubernetes import KubernetesStore

        return KubernetesStore(kubeconfig, namespace)
    raise ValueError(f"unknown store {kind!r} (sqlite, mysql or kubernetes)")
