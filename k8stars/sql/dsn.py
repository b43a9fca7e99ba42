"""DSNs of MySQL/MariaDB databases: ours (``mysql://user:pass@host:port/db``) and K8STARS's (Go's driver form)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

_DB_NAME = re.compile(r"[A-Za-z0-9_]+")
# K8STARS's DB_DSN form (Go's mysql driver): user:pass@tcp(host:port)/db_tars
_GO_DSN = re.compile(
    r"(?P<user>[^:@]*)(?::(?P<password>[^@]*))?@tcp\((?P<host>[^:)]+)(?::(?P<port>\d+))?\)/(?P<db>[^?]*)"
)


@dataclass(frozen=True)
class MysqlDsn:
    host: str
    port: int
    user: str
    password: str
    database: str

    def __str__(self) -> str:  # never print the password
        return f"mysql://{self.user}@{self.host}:{self.port}/{self.database}"


def parse_dsn(text: str) -> MysqlDsn:
    """``mysql://user:pass@host:port/db`` (or K8STARS's ``user:pass@tcp(host:port)/db``); ValueError if neither."""
    m = _GO_DSN.fullmatch(text.split("?", 1)[0].strip())
    if m:
        dsn = MysqlDsn(m["host"], int(m["port"] or 3306), m["user"], m["password"] or "", m["db"])
    else:
        u = urlsplit(text.strip())
        if u.scheme not in ("mysql", "mariadb") or not u.hostname:
            raise ValueError(f"bad DSN {_redact(text)!r}: expected mysql://user:pass@host:port/db_tars")
        try:
            port = u.port or 3306
        except ValueError as e:
            raise ValueError(f"bad DSN {_redact(text)!r}: {e}") from None
        dsn = MysqlDsn(u.hostname, port, unquote(u.username or "root"), unquote(u.password or ""), u.path.lstrip("/"))
    if not _DB_NAME.fullmatch(dsn.database):
        raise ValueError(f"bad DSN {_redact(text)!r}: database name {dsn.database!r} (letters, digits and _)")
    return dsn


def _redact(text: str) -> str:
    return re.sub(r":[^:@/]*@", ":***@", text)
