"""The config service's SQL store: TarsFramework's classic ``db_tars`` config tables, on SQLite or MySQL/MariaDB.

Tables, with the columns and meanings TarsFramework (and TarsWeb) give them, so an existing ``db_tars`` works as it is:

- ``t_config_files``: one file of one owner. ``level`` 1 = app level (``server_name`` = ``App``), 2 = server level
  (``server_name`` = ``App.Server``), 3 = node level (``App.Server`` plus the node's IP in ``host``); ``set_name``,
  ``set_area``, ``set_group`` are empty unless the file belongs to a TARS set; ``config`` is the content.
- ``t_config_references``: ``config_id`` (a server- or node-level file) references ``reference_id`` (an app-level
  file), whose content is served before the file's own.
- ``t_config_history_files``: the content of every ``put`` (``configid``, ``reason``, ``content``), as TarsWeb keeps
  it; the service never reads it.

Every lookup reads the database (the servant caches answers for half a second), so a change made by any writer —
``k8stars config put``, TarsWeb, plain SQL — is served within a second without any change log.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from k8stars.sql import Queries, Schema, Step
from k8stars.sql.store import SqlBackedStore
from k8stars.sql.tables import CONFIG_FILES_MYSQL, CONFIG_FILES_SQLITE

LEVEL_APP, LEVEL_SERVER, LEVEL_NODE = 1, 2, 3  # TarsFramework's eLevelApp, eLevelAllServer, eLevelIpServer
SQLITE_FILE = "config.db"
POOL_SIZE = 4

SetDivision = tuple[str, str, str]  # (set_name, set_area, set_group); all empty: no set
NO_SET: SetDivision = ("", "", "")

_MYSQL_TABLES = [
    CONFIG_FILES_MYSQL,
    """CREATE TABLE IF NOT EXISTS t_config_references (
  id int(11) NOT NULL AUTO_INCREMENT,
  config_id int(11) DEFAULT NULL,
  reference_id int(11) DEFAULT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY config_id (config_id, reference_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8""",
    """CREATE TABLE IF NOT EXISTS t_config_history_files (
  id int(11) NOT NULL AUTO_INCREMENT,
  configid int(11) DEFAULT NULL,
  reason varchar(128) DEFAULT '',
  reason_select varchar(20) NOT NULL DEFAULT '',
  content longtext,
  posttime datetime DEFAULT NULL,
  lastuser varchar(50) DEFAULT NULL,
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8""",
]

# the same tables for SQLite (the registry's embedded store declares t_config_files identically)
_SQLITE_TABLES = [
    CONFIG_FILES_SQLITE,
    """CREATE TABLE IF NOT EXISTS t_config_references (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  config_id INTEGER DEFAULT NULL,
  reference_id INTEGER DEFAULT NULL,
  UNIQUE (config_id, reference_id)
)""",
    """CREATE TABLE IF NOT EXISTS t_config_history_files (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  configid INTEGER DEFAULT NULL,
  reason TEXT DEFAULT '',
  reason_select TEXT NOT NULL DEFAULT '',
  content TEXT,
  posttime TEXT DEFAULT NULL,
  lastuser TEXT DEFAULT NULL
)""",
]

# version 1: the tables as the service created them before versions were recorded
SCHEMA = Schema("config", [Step(sqlite=_SQLITE_TABLES, mysql=_MYSQL_TABLES)])

_FILE_COLUMNS = "id, server_name, filename, host, level, set_name, set_area, set_group, config, posttime, lastuser"


@dataclass(frozen=True, slots=True)
class FileRow:
    """One row of ``t_config_files``."""

    id: int
    server_name: str
    filename: str
    host: str
    level: int
    set_division: SetDivision
    config: str
    posttime: str = ""
    lastuser: str = ""

    @property
    def set_text(self) -> str:
        return ".".join(self.set_division) if any(self.set_division) else ""


def _file_row(r: Sequence[Any]) -> FileRow:
    return FileRow(int(r[0]), str(r[1] or ""), str(r[2] or ""), str(r[3] or ""), int(r[4] or 0),
                   (str(r[5] or ""), str(r[6] or ""), str(r[7] or "")), str(r[8] or ""), str(r[9] or ""),
                   str(r[10] or ""))  # fmt: skip


def parse_set_division(text: str) -> SetDivision:
    """``name.area.group`` (ConfigInfo.setdivision); "" = no set. ValueError for anything else."""
    if not text.strip():
        return NO_SET
    parts = text.strip().split(".")
    if len(parts) != 3 or not all(parts):
        raise ValueError(f"bad setdivision {text!r}: expected name.area.group")
    return (parts[0], parts[1], parts[2])


class SqlConfigStore(SqlBackedStore):
    """Reads for the ConfigF servant and writes for ``k8stars config put/rm``, over one database."""

    schema = SCHEMA
    sqlite_file = SQLITE_FILE
    pool_size = POOL_SIZE

    # -- what the servant reads -------------------------------------------------------------------------------
    async def file(self, owner: str, filename: str, level: int, host: str = "", sd: SetDivision = NO_SET,
                   tx: Queries | None = None) -> FileRow | None:  # fmt: skip
        """The one row of a file at a level (``host`` for the node level only), or None."""
        rows = await (tx or self.db).fetch(
            f"SELECT {_FILE_COLUMNS} FROM t_config_files WHERE server_name = ? AND filename = ? AND level = ? "
            "AND host = ? AND set_name = ? AND set_area = ? AND set_group = ?",
            (owner, filename, level, host if level == LEVEL_NODE else "", *sd),
        )
        return _file_row(rows[0]) if rows else None

    async def by_id(self, config_id: int) -> FileRow | None:
        rows = await self.db.fetch(f"SELECT {_FILE_COLUMNS} FROM t_config_files WHERE id = ?", (config_id,))
        return _file_row(rows[0]) if rows else None

    async def reference_ids(self, config_id: int) -> list[int]:
        """The files ``config_id`` references, in the order the references were made."""
        rows = await self.db.fetch(
            "SELECT reference_id FROM t_config_references WHERE config_id = ? ORDER BY id", (config_id,)
        )
        return [int(r[0]) for r in rows if r[0] is not None]

    async def filenames(self, owner: str, level: int | None = None, host: str | None = None,
                        sd: SetDivision | None = NO_SET) -> list[str]:  # fmt: skip
        """Distinct file names of ``owner``; ``level``/``host``/``sd`` None = any."""
        sql, params = "SELECT DISTINCT filename FROM t_config_files WHERE server_name = ?", list[object]([owner])
        if level is not None:
            sql, params = sql + " AND level = ?", [*params, level]
        if host is not None:
            sql, params = sql + " AND host = ?", [*params, host]
        if sd is not None:
            sql, params = sql + " AND set_name = ? AND set_area = ? AND set_group = ?", [*params, *sd]
        return sorted(str(r[0]) for r in await self.db.fetch(sql, params) if r[0])

    # -- what the CLI writes ----------------------------------------------------------------------------------
    async def files(self, owner: str) -> list[FileRow]:
        """Every row of ``owner`` (``App`` or ``App.Server``), by level, host, set and name."""
        rows = await self.db.fetch(f"SELECT {_FILE_COLUMNS} FROM t_config_files WHERE server_name = ?", (owner,))
        return sorted((_file_row(r) for r in rows), key=lambda f: (f.level, f.host, f.set_division, f.filename))

    async def put(self, owner: str, filename: str, level: int, content: str, *, host: str = "",
                  sd: SetDivision = NO_SET, user: str = "", reason: str = "",
                  references: Sequence[str] | None = None) -> tuple[FileRow, bool]:  # fmt: skip
        """Create or replace a file, record it in the history; with ``references`` (app-level file names of the
        same app) replace its references. Returns the row and whether it was created. ValueError: a referenced
        file does not exist."""
        async with self.db.transaction() as tx:
            ref_ids = await self._reference_ids_of(tx, owner.split(".")[0], references or [], sd)
            found = await self.file(owner, filename, level, host, sd, tx)
            if found is None:
                await tx.execute(
                    "INSERT INTO t_config_files (server_name, filename, host, level, set_name, set_area, set_group, "
                    "config, posttime, lastuser) VALUES (?, ?, ?, ?, ?, ?, ?, ?, CURRENT_TIMESTAMP, ?)",
                    (owner, filename, host, level, *sd, content, user),
                )
            else:
                await tx.execute(
                    "UPDATE t_config_files SET config = ?, posttime = CURRENT_TIMESTAMP, lastuser = ? WHERE id = ?",
                    (content, user, found.id),
                )
            row = await self.file(owner, filename, level, host, sd, tx)
            assert row is not None
            await tx.execute(
                "INSERT INTO t_config_history_files (configid, reason, reason_select, content, posttime, lastuser) "
                "VALUES (?, ?, '', ?, CURRENT_TIMESTAMP, ?)",
                (row.id, reason, content, user),
            )
            if references is not None:
                await tx.execute("DELETE FROM t_config_references WHERE config_id = ?", (row.id,))
                for ref in ref_ids:
                    await tx.execute("INSERT INTO t_config_references (config_id, reference_id) VALUES (?, ?)",
                                     (row.id, ref))  # fmt: skip
        return row, found is None

    async def _reference_ids_of(self, tx: Queries, app: str, names: Sequence[str], sd: SetDivision) -> list[int]:
        ids = []
        for name in dict.fromkeys(names):  # once each, in the order given
            ref = await self.file(app, name, LEVEL_APP, "", NO_SET, tx)
            if ref is None:
                raise ValueError(f"--ref {name}: no app-level file {name} of app {app} (put it first)")
            ids.append(ref.id)
        return ids

    async def remove(self, owner: str, filename: str, level: int, host: str = "", sd: SetDivision = NO_SET) -> bool:
        """Delete a file and every reference from or to it; False when there was no such file."""
        async with self.db.transaction() as tx:
            found = await self.file(owner, filename, level, host, sd, tx)
            if found is None:
                return False
            await tx.execute("DELETE FROM t_config_references WHERE config_id = ? OR reference_id = ?",
                             (found.id, found.id))  # fmt: skip
            await tx.execute("DELETE FROM t_config_files WHERE id = ?", (found.id,))
        return True
