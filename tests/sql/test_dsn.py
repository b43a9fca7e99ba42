"""DSNs of the MySQL store: ours and K8STARS's, and what is refused (never echoing the password)."""

from __future__ import annotations

import pytest

from k8stars.registry.store import open_store
from k8stars.sql import MysqlDsn, parse_dsn


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mysql://root:pass@tars-db:3306/db_tars", MysqlDsn("tars-db", 3306, "root", "pass", "db_tars")),
        ("mysql://u%40x:p%3Aw@127.0.0.1/db_tars", MysqlDsn("127.0.0.1", 3306, "u@x", "p:w", "db_tars")),
        ("mariadb://root@h:1/db", MysqlDsn("h", 1, "root", "", "db")),
        ("root:pass@tcp(127.0.0.1:3306)/db_tars", MysqlDsn("127.0.0.1", 3306, "root", "pass", "db_tars")),  # K8STARS
        ("root:pass@tcp(tars-db)/db_tars?charset=utf8", MysqlDsn("tars-db", 3306, "root", "pass", "db_tars")),
    ],
)
def test_parse(text: str, expected: MysqlDsn) -> None:
    assert parse_dsn(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("postgres://root:secret@h/db", "expected mysql://"),
        ("mysql://root:secret@h:99999/db", "bad DSN"),
        ("mysql://root:secret@h/db;drop", "database name"),
        ("mysql://root:secret@h/", "database name"),
    ],
)
def test_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as err:
        parse_dsn(text)
    assert "secret" not in str(err.value)


def test_printing_hides_the_password() -> None:
    assert str(parse_dsn("mysql://root:secret@h:3306/db")) == "mysql://root@h:3306/db"
    with pytest.raises(ValueError, match="needs --dsn"):
        open_store("mysql")
    with pytest.raises(ValueError, match="unknown store"):
        open_store("etcd", data_dir="/tmp")
