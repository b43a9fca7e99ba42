"""``k8stars registry --processes 2``: two local replicas on one port, each answering lookups of what was registered
through either, and no process left once the first stops."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from k8stars.tars.protocol.queryf import QueryFProxy
from k8stars.tars.protocol.tarsregistry import AdapterConf, onStartupReq, tarsregistryProxy
from k8stars.tars.rpc import Communicator
from k8stars.testing.procs import alive, children, wait_port
from tests.registry.conftest import StoreSpec, eventually, free_port

SERVANT = "TestApp.HelloServer.HelloObj"


async def test_two_processes_serve_lookups_and_stop_together(store_spec: StoreSpec, tmp_path: Path) -> None:
    port = free_port()
    argv = [sys.executable, "-m", "k8stars", "registry", "--port", str(port), "--http-port", "0", "--processes", "2",
            *store_spec.options()]  # fmt: skip
    with open(tmp_path / "registry.log", "wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        wait_port(port, proc)

        async def copy_started() -> bool:
            return len(children(proc.pid)) == 1

        await eventually(copy_started, 60)
        locator = f"tars.tarsregistry.QueryObj@tcp -h 127.0.0.1 -p {port}"
        async with Communicator() as comm:
            registrar = comm.string_to_proxy(
                tarsregistryProxy, f"tars.tarsregistry.Registry@tcp -h 127.0.0.1 -p {port}"
            )
            adapter = AdapterConf(SERVANT, "tcp -h 127.0.0.1 -p 20001 -t 60000", "tars", 1000, 1, 10000, 60000)
            await registrar.onStartup(onStartupReq("127.0.0.1", "TestApp", "HelloServer", adapters=[adapter]))

        async def every_connection_finds_it() -> bool:
            for _ in range(16):  # fresh connections: the kernel spreads them over both processes
                async with Communicator() as comm:
                    eps = await comm.string_to_proxy(QueryFProxy, locator).findObjectById(SERVANT)
                    if [(e.host, e.port) for e in eps] != [("127.0.0.1", 20001)]:
                        return False
            return True

        await eventually(every_connection_finds_it, 60, 0.2)
        copies = children(proc.pid)
        os.kill(proc.pid, signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 60) == 0
        deadline = time.monotonic() + 30
        while any(alive(p) for p in copies) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert not any(alive(p) for p in copies)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
