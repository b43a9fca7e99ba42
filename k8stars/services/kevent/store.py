"""The kept Kubernetes Events: ``t_kevent`` in the monitoring store (``monitor.db`` on SQLite, or the MySQL database
of the history), one row per Event (its uid), with the TARS server (``App.Server``) and pod it concerns.

The apiserver keeps Events for an hour; here they stay ``retention_days``. A repeated Event (client-go aggregates
repeats into one object with a growing ``count``) updates its row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from k8stars.services.stat.store import SQLITE_FILE
from k8stars.sql import Schema, Step
from k8stars.sql.store import SqlBackedStore

TABLE = "t_kevent"
COLUMNS = ("uid", "namespace", "server", "pod", "kind", "object", "type", "reason", "message", "count", "first_seen",
           "last_seen")  # fmt: skip
MAX_MESSAGE = 1024

_SQLITE = [
    f"""CREATE TABLE IF NOT EXISTS {TABLE} (
  uid TEXT NOT NULL PRIMARY KEY,
  namespace TEXT NOT NULL DEFAULT '',
  server TEXT NOT NULL DEFAULT '',
  pod TEXT NOT NULL DEFAULT '',
  kind TEXT NOT NULL DEFAULT '',
  object TEXT NOT NULL DEFAULT '',
  type TEXT NOT NULL DEFAULT '',
  reason TEXT NOT NULL DEFAULT '',
  message TEXT NOT NULL DEFAULT '',
  count INTEGER NOT NULL DEFAULT 1,
  first_seen INTEGER NOT NULL DEFAULT 0,
  last_seen INTEGER NOT NULL DEFAULT 0
)""",
    f"CREATE INDEX IF NOT EXISTS {TABLE}_server ON {TABLE} (server, last_seen)",
    f"CREATE INDEX IF NOT EXISTS {TABLE}_pod ON {TABLE} (pod, last_seen)",
    f"CREATE INDEX IF NOT EXISTS {TABLE}_last ON {TABLE} (last_seen)",
]
_MYSQL = [
    f"""CREATE TABLE IF NOT EXISTS {TABLE} (
  uid varchar(64) NOT NULL,
  namespace varchar(64) NOT NULL DEFAULT '',
  server varchar(128) NOT NULL DEFAULT '',
  pod varchar(253) NOT NULL DEFAULT '',
  kind varchar(64) NOT NULL DEFAULT '',
  object varchar(253) NOT NULL DEFAULT '',
  type varchar(16) NOT NULL DEFAULT '',
  reason varchar(128) NOT NULL DEFAULT '',
  message varchar({MAX_MESSAGE}) NOT NULL DEFAULT '',
  count int NOT NULL DEFAULT 1,
  first_seen bigint NOT NULL DEFAULT 0,
  last_seen bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (uid),
  KEY server (server, last_seen),
  KEY pod (pod, last_seen),
  KEY last (last_seen)
) ENGINE=InnoDB DEFAULT CHARSET=utf8""",
]
SCHEMA = Schema("kevent", [Step(sqlite=_SQLITE, mysql=_MYSQL)])


@dataclass(frozen=True)
class KEvent:
    uid: str
    namespace: str
    server: str  # App.Server ("" when it concerns no known server)
    pod: str
    kind: str  # the involved object's
    involved: str  # the involved object's name
    type: str
    reason: str
    message: str
    count: int
    first_seen: int  # epoch seconds
    last_seen: int

    def row(self) -> tuple[object, ...]:
        return (self.uid, self.namespace, self.server, self.pod, self.kind, self.involved, self.type, self.reason,
                self.message[:MAX_MESSAGE], self.count, self.first_seen, self.last_seen)  # fmt: skip

    def json(self) -> dict[str, object]:
        return dict(zip(COLUMNS, self.row(), strict=True))  # "object": the involved object's name


class KeventStore(SqlBackedStore):
    schema: ClassVar[Schema] = SCHEMA
    sqlite_file: ClassVar[str] = SQLITE_FILE  # the monitoring store: one file to keep, one retention policy

    async def put(self, events: Sequence[KEvent]) -> None:
        if events:
            sql = self.db.dialect.upsert(TABLE, COLUMNS, ("uid",), COLUMNS[1:])
            await self.db.executemany(sql, [e.row() for e in events])

    async def events(self, *, server: str = "", pod: str = "", limit: int = 200) -> list[KEvent]:
        """The newest first, of ``server`` (App.Server) and/or ``pod`` (values are bound parameters)."""
        where: list[str] = []
        params: list[object] = []
        if server:
            where.append("server = ?")
            params.append(server)
        if pod:
            where.append("pod = ?")
            params.append(pod)
        sql = f"SELECT {', '.join(COLUMNS)} FROM {TABLE}"
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = await self.db.fetch(f"{sql} ORDER BY last_seen DESC, uid LIMIT ?", (*params, limit))
        return [KEvent(str(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4]), str(r[5]), str(r[6]), str(r[7]),
                       str(r[8]), int(r[9]), int(r[10]), int(r[11])) for r in rows]  # fmt: skip

    async def prune(self, before: int) -> int:
        """Delete Events last seen before ``before`` (epoch seconds); how many went."""
        return await self.db.execute(f"DELETE FROM {TABLE} WHERE last_seen < ?", (before,))
