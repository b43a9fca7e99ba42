"""Hostile registrations (issue 16, items 1 and 12), through the Registry servant, against SQLite and MariaDB: what
a classic TARS peer could not read, or a store could not hold, is refused with 1001 before any store sees it, and a
bad row already stored (by another tool or an older k8stars) never stops the registry loading or polling the rest."""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from k8stars.registry.model import ERR_BAD_REQUEST, AdapterSpec, Registration, ServerKey
from k8stars.registry.store import open_store
from k8stars.sql import parse_dsn
from k8stars.tars.errors import TarsRpcError
from k8stars.tars.protocol.tarsregistry import AdapterConf, onStartupReq
from k8stars.tars.rpc import Communicator
from tests.registry.conftest import Client, Launch, StoreSpec, eventually

HELLO = "App.Hello.MainObj"
BIG = str(2**40)

# endpoint -> what the refusal says
BAD_ENDPOINTS = [
    ("tcp -h 127.0.0.9 -p 20001 -t 99999999999", "-t '99999999999' (timeout) is not an integer in 0..2147483647"),
    ("tcp -h 127.0.0.9 -p 20001 -t 2147483648", "(timeout) is not an integer"),
    (f"tcp -h 127.0.0.9 -p 20001 -w {BIG}", "(weight) is not an integer"),
    (f"tcp -h 127.0.0.9 -p 20001 -g {BIG}", "(grid) is not an integer"),
    (f"tcp -h 127.0.0.9 -p 20001 -e {BIG}", "(authType) is not an integer"),
    (f"tcp -h 127.0.0.9 -p 20001 -q -{BIG}", "(qos) is not an integer"),
    ("tcp -h 127.0.0.9 -p 20001 -t -5", "(timeout) is not an integer in 0.."),
    ("tcp -h 127.0.0.9 -p \u0662\u0660\u0660\u0660\u0661", "is not a port"),  # Arabic-Indic digits: int() reads them
    ("tcp -h 127.0.0.9 -p 2_0001", "is not a port"),  # int() reads "2_0001" as 20001
    ("tcp -h 127.0.0.9 -p 020001", "is not a port"),  # octal to TarsGo, decimal to TarsCpp
    ("tcp -h 0 -p 20001", "-h '0' is not an IP address or a host name"),  # 0.0.0.0 to inet_aton
    ("tcp -h 0x7f.1 -p 20001", "is not an IP address or a host name"),
    ("tcp -h ::0 -p 20001", "listens on all interfaces"),
    ("tcp -h 0:0::0 -p 20001", "listens on all interfaces"),
    ("tcp -h 127.0.0.9 -p 20001 -s \U0001f600", "holds more than printable ASCII"),
]


@pytest.fixture
async def client(launch: Launch, comm: Communicator) -> Client:
    return Client(comm, await launch())


async def _refused(c: Client, expected: str, endpoint: str = "tcp -h 127.0.0.9 -p 20001", **extra: object) -> None:
    req = onStartupReq("127.0.0.9", "App", "Hello", adapters=[AdapterConf(HELLO, endpoint)], **extra)  # type: ignore[arg-type]
    with pytest.raises(TarsRpcError) as err:
        await c.registry.onStartup(req)
    assert err.value.code == ERR_BAD_REQUEST, err.value
    assert expected in str(err.value), err.value


async def test_endpoints_no_tars_peer_can_read_are_refused(client: Client, launch: Launch) -> None:
    c = client
    await c.start("127.0.0.8", "App", "Hello", ("MainObj", 20001))
    seq = await c.server.store.seq()
    for endpoint, expected in BAD_ENDPOINTS:
        await _refused(c, expected, endpoint)
    await _refused(c, "Version '\U0001f600' holds characters other than printable ASCII", Version="\U0001f600")
    await _refused(c, "Version 'v1\\nforged' holds", Version="v1\nforged")
    assert await c.server.store.seq() == seq  # nothing reached the store
    # the registry keeps serving: lookups, new registrations, and a restart over the same store
    assert await c.active(HELLO) == {("127.0.0.8", 20001)}
    await c.start("127.0.0.9", "App", "Hello", ("MainObj", 20001), Version="1.0.0-rc.1+build_7")
    again = Client(c.comm, await launch())
    assert await again.active(HELLO) == {("127.0.0.8", 20001), ("127.0.0.9", 20001)}


async def test_edge_values_that_peers_read_are_kept(client: Client) -> None:
    c = client
    top = 2**31 - 1
    endpoint = f"tcp -h tars-hello-0.tars-hello.ns.svc.cluster.local -p 65535 -t {top} -g 0 -w -1 -e 0"
    await c.registry.onStartup(onStartupReq("127.0.0.9", "App", "Hello", adapters=[AdapterConf(HELLO, endpoint)]))
    (ep,) = await c.query.findObjectById(HELLO)
    assert (ep.host, ep.port, ep.timeout, ep.weight) == ("tars-hello-0.tars-hello.ns.svc.cluster.local", 65535, top, -1)


def _unchecked(node: str, endpoint: str) -> Registration:
    """A registration as an older k8stars (or another tool) wrote it: no validation at all."""
    return Registration(ServerKey("App", "Hello", node), adapters=(AdapterSpec(HELLO, endpoint),))


async def test_a_bad_stored_row_never_stops_the_registry(
    store_spec: StoreSpec, launch: Launch, comm: Communicator
) -> None:
    writer = store_spec.new()  # another writer on the same database (a replica of an older version, a tool)
    await writer.open()
    try:
        await writer.register(_unchecked("127.0.0.7", "tcp -h 127.0.0.7 -p 20001 -t 99999999999"), time.time())
        await writer.register(_unchecked("127.0.0.8", "tcp -h 127.0.0.8 -p 20001"), time.time())
        # before: the start failed ("cannot open the sqlite store: EncodeError"); now the bad row is skipped
        c = Client(comm, await launch(heartbeat_timeout=0.5))
        assert await c.active(HELLO) == {("127.0.0.8", 20001)}
        # the change poller goes on: a bad row and a good one written after the start, the good one is served
        await writer.register(_unchecked("127.0.0.9", f"tcp -h 127.0.0.9 -p 20001 -w {BIG}"), time.time())
        await writer.register(_unchecked("127.0.0.10", "tcp -h 127.0.0.10 -p 20001"), time.time())

        async def polled() -> bool:
            return await c.active(HELLO) == {("127.0.0.8", 20001), ("127.0.0.10", 20001)}

        await eventually(polled, timeout=10)
        # heartbeat expiry goes on too: nobody beats for these servers, so they turn inactive
        await eventually(lambda: _inactive(c, {("127.0.0.8", 20001), ("127.0.0.10", 20001)}), timeout=15)
    finally:
        await writer.close()


async def _inactive(c: Client, expected: set[tuple[str, int]]) -> bool:
    return await c.inactive(HELLO) == expected


async def test_an_unreadable_sqlite_row_is_skipped(store_spec: StoreSpec, launch: Launch, comm: Communicator) -> None:
    if store_spec.kind != "sqlite":
        pytest.skip("MariaDB's typed columns cannot hold the unreadable value")
    writer = store_spec.new()
    await writer.open()
    try:
        await writer.register(_unchecked("127.0.0.7", "tcp -h 127.0.0.7 -p 20001"), time.time())
        await writer.register(_unchecked("127.0.0.8", "tcp -h 127.0.0.8 -p 20001"), time.time())
    finally:
        await writer.close()
    assert store_spec.data_dir is not None
    with contextlib.closing(sqlite3.connect(Path(store_spec.data_dir) / "registry.db")) as db, db:
        db.execute("UPDATE t_server_conf SET bak_flag = 'x' WHERE node_name = '127.0.0.7'")  # as another tool could
    c = Client(comm, await launch())
    assert await c.active(HELLO) == {("127.0.0.8", 20001)}


async def test_the_sqlite_store_is_readable_by_its_owner_only(store_spec: StoreSpec, launch: Launch) -> None:
    if store_spec.kind != "sqlite":
        pytest.skip("a SQLite file's mode")
    assert store_spec.data_dir is not None
    db = Path(store_spec.data_dir) / "registry.db"
    db.parent.mkdir(parents=True, exist_ok=True)
    db.touch(0o644)  # as an older k8stars left it
    db.chmod(0o644)
    await launch()
    for file in (db, db.with_name("registry.db-wal"), db.with_name("registry.db-shm")):
        assert file.stat().st_mode & 0o777 == 0o600, file


async def test_a_mysql_password_from_a_file(store_spec: StoreSpec, tmp_path: Path) -> None:
    """``?password_file=PATH``: the password stays off the command line (/proc/<pid>/cmdline is world-readable)."""
    if store_spec.kind != "mysql":
        pytest.skip("a MySQL password")
    import pymysql  # type: ignore[import-untyped]

    root = parse_dsn(store_spec.dsn or "")
    conn = pymysql.connect(host=root.host, port=root.port, user=root.user, password=root.password, autocommit=True)
    try:
        with conn.cursor() as cur:
            for host in ("%", "localhost", "127.0.0.1"):
                cur.execute(f"CREATE USER IF NOT EXISTS 'hardening'@'{host}' IDENTIFIED BY 'n0t on the cmdline'")
                cur.execute(f"GRANT ALL PRIVILEGES ON *.* TO 'hardening'@'{host}'")
    finally:
        conn.close()
    secret = tmp_path / "password"
    secret.write_text("n0t on the cmdline\n")  # as a mounted Secret often ends
    dsn = f"mysql://hardening@{root.host}:{root.port}/{root.database}?password_file={secret}"
    store = open_store("mysql", dsn=dsn)
    await store.open()
    try:
        await store.register(_unchecked("127.0.0.8", "tcp -h 127.0.0.8 -p 20001"), time.time())
        assert [r.key.node for r in await store.load()] == ["127.0.0.8"]
    finally:
        await store.close()
    missing = f"mysql://hardening@{root.host}:{root.port}/{root.database}?password_file={tmp_path / 'nope'}"
    r = subprocess.run([sys.executable, "-m", "k8stars", "registry", "--store", "mysql", "--dsn", missing],
                       capture_output=True, text=True, timeout=60)  # fmt: skip
    assert r.returncode == 2 and f"password_file {tmp_path / 'nope'}: No such file or directory" in r.stderr, r
