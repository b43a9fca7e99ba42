"""The log service (`k8stars log`, tars.tarslog.LogObj): TarsFramework LogServer's file names for logger and every
LogInfo variant, names that would leave the log directory refused, the bounded writer (pending cap, LRU of open
files, stdout), through TARS RPC and the CLI, and a real TarsGo v1.4.6 server's remote logger."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from k8stars.services.log.app import LOG_OBJ, LogService, LogServiceError, LogServiceOptions
from k8stars.services.log.naming import BadLogName, NamingRules, info_path, logger_path, set_dir
from k8stars.services.log.writer import LogWriter
from k8stars.tars.errors import TarsRpcError
from k8stars.tars.protocol.logf import LogInfo, LogProxy
from k8stars.tars.rpc import Application, Communicator
from k8stars.testing.procs import free_port, stop_process, wait_port

ROOT = Path(__file__).resolve().parents[2]
GO_SRC = Path(__file__).resolve().parent / "go_log"
NOW = 1_700_000_000.0  # a fixed instant; names use local time, as TarsFramework's do
RULES = NamingRules()


def day(now: float = NOW, fmt: str = "%Y%m%d") -> str:
    return time.strftime(fmt, time.localtime(now))


def tarsgo_info(**kw: object) -> LogInfo:
    """The LogInfo TarsGo's remote logger sends (NewRemoteTimeWriter's defaults)."""
    info = LogInfo(appname="Test", servername="GoServer", sFilename="biz", sFormat="%Y%m%d")
    for k, v in kw.items():
        setattr(info, k, v)
    return info


# -- names, no I/O --------------------------------------------------------------------------------------------------
def test_logger_names_as_tarsframework() -> None:
    assert logger_path("Test", "Hello", "biz", "%Y%m%d", NOW, RULES) == ("Test", "Hello",
                                                                          f"Test.Hello_biz_{day()}.log")  # fmt: skip
    assert logger_path("Test", "Hello", "", "%Y%m%d%H", NOW, RULES)[-1] == f"Test.Hello_{day(fmt='%Y%m%d%H')}.log"
    hourly = NamingRules(hourly=frozenset({"Test.Hello"}))
    assert logger_path("Test", "Hello", "x", "%Y%m%d", NOW, hourly)[-1] == f"Test.Hello_x_{day(fmt='%Y%m%d%H')}.log"


def test_loginfo_variants_as_tarsframework() -> None:
    assert info_path(tarsgo_info(), NOW, RULES) == ("Test", "GoServer", f"Test.GoServer_biz_{day()}.log")
    assert info_path(tarsgo_info(sFilename=""), NOW, RULES)[-1] == f"Test.GoServer_{day()}.log"
    assert info_path(tarsgo_info(bHasAppNamePrefix=False), NOW, RULES)[-1] == f"biz_{day()}.log"
    assert info_path(tarsgo_info(bHasSufix=False), NOW, RULES)[-1] == f"Test.GoServer_biz_{day()}"
    assert info_path(tarsgo_info(sConcatStr="-"), NOW, RULES)[-1] == f"Test.GoServer-biz-{day()}.log"
    # the set division is a directory between app and server: name+area+group, or name+area for group *
    assert info_path(tarsgo_info(setdivision="gz.a.1"), NOW, RULES)[:3] == ("Test", "gza1", "GoServer")
    assert info_path(tarsgo_info(setdivision="gz.a.*"), NOW, RULES)[:3] == ("Test", "gza", "GoServer")
    assert set_dir("gz.a") == "" and set_dir("") == ""
    # square brackets and the separator change no name (the service writes records without a head)
    assert info_path(tarsgo_info(bHasSquareBracket=True, sSepar="#"), NOW, RULES) == info_path(tarsgo_info(), NOW,
                                                                                                 RULES)  # fmt: skip


def test_log_types_roll_by_epoch_aligned_periods() -> None:
    t = 1_700_003_700.0  # 2023-11-14 23:15 UTC
    assert info_path(tarsgo_info(sLogType="hour", sFormat=""), t, RULES)[-1] == \
        f"Test.GoServer_biz_{day(t - t % 3600, '%Y%m%d%H')}.log"  # fmt: skip
    # 10minute: the caller's format applies, at the start of the 10-minute period
    got = info_path(tarsgo_info(sLogType="10minute", sFormat="%Y%m%d%H%M"), t, RULES)[-1]
    assert got == f"Test.GoServer_biz_{day(t - t % 600, '%Y%m%d%H%M')}.log"
    assert info_path(tarsgo_info(sLogType="minute", sFormat=""), t, RULES)[-1].endswith(
        day(t - t % 600, "%Y%m%d%H%M") + ".log")  # fmt: skip
    assert info_path(tarsgo_info(sLogType="2day", sFormat=""), t, RULES)[-1].endswith(
        day(t - t % 172800) + ".log")  # fmt: skip
    assert info_path(tarsgo_info(sLogType="weekly"), t, RULES) == info_path(tarsgo_info(), t, RULES)  # no such type
    # the service's --log-type wins, with the type's own format
    rules = NamingRules(log_types={"Test.GoServer.biz": "hour"})
    assert info_path(tarsgo_info(), t, rules)[-1] == f"Test.GoServer_biz_{day(t - t % 3600, '%Y%m%d%H')}.log"


@pytest.mark.parametrize("kw", [{"appname": "../etc"}, {"servername": "a/b"}, {"sFilename": "x/../../y"},
                                {"sFilename": ".."}, {"appname": ""}, {"sConcatStr": "/"}, {"sFormat": "%Y/%m"},
                                {"appname": "a\x00b"}, {"sFilename": "x" * 300},
                                {"bHasAppNamePrefix": False, "sFilename": ""}])  # fmt: skip
def test_names_that_leave_the_directory_are_refused(kw: dict[str, object]) -> None:
    with pytest.raises(BadLogName):
        info_path(tarsgo_info(**kw), NOW, RULES)


def test_logger_bad_names_are_refused() -> None:
    for args in (("..", "S", ""), ("A", "S/..", ""), ("A", "S", "../x"), ("A", "", "f")):
        with pytest.raises(BadLogName, match=r"not allowed|empty"):
            logger_path(*args, "%Y%m%d", NOW, RULES)
    with pytest.raises(BadLogName, match="format"):
        logger_path("A", "S", "f", "%Y/%m%d", NOW, RULES)


def test_options() -> None:
    for bad, why in [({"endpoint": "udp -h 127.0.0.1 -p 1"}, "tcp endpoint"), ({"endpoint": "nonsense"}, "--endpoint"),
                     ({"max_pending": 10}, "--max-pending"), ({"max_open": 0}, "--max-open-files"),
                     ({"hourly": ["App"]}, "--hourly"), ({"log_types": ["A.S.f"]}, "--log-type"),
                     ({"hourly": ["../x.y"]}, "--hourly"), ({"locator": "x"}, "--locator"),
                     ({"log_dir": ""}, "--log-dir")]:  # fmt: skip
        with pytest.raises(LogServiceError, match=why):
            LogService(LogServiceOptions(**bad))  # type: ignore[arg-type]


# -- the writer -------------------------------------------------------------------------------------------------------
async def test_a_flood_is_dropped_and_counted_within_the_cap(tmp_path: Path) -> None:
    w = LogWriter(tmp_path, max_pending=4096)
    # 100 records of 100 bytes, each charged 64 more: 24 fit under 4096
    w.add(("A", "S", "f.log"), ["x" * 99 + "\n"] * 100, "", "A.S/f")
    assert w.pending_bytes <= 4096 and w.counters.received == 24 and w.counters.dropped == 76
    w.add(("A", "S", "g.log"), [""] * 1000, "", "A.S/g")  # empty records cost too: no unbounded list of nothing
    assert w.pending_bytes <= 4096 and w.counters.dropped == 76 + 998  # 2 fitted in what was left
    w.flush()
    assert (tmp_path / "A" / "S" / "f.log").stat().st_size == 2400 and w.pending_bytes == 0
    w.add(("A", "S", "f.log"), ["y\n"], "", "A.S/f")  # room again after the flush
    await w.stop()
    assert w.counters.written == 27 and (tmp_path / "A/S/f.log").read_text().endswith("y\n")


async def test_open_files_are_bounded_and_closed_at_stop(tmp_path: Path) -> None:
    w = LogWriter(tmp_path, max_open=2)
    for round_ in range(2):
        for i in range(5):
            w.add(("A", "S", f"f{i}.log"), [f"r{round_}\n"], "", "A.S/f")
            w.flush()
            assert w.open_files <= 2
    await w.stop()
    assert w.open_files == 0
    assert [(tmp_path / "A/S" / f"f{i}.log").read_text() for i in range(5)] == ["r0\nr1\n"] * 5


async def test_stdout_one_line_per_record(tmp_path: Path) -> None:
    out = io.StringIO()
    w = LogWriter(tmp_path, stdout=out)
    w.add(("A", "S", "f.log"), ["one\n", "two\nlines\n", "no newline"], "127.0.0.1|", "A.S/f")
    await w.stop()
    assert out.getvalue() == "A.S/f: one\nA.S/f: two\nA.S/f: lines\nA.S/f: no newline\n"
    assert (tmp_path / "A/S/f.log").read_text() == "127.0.0.1|one\n127.0.0.1|two\nlines\n127.0.0.1|no newline\n"


async def test_a_symlink_in_the_directory_is_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.write_text("")
    (tmp_path / "logs/A/S").mkdir(parents=True)
    os.symlink(outside, tmp_path / "logs/A/S/f.log")
    w = LogWriter(tmp_path / "logs")
    w.add(("A", "S", "f.log"), ["x\n"], "", "A.S/f")
    await w.stop()
    assert outside.read_text() == "" and w.counters.failed == 1


# -- through TARS RPC -------------------------------------------------------------------------------------------------
async def start_service(tmp_path: Path, **kw: object) -> LogService:
    options = LogServiceOptions(log_dir=str(tmp_path / "logs"), endpoint=f"tcp -h 127.0.0.1 -p {free_port()}",
                                **kw)  # type: ignore[arg-type]  # fmt: skip
    svc = LogService(options)
    await svc.start()
    return svc


async def test_logger_and_loggerbyinfo_through_rpc(tmp_path: Path) -> None:
    svc = await start_service(tmp_path)
    try:
        async with Communicator() as comm:
            prx = comm.string_to_proxy(LogProxy, f"{LOG_OBJ}@tcp -h 127.0.0.1 -p {svc.endpoint.port}")
            await prx.logger("Test", "Hello", "biz", "%Y%m%d", ["a line\n", "another\n"])
            await prx.tars_options(context={"node_name": "pod-1"}).loggerbyInfo(
                tarsgo_info(sSepar="#", setdivision="gz.a.1"), ["from a set\n"])  # fmt: skip
            await prx.loggerbyInfo(tarsgo_info(bHasAppNamePrefix=False, bHasSufix=False), ["bare\n"])
            with pytest.raises(TarsRpcError, match="not allowed"):
                await prx.logger("..", "Hello", "biz", "%Y%m%d", ["escape\n"])
            with pytest.raises(TarsRpcError, match="not allowed"):
                await prx.loggerbyInfo(tarsgo_info(sFilename="../../../x"), ["escape\n"])
    finally:
        await svc.stop()
    assert str(svc.writer.counters) == "received 4, written 4, dropped 0, refused 2, failed 0"
    logs = tmp_path / "logs"
    today = day(time.time())
    hello = logs / "Test/Hello" / f"Test.Hello_biz_{today}.log"
    assert hello.read_text() == "127.0.0.1|a line\n127.0.0.1|another\n"
    assert (logs / "Test/gza1/GoServer" / f"Test.GoServer_biz_{today}.log").read_text() == "pod-1#from a set\n"
    assert (logs / "Test/GoServer" / f"biz_{today}").read_text() == "127.0.0.1|bare\n"
    every = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert len(every) == 3 and all(p.startswith("logs/Test/") for p in every), every


async def test_a_flood_through_rpc_stays_bounded(tmp_path: Path) -> None:
    svc = await start_service(tmp_path, max_pending=64 * 1024, ip_prefix=False)
    record = "x" * 1023 + "\n"
    try:
        async with Communicator() as comm:
            prx = comm.string_to_proxy(LogProxy, f"{LOG_OBJ}@tcp -h 127.0.0.1 -p {svc.endpoint.port}")
            # 4 MB at once; each call alone is over the cap, whenever the writer flushes
            calls = [prx.loggerbyInfo(tarsgo_info(), [record] * 100) for _ in range(40)]
            await asyncio.gather(*calls)
            assert svc.writer.pending_bytes <= 64 * 1024
    finally:
        await svc.stop()
    c = svc.writer.counters
    assert c.dropped > 0 and c.received + c.dropped == 4000 and c.written == c.received and c.failed == 0
    (file,) = (tmp_path / "logs/Test/GoServer").iterdir()
    assert file.stat().st_size == 1024 * c.written


async def test_no_ip_prefix(tmp_path: Path) -> None:
    svc = await start_service(tmp_path, ip_prefix=False)
    try:
        async with Communicator() as comm:
            prx = comm.string_to_proxy(LogProxy, f"{LOG_OBJ}@tcp -h 127.0.0.1 -p {svc.endpoint.port}")
            await prx.logger("Test", "Hello", "", "%Y%m%d", ["plain\n"])
    finally:
        await svc.stop()
    assert [p.read_text() for p in (tmp_path / "logs/Test/Hello").iterdir()] == ["plain\n"]


def k8stars(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "k8stars", *args], capture_output=True, text=True, timeout=60,
                          cwd=ROOT)  # fmt: skip


async def test_the_process_writes_echoes_and_counts(tmp_path: Path) -> None:
    port, admin = free_port(), free_port()
    argv = [sys.executable, "-m", "k8stars", "log", "--log-dir", str(tmp_path), "--stdout",
            "--endpoint", f"tcp -h 127.0.0.1 -p {port}",
            "--admin-endpoint", f"tcp -h 127.0.0.1 -p {admin}"]  # fmt: skip
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        await asyncio.to_thread(wait_port, port, proc)
        args = '{"app": "Test", "server": "Hello", "file": "", "format": "%Y%m%d", "buffer": ["from the shell\\n"]}'
        r = k8stars("call", f"{LOG_OBJ}@tcp -h 127.0.0.1 -p {port}", "logger", args)
        assert r.returncode == 0, r
        r = k8stars("call", f"AdminObj@tcp -h 127.0.0.1 -p {admin}", "notify", '{"command": "tars.logstat"}')
        assert "received 1," in r.stdout, r
    finally:
        stop_process(proc)
    out = proc.stdout.read().decode() if proc.stdout else ""
    assert proc.returncode == 0 and "Test.Hello: from the shell\n" in out, out
    assert [p.read_text() for p in (tmp_path / "Test/Hello").iterdir()] == ["127.0.0.1|from the shell\n"]
    r = k8stars("log", "--log-type", "bad")
    assert r.returncode == 2 and "--log-type 'bad'" in r.stderr, r


PY_CONF = """<tars>
  <application>
    <client>
      locator=tars.tarsregistry.QueryObj@tcp -h 127.0.0.1 -p 1
    </client>
    <server>
      app=TestApp
      server=HelloServer
      localip=127.0.0.1
      local=tcp -h 127.0.0.1 -p {admin} -t 10000
      log=tars.tarslog.LogObj@tcp -h 127.0.0.1 -p {port}
    </server>
  </application>
</tars>
"""


async def test_a_k8stars_server_remote_log_handler_writes_its_file(tmp_path: Path) -> None:
    svc = await start_service(tmp_path)
    try:
        conf = tmp_path / "HelloServer.conf"
        conf.write_text(PY_CONF.format(admin=free_port(), port=svc.endpoint.port))
        app = Application.from_config(conf)
        await app.start()
        logger = logging.getLogger("k8stars.test.log_service")
        handler = app.remote_log_handler("access")
        logger.addHandler(handler)
        try:
            logger.warning("first %s", 1)
            logger.warning("second")
        finally:
            logger.removeHandler(handler)
            await app.stop()  # sends what is left
    finally:
        await svc.stop()
    (file,) = (tmp_path / "logs/TestApp/HelloServer").iterdir()
    assert file.name.startswith("TestApp.HelloServer_access_") and file.name.endswith(".log"), file
    lines = file.read_text().splitlines()
    # the handler sends lines without a newline: each still gets its own line
    got = [(line.split("|")[0], line.split("|")[-1]) for line in lines]
    assert got == [("127.0.0.1", "first 1"), ("127.0.0.1", "second")], lines


# -- a real TarsGo server's remote logger ---------------------------------------------------------------------------
GO_CONF = """<tars>
  <application>
    <server>
      app=Test
      server=GoServer
      localip=127.0.0.1
      logpath={path}
      log=tars.tarslog.LogObj@tcp -h 127.0.0.1 -p {port}
    </server>
    <client>
      property=tars.tarsproperty.PropertyObj@tcp -h 127.0.0.1 -p {property_port}
    </client>
  </application>
</tars>
"""


def log_peer() -> Path:
    """tests/services/go_log built once per source hash into the peers cache (TarsGo v1.4.6)."""
    from k8stars.testing.peers import go_program

    return go_program(GO_SRC, "logpeer")


async def test_a_tarsgo_remote_logger_writes_its_file(tmp_path: Path) -> None:
    peer = log_peer()
    svc = await start_service(tmp_path)
    try:
        conf = tmp_path / "GoServer.conf"
        # TarsGo's remote logger needs property= (it reports its sends there; nobody listens, nothing waits for it)
        conf.write_text(GO_CONF.format(path=tmp_path / "local", port=svc.endpoint.port, property_port=free_port()))
        before = day(time.time())
        r = await asyncio.to_thread(subprocess.run, [str(peer), f"--config={conf}", "biz:first line",
                                                     "biz:second line", "audit:who did it"], capture_output=True,
                                    text=True, timeout=60, cwd=tmp_path)  # fmt: skip
        assert r.returncode == 0, r.stderr[-4000:]  # the whole panic, should TarsGo's writer panic
    finally:
        await svc.stop()
    go = tmp_path / "logs/Test/GoServer"
    names = sorted(p.name for p in go.iterdir())
    days = (before, day(time.time()))  # the same day unless the test ran across midnight
    assert names in [[f"Test.GoServer_audit_{d}.log", f"Test.GoServer_biz_{d}.log"] for d in days], names
    biz = (go / names[1]).read_text().splitlines()
    # TarsGo's lines: time|file:function:line|LEVEL|message, each after the sender's address (the ip prefix)
    assert [line.split("|")[0] for line in biz] == ["127.0.0.1"] * 2, biz
    assert [line.split("|")[-2:] for line in biz] == [["INFO", "first line"], ["INFO", "second line"]], biz
    assert (go / names[0]).read_text().endswith("|INFO|who did it\n")
