"""Fixtures of the SQL layer's tests: a real MariaDB (started here, on 127.0.0.1) next to SQLite files."""

from k8stars.testing.mariadb import mariadb

__all__ = ["mariadb"]
