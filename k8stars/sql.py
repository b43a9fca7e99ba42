"""SQL plumbing shared by the stores over the classic ``db_tars`` (registry and config service): DSN parsing and
the tables both declare.

Neutral ground below ``k8stars/registry`` and ``k8stars/services``, which must not import each other.
"""

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


# db_tars.t_config_files as TarsFramework declares it: the registry's schema has it (a whole db_tars), the config
# service reads and writes it.
CONFIG_FILES_MYSQL = """CREATE TABLE IF NOT EXISTS t_config_files (
  id int(11) NOT NULL AUTO_INCREMENT,
  server_name varchar(128) DEFAULT '',
  set_name varchar(16) NOT NULL DEFAULT '',
  set_area varchar(16) NOT NULL DEFAULT '',
  set_group varchar(16) NOT NULL DEFAULT '',
  host varchar(20) NOT NULL DEFAULT '',
  filename varchar(128) DEFAULT NULL,
  config longtext,
  posttime datetime NOT NULL DEFAULT CURRENT_TIMESTAMP,
  lastuser varchar(50) DEFAULT NULL,
  level int(11) DEFAULT 2,
  config_flag int(10) NOT NULL DEFAULT 0,
  PRIMARY KEY (id),
  UNIQUE KEY application (server_name, filename, host, level, set_name, set_area, set_group)
) ENGINE=InnoDB DEFAULT CHARSET=utf8"""
CONFIG_FILES_SQLITE = """CREATE TABLE IF NOT EXISTS t_config_files (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  server_name TEXT DEFAULT '',
  set_name TEXT NOT NULL DEFAULT '',
  set_area TEXT NOT NULL DEFAULT '',
  set_group TEXT NOT NULL DEFAULT '',
  host TEXT NOT NULL DEFAULT '',
  filename TEXT DEFAULT NULL,
  config TEXT,
  posttime TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
  lastuser TEXT DEFAULT NULL,
  level INTEGER DEFAULT 2,
  config_flag INTEGER NOT NULL DEFAULT 0,
  UNIQUE (server_name, filename, host, level, set_name, set_area, set_group)
)"""
