"""Registry stores: one interface (:class:`Store`), one SQL implementation over SQLite (embedded) or MySQL/MariaDB
(through k8stars.sql), and a read-mostly one over the Kubernetes API (pods and TEndpoints)."""

from __future__ import annotations

from pathlib import Path

from k8stars.registry.store.base import Changes, Expiry, GroupTables, Poll, Store
from k8stars.registry.store.schema import SCHEMA
from k8stars.registry.store.sql import SqlStore
from k8stars.sql import KINDS, database

__all__ = ["Changes", "Expiry", "GroupTables", "Poll", "SqlStore", "Store", "open_store", "sqlite_path"]

SQLITE_FILE = "registry.db"
POOL_SIZE = 8  # MySQL connections of one replica


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
    if kind in KINDS:
        if kind == "sqlite" and data_dir is None:
            raise ValueError("the sqlite store needs a data directory")
        path = sqlite_path(data_dir) if data_dir is not None else None
        return SqlStore(database(kind, SCHEMA, path=path, dsn=dsn, pool_size=POOL_SIZE))
    if kind == "kubernetes":
        from k8stars.registry.store.kubernetes import KubernetesStore

        return KubernetesStore(kubeconfig, namespace)
    raise ValueError(f"unknown store {kind!r} (sqlite, mysql or kubernetes)")
