"""The config service over the classic db_tars tables, each test on SQLite and on a real MariaDB: TarsFramework's
levels (app, server, node), references, sets, every ConfigF operation through TARS RPC, rows written by other
writers (plain SQL, as TarsWeb writes them) served within a second, and the `k8stars config` CLI and process."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from rconf_peer import GO_CONF, rconf_peer

from k8stars.services.config.app import ConfigService, ConfigServiceError, ConfigServiceOptions
from k8stars.services.config.classic import CACHE_TTL, merge
from k8stars.services.config.manage import UsageError, parse_target
from k8stars.services.config.sqlstore import LEVEL_APP, LEVEL_NODE, LEVEL_SERVER, SqlConfigStore
from k8stars.tars.protocol.configf import ConfigInfo, ConfigProxy, GetConfigListInfo
from k8stars.tars.rpc import Communicator
from k8stars.testing.mariadb import SqlSpec, sql_spec
from k8stars.testing.procs import free_port, stop_process, wait_port

ROOT = Path(__file__).resolve().parents[2]
S, N = "<hello>\n  level=server\n</hello>", "<hello>\n  level=node\n</hello>"
APP, SET_APP = "<common>\n  shared=1\n</common>", "<common>\n  shared=set\n</common>"


@pytest.fixture(params=["sqlite", "mysql"])
def spec(request: pytest.FixtureRequest, tmp_path: Path) -> SqlSpec:
    return sql_spec(str(request.param), request, tmp_path)


def open_sql(spec: SqlSpec) -> SqlConfigStore:
    return SqlConfigStore(spec.kind, data_dir=spec.data_dir, dsn=spec.dsn)


@pytest.fixture
async def store(spec: SqlSpec) -> AsyncIterator[SqlConfigStore]:
    s = open_sql(spec)
    await s.open()
    yield s
    await s.close()


@pytest.fixture
async def service(spec: SqlSpec, store: SqlConfigStore) -> AsyncIterator[ConfigService]:
    """``k8stars config`` over the test's database, in this process."""
    options = ConfigServiceOptions(store=spec.kind, data_dir=str(spec.data_dir), dsn=spec.dsn,
                                   endpoint=f"tcp -h 127.0.0.1 -p {free_port()} -t 60000")  # fmt: skip
    svc = ConfigService(options)
    await svc.start()
    yield svc
    await svc.stop()


@pytest.fixture
async def config(service: ConfigService) -> AsyncIterator[ConfigProxy]:
    async with Communicator() as comm:
        yield comm.string_to_proxy(ConfigProxy, f"tars.tarsconfig.ConfigObj@{service.endpoint}")


async def files(store: SqlConfigStore) -> None:
    """Test.HelloServer's hello.conf at server level (referencing the app's common.conf) and for node 127.0.0.9;
    the app's common.conf, also in set s.a.1."""
    await store.put("Test", "common.conf", LEVEL_APP, APP)
    await store.put("Test", "common.conf", LEVEL_APP, SET_APP, sd=("s", "a", "1"))
    await store.put("Test.HelloServer", "hello.conf", LEVEL_SERVER, S, references=["common.conf"])
    await store.put("Test.HelloServer", "hello.conf", LEVEL_NODE, N, host="127.0.0.9")
    await store.put("Test.HelloServer", "bad.conf", LEVEL_SERVER, "<a>\n x=1\n")


async def past_cache() -> None:
    """Answers are cached for CACHE_TTL: a change made after a lookup is seen by the next one after that."""
    await asyncio.sleep(CACHE_TTL + 0.1)


async def test_levels_references_and_sets(store: SqlConfigStore, config: ConfigProxy) -> None:
    await files(store)
    # server level: the referenced app file, then the file; the node's own level after them
    assert await config.loadConfigByHost("Test.HelloServer", "hello.conf", "127.0.0.8") == (0, merge(APP, S))
    assert await config.loadConfigByHost("Test.HelloServer", "hello.conf", "127.0.0.9") == (
        0, APP + "\r\n\r\n" + S + "\r\n\r\n" + N)  # fmt: skip
    info = ConfigInfo("Test", "HelloServer", "hello.conf", False, "127.0.0.9")
    assert (await config.loadConfigByInfo(info)).config == merge(merge(APP, S), N)
    # a set: the referenced app file is followed by the app's file of that set
    info = ConfigInfo("Test", "HelloServer", "hello.conf", False, "127.0.0.8", "s.a.1")
    assert (await config.loadConfigByInfo(info)).ret == -1  # the server has no file in set s.a.1
    await store.put("Test.HelloServer", "hello.conf", LEVEL_SERVER, S, sd=("s", "a", "1"), references=["common.conf"])
    await past_cache()
    assert (await config.loadConfigByInfo(info)).config == merge(merge(APP, SET_APP), S)
    # app level: loadConfig without a server, bAppOnly, loadConfigByHost("App")
    assert await config.loadConfig("Test", "", "common.conf") == (0, APP)
    assert (await config.loadConfigByInfo(ConfigInfo("Test", "HelloServer", "common.conf", True))).config == APP
    info = ConfigInfo("Test", "", "common.conf", True, "", "s.a.1")
    assert (await config.loadConfigByInfo(info)).config == merge(APP, SET_APP)
    assert await config.loadConfigByHost("Test", "common.conf", "") == (0, APP)
    # without a host: the caller's address (127.0.0.1 here), which has no node-level file
    assert await config.loadConfig("Test", "HelloServer", "hello.conf") == (0, merge(APP, S))


async def test_errors_and_check(store: SqlConfigStore, config: ConfigProxy) -> None:
    await files(store)
    assert await config.loadConfig("Test", "HelloServer", "nope.conf") == (
        -1, "config nope.conf of server Test.HelloServer not found: no row in t_config_files")  # fmt: skip
    assert await config.loadConfig("", "HelloServer", "hello.conf") == (-1, "appname is empty")
    assert await config.loadConfig("Test", "HelloServer", "") == (-1, "filename is empty")
    assert await config.loadConfigByHost("a.b.c", "x", "") == (-1, "bad appServerName 'a.b.c': expected App or "
                                                               "App.Server")  # fmt: skip
    info = ConfigInfo("Test", "HelloServer", "hello.conf", False, "", "s.a")
    assert await config.loadConfigByInfo(info) == (-1, "bad setdivision 's.a': expected name.area.group")
    assert await config.checkConfig("Test.HelloServer", "hello.conf", "127.0.0.9") == (0, merge(merge(APP, S), N))
    ret, why = await config.checkConfig("Test.HelloServer", "bad.conf", "")
    assert ret == -1 and why.startswith("bad.conf is not a valid TARS config: "), why
    assert (await config.checkConfigByInfo(ConfigInfo("Test", "HelloServer", "bad.conf"))).ret == -1
    # an empty file is a file: 0 and ""
    await store.put("Test.HelloServer", "empty.conf", LEVEL_SERVER, "")
    assert await config.loadConfig("Test", "HelloServer", "empty.conf") == (0, "")


async def test_listings(store: SqlConfigStore, config: ConfigProxy) -> None:
    await files(store)
    await store.put("Test.HelloServer", "node-only.conf", LEVEL_NODE, "x", host="127.0.0.1")
    assert await config.ListConfig("Test", "HelloServer") == (0, ["bad.conf", "hello.conf", "node-only.conf"])
    info = ConfigInfo("Test", "HelloServer", host="127.0.0.9")
    assert await config.ListConfigByInfo(info) == (0, ["bad.conf", "hello.conf"])
    assert await config.ListConfigByInfo(ConfigInfo("Test", "", bAppOnly=True)) == (0, ["common.conf"])
    assert await config.ListConfigByInfo(ConfigInfo("")) == (-1, [])
    # ListAllConfigByInfo as upstream: every file of the server, or the node's only when a host is given
    every = GetConfigListInfo("Test", "HelloServer")
    assert await config.ListAllConfigByInfo(every) == (0, ["bad.conf", "hello.conf", "node-only.conf"])
    assert await config.ListAllConfigByInfo(GetConfigListInfo("Test", "HelloServer", host="127.0.0.9")) == (
        0, ["hello.conf"])  # fmt: skip
    assert await config.ListAllConfigByInfo(GetConfigListInfo("Test", bAppOnly=True)) == (0, ["common.conf"])


async def test_rows_written_by_others_are_served_within_a_second(spec: SqlSpec, config: ConfigProxy) -> None:
    """Rows inserted with plain SQL, as TarsWeb writes them (ids, references by id), through another connection."""
    other = open_sql(spec)
    await other.open()
    try:
        sql = (
            "INSERT INTO t_config_files (server_name, set_name, set_area, set_group, host, filename, config, "
            "posttime, lastuser, level, config_flag) VALUES (?, '', '', '', ?, ?, ?, CURRENT_TIMESTAMP, 'web', ?, 0)"
        )
        await other.db.execute(sql, ("Web", "", "db.conf", "<db>\n  host=h\n</db>", LEVEL_APP))
        await other.db.execute(sql, ("Web.Api", "", "api.conf", "<api>\n</api>", LEVEL_SERVER))
        app_id = (await other.file("Web", "db.conf", LEVEL_APP)).id  # type: ignore[union-attr]
        api_id = (await other.file("Web.Api", "api.conf", LEVEL_SERVER)).id  # type: ignore[union-attr]
        await other.db.execute("INSERT INTO t_config_references (config_id, reference_id) VALUES (?, ?)",
                               (api_id, app_id))  # fmt: skip
        want = merge("<db>\n  host=h\n</db>", "<api>\n</api>")
        assert await config.loadConfigByHost("Web.Api", "api.conf", "10.0.0.1") == (0, want)
        await other.db.execute("UPDATE t_config_files SET config = ? WHERE id = ?", ("<api>\n  v=2\n</api>", api_id))
        # committed before the wait: once the cached answer has expired (CACHE_TTL < 1 s) the next lookup reads it
        await past_cache()
        answer = await config.loadConfigByHost("Web.Api", "api.conf", "10.0.0.1")
        assert answer == (0, merge("<db>\n  host=h\n</db>", "<api>\n  v=2\n</api>"))
        assert await other.remove("Web.Api", "api.conf", LEVEL_SERVER)
        await past_cache()
        assert (await config.loadConfigByHost("Web.Api", "api.conf", "10.0.0.1")).ret == -1
        assert await config.loadConfig("Web", "", "db.conf") == (0, "<db>\n  host=h\n</db>")  # not referenced now
        assert await other.reference_ids(api_id) == []
    finally:
        await other.close()


def k8stars(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "k8stars", *args], cwd=ROOT, capture_output=True, text=True,
                          input=stdin, timeout=60)  # fmt: skip


async def test_cli_put_get_list_rm(spec: SqlSpec, config: ConfigProxy, tmp_path: Path) -> None:
    (tmp_path / "hello.conf").write_text(S)
    o = spec.options()
    r = k8stars("config", "put", *o, "Test.HelloServer", str(tmp_path / "hello.conf"), "--user", "alice")
    assert (r.returncode, r.stdout.strip()) == (0, "created Test.HelloServer hello.conf (server level), id 1"), r
    r = k8stars("config", "put", *o, "Test", "-", "--name", "common.conf", stdin=APP)
    assert r.returncode == 0, r
    r = k8stars("config", "put", *o, "Test.HelloServer", "-", "--name", "hello.conf", "--host", "127.0.0.9",
                "--ref", "common.conf", stdin=N)  # fmt: skip
    assert r.returncode == 0 and "(node level on 127.0.0.9)" in r.stdout, r
    assert await config.loadConfigByHost("Test.HelloServer", "hello.conf", "127.0.0.9") == (0, merge(S, merge(APP, N)))
    r = k8stars("config", "get", *o, "Test.HelloServer", "hello.conf", "--host", "127.0.0.9")
    assert (r.returncode, r.stdout) == (0, N), r
    r = k8stars("config", "list", *o, "Test.HelloServer")
    lines = r.stdout.splitlines()
    assert r.returncode == 0 and lines[0].split() == ["FILE", "LEVEL", "HOST", "SET", "UPDATED", "BY"], r
    assert [line.split()[:3] for line in lines[1:]] == [["hello.conf", "server", "-"], ["hello.conf", "node",
                                                                                         "127.0.0.9"]]  # fmt: skip
    assert lines[1].split()[-1] == "alice"
    # the group's store options work too
    r = k8stars("config", *o, "rm", "Test.HelloServer", "hello.conf", "--host", "127.0.0.9")
    assert (r.returncode, r.stdout.strip()) == (0, "removed Test.HelloServer hello.conf (node level on 127.0.0.9)")
    r = k8stars("config", "rm", *o, "Test.HelloServer", "hello.conf", "--host", "127.0.0.9")
    assert (r.returncode, r.stderr.strip()) == (1, "error: no Test.HelloServer hello.conf (node level on 127.0.0.9)")
    r = k8stars("config", "get", *o, "Test", "nope.conf")
    assert (r.returncode, r.stderr.strip()) == (1, "error: no Test nope.conf (app level)")
    for bad, why in [
        (["put", *o, "a.b.c", str(tmp_path / "hello.conf")], "bad target 'a.b.c'"),
        (["put", *o, "Test", str(tmp_path / "hello.conf"), "--host", "1.2.3.4"], "--host needs App.Server"),
        (["put", *o, "Test.S", str(tmp_path / "hello.conf"), "--host", "node1"], "expected the node's IP"),
        (["put", *o, "Test.S", str(tmp_path / "hello.conf"), "--set", "x"], "--set: bad setdivision 'x'"),
        (["put", *o, "Test.S", "-"], "reading stdin (-) needs --name"),
        (["put", *o, "Test.S", str(tmp_path / "hello.conf"), "--name", "../x"], "bad file name '../x'"),
        (["put", *o, "Test.S", str(tmp_path / "missing.conf")], "missing.conf"),
        (["list", "--store", "kubernetes", "Test"], "TConfig objects"),
    ]:
        r = k8stars("config", *bad)
        assert r.returncode == 2 and why in r.stderr, (bad, r)
    r = k8stars("config", "put", *o, "Test.S", str(tmp_path / "hello.conf"), "--ref", "nope.conf")
    assert r.returncode == 1 and "--ref nope.conf: no app-level file nope.conf of app Test" in r.stderr, r


async def test_the_process_answers_k8stars_call(spec: SqlSpec, store: SqlConfigStore, tmp_path: Path) -> None:
    await files(store)
    port = free_port()
    argv = [sys.executable, "-m", "k8stars", "config", *spec.options(), "--endpoint", f"tcp -h 127.0.0.1 -p {port}"]
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, proc)
        args = {"appServerName": "Test.HelloServer", "filename": "hello.conf", "host": "127.0.0.9"}
        r = k8stars("call", f"tars.tarsconfig.ConfigObj@tcp -h 127.0.0.1 -p {port}", "loadConfigByHost",
                    json.dumps(args))  # fmt: skip
        assert r.returncode == 0, r
        assert json.loads(r.stdout) == {"ret": 0, "config": merge(merge(APP, S), N)}
    finally:
        stop_process(proc)
    assert proc.returncode == 0


def test_options_and_targets() -> None:
    assert CACHE_TTL < 1.0  # the freshness promise: a committed change is served within a second
    assert ConfigServiceOptions().store_kind == "sqlite"
    assert ConfigServiceOptions(namespace="tars").store_kind == "kubernetes"
    assert ConfigServiceOptions(namespace="tars", store="mysql", dsn="mysql://r@h/db_tars").store_kind == "mysql"
    with pytest.raises(ConfigServiceError, match="--store mysql needs --dsn"):
        ConfigServiceOptions(store="mysql").check()
    with pytest.raises(ConfigServiceError, match="--dsn: bad DSN"):
        ConfigServiceOptions(store="mysql", dsn="postgres://x").check()
    with pytest.raises(ConfigServiceError, match="--store 'etcd'"):
        ConfigServiceOptions(store="etcd").check()
    t = parse_target("App.Server", "10.0.0.1", "s.a.1")
    assert (t.owner, t.level, t.host, t.sd) == ("App.Server", LEVEL_NODE, "10.0.0.1", ("s", "a", "1"))
    assert parse_target("App").level == LEVEL_APP
    with pytest.raises(UsageError, match="bad target"):
        parse_target("App.")


async def test_unreachable_database_is_a_clear_error(tmp_path: Path) -> None:
    r = k8stars("config", "--store", "mysql", "--dsn", f"mysql://root@127.0.0.1:{free_port()}/db_tars",
                "--endpoint", f"tcp -h 127.0.0.1 -p {free_port()}")  # fmt: skip
    assert r.returncode == 1 and "error: config store mysql://root@127.0.0.1:" in r.stderr, r
    (tmp_path / "file").write_text("")
    r = k8stars("config", "list", "--data-dir", str(tmp_path / "file" / "sub"), "App")  # under a file
    assert r.returncode == 1 and "error: config store " in r.stderr, r


async def test_tarsgo_rconf_over_the_sql_store(store: SqlConfigStore, service: ConfigService, tmp_path: Path) -> None:
    """A real TarsGo (v1.4.6) RConf against the SQL store: GetConfig sends no host, so its own address (127.0.0.1)
    picks the node level, served after the server level and its reference; GetAppConfig the app level;
    GetConfigList (ListAllConfigByInfo); a missing file's -1."""
    peer = await asyncio.to_thread(rconf_peer)
    await files(store)
    await store.put("Test.HelloServer", "hello.conf", LEVEL_NODE, N, host="127.0.0.1")
    port = service.endpoint.port
    base = tmp_path / "go"
    base.mkdir()
    conf = tmp_path / "GoServer.conf"
    conf.write_text(GO_CONF.format(basepath=base, port=port))
    p = await asyncio.create_subprocess_exec(str(peer), f"--config={conf}", "hello.conf", "app:common.conf",
                                             "missing.conf", "list", stdout=subprocess.PIPE,
                                             stderr=subprocess.PIPE)  # fmt: skip
    out, err = await asyncio.wait_for(p.communicate(), 60)
    assert p.returncode == 0, err.decode()
    result = json.loads(out)
    assert result["files"] == {"hello.conf": merge(merge(APP, S), N), "app:common.conf": APP}
    assert result["errors"] == {"missing.conf": "ret -1"}
    assert result["list"] == ["bad.conf", "hello.conf"]
    assert (base / "hello.conf").read_bytes() == merge(merge(APP, S), N).encode()
    assert (base / "common.conf").read_text() == APP
