"""DSNs of MySQL/MariaDB databases: ours (``mysql://user:pass@host:port/db``) and K8STARS's (Go's driver form)."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

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
    """``mysql://user:pass@host:port/db`` (or K8STARS's ``user:pass@tcp(host:port)/db``), either with an optional
    ``?password_file=PATH`` instead of the password; ValueError if neither."""
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
    return _with_password_file(dsn, text)


def _with_password_file(dsn: MysqlDsn, text: str) -> MysqlDsn:
    """``?password_file=PATH``: the password is that file's content (a mounted Secret), so it need not be in the DSN,
    which may end up on a command line (``/proc/<pid>/cmdline`` is readable by every user)."""
    files = parse_qs(text.partition("?")[2]).get("password_file")
    if not files:
        return dsn
    if dsn.password:
        raise ValueError(f"bad DSN {_redact(text)!r}: a password and a password_file")
    try:
        password = Path(files[-1]).read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as e:
        raise ValueError(f"bad DSN {_redact(text)!r}: password_file {files[-1]}: {e.strerror}") from None
    return replace(dsn, password=password)


def _redact(text: str) -> str:
    return re.sub(r":[^:@/]*@", ":***@", text)
