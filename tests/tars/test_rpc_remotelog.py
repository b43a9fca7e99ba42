"""Remote logging: Application.remote_log_handler sends log records to a Log servant (LogF.loggerbyInfo) in batches,
with TarsGo's LogInfo; a stopping application sends what is left; a full queue drops and counts."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from examples.hello.server import SERVANT, HelloImp
from k8stars.tars.protocol.logf import LogInfo, LogServant
from k8stars.tars.rpc import Application, Server
from k8stars.tars.rpc.remotelog import RemoteLogHandler
from tests.conftest import free_port
from tests.tars.test_rpc import CONFIG

LOG_OBJ = "tars.tarslog.LogObj"


class LogCollector(LogServant):
    def __init__(self) -> None:
        self.batches: list[tuple[LogInfo, list[str]]] = []
        self.arrived = asyncio.Event()

    async def logger(self, app: str, server: str, file: str, format: str, buffer: list[str]) -> None:
        raise AssertionError("k8stars sends loggerbyInfo, as TarsGo does")

    async def loggerbyInfo(self, info: LogInfo, buffer: list[str]) -> None:
        self.batches.append((info, buffer))
        self.arrived.set()


@pytest.fixture
async def collector() -> AsyncIterator[tuple[str, LogCollector]]:
    srv = Server(grace_seconds=1)
    servant = LogCollector()
    srv.add_servant(servant, LOG_OBJ, "tcp -h 127.0.0.1 -p 0 -t 60000")
    await srv.start()
    yield f"{LOG_OBJ}@{srv.adapters[LOG_OBJ + 'Adapter'].endpoint}", servant
    await srv.stop(0)


def _app(tmp_path: Path, log_obj: str) -> Application:
    conf = tmp_path / "HelloServer.conf"
    text = CONFIG.format(admin=free_port(), port=free_port())
    conf.write_text(text.replace("      logLevel=INFO\n", f"      logLevel=INFO\n      log={log_obj}\n"))
    app = Application.from_config(conf)
    app.add_servant(HelloImp(), SERVANT)
    return app


async def test_records_go_to_the_log_service_in_batches(collector: tuple[str, LogCollector], tmp_path: Path) -> None:
    obj, servant = collector
    app = _app(tmp_path, obj)
    await app.start()
    logger = logging.getLogger("k8stars.test.access")
    handler = app.remote_log_handler("access")
    logger.addHandler(handler)
    try:
        logger.warning("first %s", 1)
        logger.warning("second")
        await asyncio.wait_for(servant.arrived.wait(), 5)  # within the 1 s batch interval
        logger.warning("last")
    finally:
        logger.removeHandler(handler)
        await app.stop()  # sends "last"
    info, first = servant.batches[0]
    assert (info.appname, info.servername, info.sFilename, info.sFormat) == ("TestApp", "HelloServer", "access",
                                                                             "%Y%m%d")  # fmt: skip
    assert (info.bHasSufix, info.bHasAppNamePrefix, info.sConcatStr, info.sSepar) == (True, True, "_", "|")
    assert [line.split("|", 2)[1:] for line in first] == [["WARNING", "first 1\n"], ["WARNING", "second\n"]]
    assert [line.split("|")[-1] for _, lines in servant.batches[1:] for line in lines] == ["last\n"]
    assert handler.sent == 3 and handler.failed == 0


async def test_no_log_service_is_a_clear_error_and_a_full_queue_drops(tmp_path: Path) -> None:
    app = _app(tmp_path, "")
    with pytest.raises(ValueError, match="no log service: the server config has no log="):
        app.remote_log_handler("x")
    handler = RemoteLogHandler(app.comm, f"{LOG_OBJ}@tcp -h 127.0.0.1 -p 1", "A", "B", queue_size=2)
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "m", None, None)
    for _ in range(5):
        handler.emit(record)
    assert len(handler.pending) == 2 and handler.dropped == 3
    await handler.aclose()  # nothing listens on port 1: the batch fails, is counted, nothing hangs
    assert handler.failed == 2 and not handler.pending
    await app.comm.close()
