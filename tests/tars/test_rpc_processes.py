"""A server of several processes (``processes=2`` in its config): both answer on the one port, AdminObj is the first
process's, and nothing outlives the first process, whether it stops on SIGTERM or is killed."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from k8stars.tars.idl.compiler import load_runtime
from k8stars.tars.protocol.adminf import AdminFProxy
from k8stars.tars.rpc import Communicator, ServantProxy
from k8stars.tars.rpc.processes import parse_processes
from k8stars.testing.peers import GO_SRC
from k8stars.testing.procs import alive, children, free_port, stop_process, wait_port

SERVANT = "Test.PidServer.PidObj"
ECHO = load_runtime([GO_SRC / "echo.tars"]).interfaces()["Test::Echo"]
ROOT = Path(__file__).resolve().parents[2]

# a server program: its echo answers with the pid of the process that served the call
PROGRAM = """
import asyncio, os, sys
from k8stars.tars.idl.compiler import load_runtime
from k8stars.tars.rpc import Application, Servant
from k8stars.testing.peers import GO_SRC

class PidImp(Servant):
    __tars_interface__ = load_runtime([GO_SRC / "echo.tars"]).interfaces()["Test::Echo"]

    async def echo(self, s):
        return 0, str(os.getpid())

app = Application.from_config(sys.argv[1])
app.add_servant(PidImp(), "Test.PidServer.PidObj")
asyncio.run(app.run())
"""

CONFIG = """<tars>
  <application>
    <server>
      app=Test
      server=PidServer
      local=tcp -h 127.0.0.1 -p {admin} -t 10000
      processes=2
      logLevel=INFO
      <Test.PidServer.PidObjAdapter>
        endpoint=tcp -h 127.0.0.1 -p {port} -t 60000
        servant=Test.PidServer.PidObj
      </Test.PidServer.PidObjAdapter>
    </server>
  </application>
</tars>
"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int, int]]:
    port, admin = free_port(), free_port()
    conf = tmp_path / "PidServer.conf"
    conf.write_text(CONFIG.format(port=port, admin=admin))
    program = tmp_path / "pid_server.py"
    program.write_text(PROGRAM)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, str(program), str(conf)], env=env, stdin=subprocess.DEVNULL)
    try:
        wait_port(port, proc)
        wait_port(admin, proc)
        yield proc, port, admin
    finally:
        stop_process(proc)


async def wait_gone(pids: set[int], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert not any(alive(p) for p in pids), f"still running: {[p for p in pids if alive(p)]}"


async def pids_answering(port: int, connections: int = 24) -> set[int]:
    """The pids that answer, over several connections (the kernel spreads connections, not calls)."""
    seen: set[int] = set()
    for _ in range(connections):
        async with Communicator() as comm:
            proxy = comm.string_to_proxy(ServantProxy, f"{SERVANT}@tcp -h 127.0.0.1 -p {port} -t 60000", ECHO)
            ret, pid = await proxy.tars_options(timeout_ms=10000).tars_invoke("echo", ("x",))
            assert ret == 0
            seen.add(int(pid))
    return seen


async def test_two_processes_answer_on_one_port_and_stop_together(
    server: tuple[subprocess.Popen[bytes], int, int],
) -> None:
    proc, port, admin = server
    seen: set[int] = set()
    deadline = time.monotonic() + 60  # the copy may still be starting (a loaded machine): ask until it answers too
    for _ in range(300):  # 24 connections all hashed to one process: 2**-23 a round
        seen |= await pids_answering(port)
        if len(seen) == 2 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    copies = children(proc.pid)
    assert seen == {proc.pid} | copies and len(copies) == 1, (seen, proc.pid, copies)
    async with Communicator() as comm:  # AdminObj is the first process's alone
        admin_obj = comm.string_to_proxy(AdminFProxy, f"AdminObj@tcp -h 127.0.0.1 -p {admin}")
        assert await admin_obj.getPid() == proc.pid
        status = await admin_obj.notify("tars.viewstatus")
        assert f"processes: 2 (copies: {next(iter(copies))})" in status
    os.kill(proc.pid, signal.SIGTERM)
    assert await asyncio.to_thread(proc.wait, 60) == 0
    await wait_gone(copies)


async def test_copies_stop_when_the_first_process_is_killed(server: tuple[subprocess.Popen[bytes], int, int]) -> None:
    proc, _, _ = server
    deadline = time.monotonic() + 30
    while not children(proc.pid) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    copies = children(proc.pid)
    assert len(copies) == 1
    os.kill(proc.pid, signal.SIGKILL)
    await asyncio.to_thread(proc.wait, 60)
    await wait_gone(copies)  # the pipe from the first process closed: the copy stopped by itself


def test_processes_option() -> None:
    assert parse_processes("3") == 3
    assert parse_processes("max") == parse_processes(0) >= 1
    for bad in ("-1", "two", ""):
        with pytest.raises(ValueError, match="processes="):
            parse_processes(bad)
