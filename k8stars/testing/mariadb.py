"""A private MariaDB server for tests (pytest fixture ``mariadb``), on a free 127.0.0.1 port with a throwaway data
directory, shared by the tests of the SQL layer (k8stars.sql) and of every store over it.

Without a MariaDB server binary the tests that need it are skipped, or fail when CI=true (CI must install
mariadb-server).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from k8stars.tarscli.proc import die_with_parent

START_TIMEOUT = 60.0


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass
class MariaDB:
    host: str
    port: int
    pid: int

    def dsn(self, database: str) -> str:
        return f"mysql://root@{self.host}:{self.port}/{database}"


def _binary(*names: str) -> str | None:
    for name in names:
        found = shutil.which(name) or next(
            (f"{d}/{name}" for d in ("/usr/sbin", "/usr/libexec", "/usr/bin") if os.access(f"{d}/{name}", os.X_OK)),
            None,
        )
        if found:
            return found
    return None


def _missing(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI must install it: apt-get install -y mariadb-server)")
    pytest.skip(reason)


def _wait_ready(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    import pymysql  # type: ignore[import-untyped]

    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            pymysql.connect(host="127.0.0.1", port=port, user="root", connect_timeout=1).close()
            return
        except pymysql.err.OperationalError:
            time.sleep(0.2)
    tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
    raise RuntimeError(f"mariadbd did not become ready on 127.0.0.1:{port}:\n{tail}")


@pytest.fixture(scope="session")
def mariadb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MariaDB]:
    """A private MariaDB server on a free loopback port, with a throwaway data directory; stopped by its PID."""
    server = _binary("mariadbd", "mysqld")
    install = _binary("mariadb-install-db", "mysql_install_db")
    if server is None or install is None:
        _missing("MariaDB server binaries (mariadbd, mariadb-install-db) not found")
    assert server is not None and install is not None
    base = tmp_path_factory.mktemp("mariadb")
    datadir, log = base / "data", base / "mariadbd.log"
    as_root = ["--user=root"] if os.geteuid() == 0 else []
    sizes = ["--innodb-log-file-size=8M", "--innodb-buffer-pool-size=64M"]
    subprocess.run(
        [install, "--no-defaults", f"--datadir={datadir}", "--auth-root-authentication-method=normal",
         "--skip-test-db", *as_root, *sizes],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    port = free_port()
    argv = [
        server, "--no-defaults", f"--datadir={datadir}", f"--socket={base}/mysqld.sock", f"--port={port}",
        "--bind-address=127.0.0.1", f"--pid-file={base}/mysqld.pid", "--skip-log-bin", "--skip-name-resolve",
        "--innodb-flush-log-at-trx-commit=2", "--max-connections=500", *sizes, *as_root,
    ]  # fmt: skip
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, preexec_fn=die_with_parent()
        )  # a killed test run leaves no server behind
    try:
        _wait_ready(port, proc, log)
        yield MariaDB("127.0.0.1", port, proc.pid)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


@dataclass
class SqlSpec:
    """Where one test's SQL store lives: SQLite in ``data_dir``, or a fresh database on the session's MariaDB."""

    kind: str
    data_dir: Path
    dsn: str | None = None

    def options(self) -> list[str]:
        """The --store/--dsn/--data-dir arguments of a command using this store."""
        if self.kind == "mysql":
            assert self.dsn is not None
            return ["--store", "mysql", "--dsn", self.dsn]
        return ["--store", "sqlite", "--data-dir", str(self.data_dir)]


def sql_spec(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> SqlSpec:
    """For a fixture parametrized over ``sqlite``/``mysql``: MariaDB gets a database of its own per test."""
    if kind == "mysql":
        db: MariaDB = request.getfixturevalue("mariadb")
        return SqlSpec("mysql", tmp_path, db.dsn(f"db_tars_{uuid.uuid4().hex[:12]}"))
    return SqlSpec("sqlite", tmp_path / "data")
