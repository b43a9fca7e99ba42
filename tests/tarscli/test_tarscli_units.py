"""tarscli's parts in isolation: durations, the CLI surface, mergeconf, port leases, hzcheck, syncdir, the proxy
cache, prestop timing and the heartbeat rules."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from k8stars.tars import confmerge
from k8stars.tars.endpoint import Endpoint
from k8stars.tars.protocol.endpointf import EndpointF
from k8stars.tars.protocol.nodef import ServerInfo as NodeServerInfo
from k8stars.tars.protocol.queryf import QueryF_findObjectByIdInSameGroup_result, QueryFServant
from k8stars.tars.rpc import Server
from k8stars.tarscli import hzcheck
from k8stars.tarscli.env import format_duration, parse_duration, write_atomic
from k8stars.tarscli.framework import Framework, FrameworkError
from k8stars.tarscli.meta import ServerConf, ServerInfo, load_meta
from k8stars.tarscli.node import Heartbeats
from k8stars.tarscli.ports import PortAllocator, PortError
from k8stars.tarscli.prestop import Timing
from k8stars.tarscli.syncdir import sync
from tests.conftest import free_port

TARSCLI = [sys.executable, "-m", "k8stars.tarscli"]


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TARSCLI, *args], env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=60)  # fmt: skip


# -- durations -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "seconds"),
    [("", 0), ("0", 0), ("30s", 30), ("5m", 300), ("1h", 3600), ("1d", 86400), ("500ms", 0.5), ("-2s", -2),
     ("100us", 1e-4), ("10ns", 1e-8), ("1.5s", 1.5)],
)  # fmt: skip
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["100", "s", "1x", "1 s s", "ten s"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


def test_format_duration() -> None:
    assert [format_duration(s) for s in (0, 30, 90, 3600, 0.25)] == ["0", "30s", "90s", "1h", "250ms"]


# -- the command line ------------------------------------------------------------------------------------------------
def test_bare_tarscli_prints_help() -> None:
    r = run_cli()
    assert r.returncode == 0 and "Usage: tarscli" in r.stdout
    for cmd in ("genconf", "supervisor", "hzcheck", "prestop", "notify", "syncdir", "version", "help"):
        assert cmd in r.stdout


def test_help_of_every_command_and_k8stars_help_form() -> None:
    r = run_cli("help")
    assert r.returncode == 0
    for cmd in ("genconf", "supervisor", "hzcheck", "prestop", "notify", "syncdir", "version"):
        assert f"------ {cmd} -----" in r.stdout
    sup = run_cli("supervisor", "help")  # K8STARS's `tarscli <cmd> help`
    assert sup.returncode == 0
    for var in ("TARS_START_PATH", "TARS_STOP_PATH", "TARS_REPORT_INTERVAL", "TARS_DISABLE_FLOW", "TARS_CHECK_INTERVAL",
                "TARS_BEFORE_CHECK_SCRIPT", "TARS_CHECK_SCRIPT_TIMEOUT", "TARS_PRESTOP_WAITTIME",
                "TARS_ACTIVATING_TIMEOUT", "TARS_CHECK_RETRY_TIMEOUT", "SERVER_VERSION", "TARS_PATH", "POD_IP",
                "TARS_NAMESPACE", "TARS_RAND_PORT_MIN", "TARS_RAND_PORT_MAX", "TARS_APPLICATION", "TARS_SERVER",
                "TARS_SET_ID", "TARS_LOCATOR", "TARS_BUILD_SERVER", "TARS_MERGE_CONF", "TARS_EP_UPTIME"):  # fmt: skip
        assert var in sup.stdout, var
    assert run_cli("notify", "help").returncode == 0
    assert "TARS_SYNC_DIRECTORY" in run_cli("syncdir", "--help").stdout


def test_version_and_unknown_command() -> None:
    from k8stars import __version__

    assert run_cli("version").stdout.strip() == __version__
    r = run_cli("nope")
    assert r.returncode == 2 and "No such command" in r.stderr


# -- mergeconf -------------------------------------------------------------------------------------------------------
def test_merge_replaces_in_place_adds_after_and_keeps_comments() -> None:
    base = "<tars>\n  # top\n  a=1\n  b=2\n  <x>\n    k=v\n  </x>\n</tars>\n"
    overlay = ("<tars>\n  # new b\n  b=3\n  c\n  <x>\n    k=w\\=1\n  </x>\n  <y>\n    z=1\n  </y>\n</tars>\n"
               "<tars>\n  d=4\n</tars>\n")  # fmt: skip
    out = confmerge.merge_text(base, overlay)
    assert out == ("<tars>\n  # top\n  a=1\n  # new b\n  b=3\n  c\n  d=4\n  <x>\n    k=w\\=1\n  </x>\n"
                   "  <y>\n    z=1\n  </y>\n</tars>\n")  # fmt: skip
    assert confmerge.merge_text(out, overlay) == out  # merging twice changes nothing (comments not doubled)


def test_merge_skips_kind_clashes_and_reports_bad_files() -> None:
    assert confmerge.merge_text("<t>\n  a=1\n  <b>\n  </b>\n</t>\n", "<t>\n  <a>\n  </a>\n  b=2\n</t>\n") == (
        "<t>\n  a=1\n  <b>\n  </b>\n</t>\n"
    )
    with pytest.raises(confmerge.MergeConfError, match="xml end not match :b"):
        confmerge.parse("<a>\n</b>\n")
    with pytest.raises(confmerge.MergeConfError, match="never closed"):
        confmerge.parse("<a>\n")


# -- ports -----------------------------------------------------------------------------------------------------------
def test_port_leases_are_seen_by_other_processes() -> None:
    port = free_port("127.0.0.1")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys\nfrom k8stars.tarscli.ports import PortAllocator\n"
         f"a = PortAllocator({port}, {port})\nprint(a.allocate('tcp -h 127.0.0.1 -p 0'), flush=True)\n"
         "sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and int(holder.stdout.readline()) == port
        # free to bind, but leased by the other tarscli: not handed out again
        with pytest.raises(PortError):
            PortAllocator(port, port).allocate("tcp -h 127.0.0.1 -p 0")
    finally:
        holder.communicate("", timeout=10)
    assert PortAllocator(port, port).allocate("tcp -h 127.0.0.1 -p 0") == port  # the lease died with its holder


def _two_free_ports() -> int:
    """A port p such that p and p+1 are free for TCP and UDP (other tests take ephemeral ports meanwhile)."""
    for _ in range(50):
        port = free_port("127.0.0.1")
        try:
            for p in (port, port + 1):
                for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                    with socket.socket(socket.AF_INET, kind) as s:
                        s.bind(("127.0.0.1", p))
        except OSError:
            continue
        return port
    raise AssertionError("no two consecutive free ports")


def test_ports_in_use_are_skipped_per_protocol() -> None:
    port = _two_free_ports()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", port))
        with pytest.raises(PortError):
            PortAllocator(port, port).allocate("udp -h 127.0.0.1 -p 0")
    a = PortAllocator(port, port + 1)
    first = a.allocate("tcp -h 127.0.0.1 -p 0")
    second = a.allocate("tcp -h 127.0.0.1 -p 0")
    assert {first, second} == {port, port + 1}
    a.release()
    assert a.leased == []


# -- hzcheck ---------------------------------------------------------------------------------------------------------
def _env(tmp_path: Path) -> object:
    from k8stars.tarscli.env import TarsEnv

    return TarsEnv.create(str(tmp_path), "127.0.0.5")


def test_hzcheck_states(tmp_path: Path) -> None:
    env = _env(tmp_path)
    status = tmp_path / "data" / "check_status"
    assert hzcheck.check(env, 30) == (False, "not ready")  # type: ignore[arg-type]
    write_atomic(status, "activating")
    assert hzcheck.check(env, 30) == (False, "not active:activating")  # type: ignore[arg-type]
    write_atomic(status, "active")
    assert hzcheck.check(env, 30) == (True, "active")  # type: ignore[arg-type]
    write_atomic(status, "deactivating")  # K8STARS said ready here; a pod in prestop is on its way out
    assert hzcheck.check(env, 30) == (False, "not active:deactivating")  # type: ignore[arg-type]
    write_atomic(status, "active")
    old = time.time() - 61
    os.utime(status, (old, old))
    assert hzcheck.check(env, 30) == (False, "supervisor not alive")  # type: ignore[arg-type]
    os.utime(status)
    (tmp_path / "data" / "supervisor.pid").write_text("999999999 1\n")  # a supervisor that is gone
    assert hzcheck.check(env, 30) == (False, "supervisor not alive")  # type: ignore[arg-type]


def test_hzcheck_command(tmp_path: Path) -> None:
    env = {"TARS_PATH": str(tmp_path)}
    r = run_cli("hzcheck", env=env)
    assert r.returncode == 1 and "not ready" in r.stderr
    write_atomic(tmp_path / "data" / "check_status", "active")
    assert run_cli("hzcheck", env=env).returncode == 0


# -- syncdir ---------------------------------------------------------------------------------------------------------
def test_syncdir_copies_configmap_entries(tmp_path: Path) -> None:
    src = tmp_path / "vol"
    (src / "..2024_01_01").mkdir(parents=True)
    (src / "..2024_01_01" / "app.conf").write_text("x=1\n")
    (src / "..data").symlink_to("..2024_01_01")
    (src / "app.conf").symlink_to("..data/app.conf")
    (src / "plain.sh").write_text("echo hi\n")
    (src / "sub").mkdir()
    dst = tmp_path / "bin"
    assert sync(src, dst) == ["app.conf", "plain.sh"]
    assert (dst / "app.conf").read_text() == "x=1\n" and (dst / "app.conf").stat().st_mode & 0o777 == 0o755
    assert int((dst / "plain.sh").stat().st_mtime) == int((src / "plain.sh").stat().st_mtime)
    assert sync(src, dst) == []  # unchanged: skipped
    r = run_cli("syncdir", env={"TARS_SYNC_DIRECTORY": str(src), "TARS_PATH": str(tmp_path / "tp")})
    assert r.returncode == 0 and (tmp_path / "tp" / "bin" / "plain.sh").exists()


# -- the proxy cache -------------------------------------------------------------------------------------------------
class _Query(QueryFServant):
    def __init__(self, eps: list[EndpointF]) -> None:
        self.eps = eps
        self.calls = 0

    async def findObjectByIdInSameGroup(self, id: str) -> QueryF_findObjectByIdInSameGroup_result:
        self.calls += 1
        return QueryF_findObjectByIdInSameGroup_result(0, self.eps, [])


async def test_proxy_cache_fresh_stale_and_ssl(tmp_path: Path) -> None:
    ssl_ep = Endpoint.parse("ssl -h 127.0.0.1 -p 9987 -t 50000").to_endpointf()
    query = _Query([ssl_ep])
    server = Server(grace_seconds=0)
    adapter = server.add_servant(query, "tars.tarsregistry.QueryObj", "tcp -h 127.0.0.1 -p 0 -t 60000")
    await server.start()
    conf = ServerConf(application="A", server="B", locator=f"tars.tarsregistry.QueryObj@{adapter.endpoint}")
    fw = Framework(ServerInfo(conf, "127.0.0.5", str(tmp_path)), tmp_path)
    try:
        assert await fw.resolve("obj1") == "obj1@ssl -h 127.0.0.1 -p 9987 -t 50000"  # K8STARS turned ssl into udp
        assert (tmp_path / "cache_obj1").read_text().strip() == "obj1@ssl -h 127.0.0.1 -p 9987 -t 50000"
        await fw.resolve("obj1")
        assert query.calls == 1  # fresh cache: no lookup
        old = time.time() - 3600
        os.utime(tmp_path / "cache_obj1", (old, old))
        await server.stop(0)  # the registry is down: the stale cache is better than nothing
        assert await fw.resolve("obj1") == "obj1@ssl -h 127.0.0.1 -p 9987 -t 50000"
        with pytest.raises(FrameworkError, match="cannot resolve obj2"):
            await fw.resolve("obj2")
    finally:
        await fw.close()


# -- meta ------------------------------------------------------------------------------------------------------------
def test_meta_defaults_and_unknown_keys(tmp_path: Path) -> None:
    meta = "version: v1\napplication: A\nserver: B\nadapters:\n  - object: X\n    threads: 10\n"
    (tmp_path / "m.yaml").write_text(meta)
    conf = load_meta(tmp_path / "m.yaml")
    assert conf.adapters[0].threads == 10 and conf.adapters[0].maxconns == 200000
    assert conf.adapters[0].endpoint == "tcp -h ${local_ip} -p ${random_port} -t 30000"
    assert conf.local == "tcp -h 127.0.0.1 -p ${random_port} -t 5000"
    assert load_meta(tmp_path / "missing.yaml") == ServerConf()
    info = ServerInfo(conf, "127.0.0.5", "/tars", node="n", build_server="b")
    assert ServerInfo.parse(info.dump()) == info


# -- prestop timing --------------------------------------------------------------------------------------------------
def test_prestop_fits_the_grace_period() -> None:
    t = Timing(grace=90, prestop_wait=80, service_stop=3)
    assert t.wait < 80 and t.total + t.stop_budget < 90
    assert Timing(grace=30, prestop_wait=80, service_stop=3).total + 5 < 30
    assert Timing(grace=5, prestop_wait=80, service_stop=3).wait == 0
    assert Timing(grace=90, prestop_wait=10, service_stop=3).wait == 10


# -- heartbeats ------------------------------------------------------------------------------------------------------
def test_heartbeat_rules() -> None:
    beats = Heartbeats("A", "B")
    assert not beats.seen and not beats.healthy(30)
    beats.beat(NodeServerInfo("A", "B", 1, ""))  # TarsGo's first beat names no adapter
    beats.beat(NodeServerInfo("A", "B", 1, "A.B.XAdapter"))
    now = time.monotonic()
    assert beats.healthy(30, now)
    beats.adapters["A.B.XAdapter"] = now - 40  # one adapter stopped beating
    assert not beats.healthy(30, now)
    beats.adapters["A.B.XAdapter"] = now
    beats.adapters[""] = now - 400  # the adapter-less first beat is never required again
    assert beats.healthy(30, now)
    assert not beats.healthy(30, now + 31)


async def test_heartbeats_wake_the_checker() -> None:
    beats = Heartbeats("A", "B")
    waiter = asyncio.ensure_future(beats.changed.wait())
    beats.beat(NodeServerInfo("A", "B", 1, "x"))
    await asyncio.wait_for(waiter, 1)


def test_the_work_dir_seeds_the_agents_variables(tmp_path: Path) -> None:
    """What the tarsnode init container wrote becomes the default of each variable the agent reads; a variable that
    is set (the user's spec.k8s.env) wins; K8SFramework's sourceable `Key=value` form, quotes and `export` read."""
    from k8stars.tarscli.podfiles import read_environment, seed, write

    init = {"Namespace": "shop", "PodName": "shop-cart-0", "PodIP": "127.0.0.7", "ServerApp": "Shop",
            "ServerName": "Cart", "TARS_TERMINATION_GRACE_PERIOD": "90s", "K8STARS_SERVER_META": "application: Shop\n",
            "Unrelated": "not written"}  # fmt: skip
    assert write(tmp_path, init) == ["util/environment", "conf/_server_meta.yaml"]
    assert "Unrelated" not in (tmp_path / "util" / "environment").read_text()
    env = {"TARS_NODE_DIR": str(tmp_path), "POD_NAME": "mine"}
    seed(env)
    assert env == {
        "TARS_NODE_DIR": str(tmp_path), "POD_NAME": "mine", "POD_IP": "127.0.0.7", "TARS_NAMESPACE": "shop",
        "TARS_TERMINATION_GRACE_PERIOD": "90s", "TARS_SERVER_META": str(tmp_path / "conf" / "_server_meta.yaml"),
    }  # fmt: skip
    (tmp_path / "util" / "environment").write_text("export PodIP='127.0.0.8'  # quoted\n# a comment\nbad 'line\n")
    assert read_environment(tmp_path / "util" / "environment") == {"PodIP": "127.0.0.8"}
    empty: dict[str, str] = {"TARS_NODE_DIR": str(tmp_path / "absent")}
    seed(empty)
    assert empty == {"TARS_NODE_DIR": str(tmp_path / "absent")}  # outside a pod: nothing
