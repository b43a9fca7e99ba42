"""The log service against a hostile log directory and hostile callers (issue 16, items 6 and 13), through TARS RPC:
no write ever leaves the log directory, whatever was planted in it (a symlinked app or set directory, a symlinked,
hard-linked or FIFO file), and no caller can forge a line (control characters in names are refused, a node name
holding a newline is escaped)."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from k8stars.services.log.app import LOG_OBJ, LogService, LogServiceOptions
from k8stars.tars.errors import TarsRpcError
from k8stars.tars.protocol.logf import LogInfo, LogProxy
from k8stars.tars.rpc import Communicator
from k8stars.testing.procs import free_port


def today(fmt: str = "%Y%m%d") -> str:
    return time.strftime(fmt, time.localtime())


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[LogService]:
    (tmp_path / "logs").mkdir()
    options = LogServiceOptions(log_dir=str(tmp_path / "logs"), endpoint=f"tcp -h 127.0.0.1 -p {free_port()}")
    svc = LogService(options)
    await svc.start()
    yield svc
    await svc.stop()


@pytest.fixture
async def log(service: LogService) -> AsyncIterator[LogProxy]:
    async with Communicator() as comm:
        yield comm.string_to_proxy(LogProxy, f"{LOG_OBJ}@tcp -h 127.0.0.1 -p {service.endpoint.port}")


def files_below(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file() and not p.is_symlink())


async def test_nothing_planted_in_the_log_directory_leads_outside(
    tmp_path: Path, service: LogService, log: LogProxy
) -> None:
    logs, outside = tmp_path / "logs", tmp_path / "outside"
    outside.mkdir()
    victim = outside / "victim.log"
    victim.write_text("")
    os.symlink(outside, logs / "Evil")  # an app's directory (before: records went to outside/S/...)
    (logs / "Test").mkdir()
    os.symlink(outside, logs / "Test" / "gza1")  # a set's directory
    (logs / "Hard/S").mkdir(parents=True)
    os.link(victim, logs / "Hard/S" / f"Hard.S_f_{today()}.log")  # a hard link to a file outside
    (logs / "Fifo/S").mkdir(parents=True)
    os.mkfifo(logs / "Fifo/S" / f"Fifo.S_f_{today()}.log")  # would block a writer forever
    await log.logger("Evil", "S", "f", "%Y%m%d", ["one\n"])
    await log.loggerbyInfo(LogInfo(appname="Test", servername="S", sFilename="f", setdivision="gz.a.1"), ["two\n"])
    await log.logger("Hard", "S", "f", "%Y%m%d", ["three\n"])
    await log.logger("Fifo", "S", "f", "%Y%m%d", ["four\n"])
    await log.logger("Fine", "S", "f", "%Y%m%d", ["five\n"])
    service.writer.flush()
    assert files_below(outside) == ["victim.log"] and victim.read_text() == ""
    assert service.writer.counters.failed == 4 and service.writer.counters.written == 1
    assert (logs / "Fine/S" / f"Fine.S_f_{today()}.log").read_text() == "127.0.0.1|five\n"


async def test_no_caller_can_forge_a_line(tmp_path: Path, service: LogService, log: LogProxy) -> None:
    for bad in ("biz\n127.0.0.1|forged", "biz\r", "biz\x1b[2J"):
        with pytest.raises(TarsRpcError, match="control characters"):
            await log.logger("Test", "S", bad, "%Y%m%d", ["x\n"])
    with pytest.raises(TarsRpcError, match="control characters"):
        await log.loggerbyInfo(LogInfo(appname="Test", servername="S\n", sFilename="f"), ["x\n"])
    await log.tars_options(context={"node_name": "pod-1\n10.0.0.1|forged"}).logger("Test", "S", "f", "%Y%m%d",
                                                                                   ["real\n"])  # fmt: skip
    service.writer.flush()
    assert files_below(tmp_path / "logs") == [f"Test/S/Test.S_f_{today()}.log"]
    text = (tmp_path / "logs/Test/S" / f"Test.S_f_{today()}.log").read_text()
    assert text == "pod-1\\n10.0.0.1|forged|real\n"  # one line, the newline escaped
