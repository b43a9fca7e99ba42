"""`k8stars up`: the registry, the config service and the example service under tarscli, on loopback addresses;
a file put with `k8stars config put` reaches the service through `tars.loadconfig`; Ctrl-C stops it all."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from tarscli_helpers import ROOT, wait_active_hosts, wait_for

from examples.hello.gen.hello import HelloProxy
from k8stars.tars.protocol.logf import LogProxy
from k8stars.tars.rpc import Communicator
from k8stars.testing.procs import alive
from tests.conftest import free_port


def up_command(data_dir: Path, port: int) -> list[str]:
    return [sys.executable, "-m", "k8stars", "up", "--data-dir", str(data_dir), "--registry-port", str(port),
            "--first-ip", "127.0.0.31"]  # fmt: skip


async def test_up_runs_the_framework_and_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    out_path = tmp_path / "up.out"
    with open(out_path, "wb") as out:
        proc = subprocess.Popen(up_command(tmp_path / "up", port), stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})  # fmt: skip
    try:
        await wait_for(lambda: "Ctrl-C stops everything." in out_path.read_text() or proc.poll() is not None, 60,
                       "k8stars up to start")  # fmt: skip
        text = out_path.read_text()
        assert proc.poll() is None, text
        locator = f"tars.tarsregistry.QueryObj@tcp -h 127.0.0.1 -p {port}"
        assert locator in text and "TestApp.HelloServer  pod IP 127.0.0.31  state active" in text, text
        assert re.search(r"TestApp\.HelloServer\.HelloObj\s+tcp -h 127\.0\.0\.31 -p \d+", text), text
        await wait_active_hosts(locator, "TestApp.HelloServer.HelloObj", ["127.0.0.31"])
        async with Communicator(locator=locator) as comm:
            assert await comm.string_to_proxy(HelloProxy, "TestApp.HelloServer.HelloObj").sayHello("up") == "hello up"
        await load_config_through_up(tmp_path, text)
        await notifications_through_up(tmp_path, text)
        await remote_log_through_up(tmp_path, text, locator)
        supervisor = int(re.findall(r"tarscli supervisor pid (\d+)", text)[0])
        service = int((tmp_path / "up" / "TestApp.HelloServer" / "data" / "service.pid").read_text().split()[0])

        proc.send_signal(signal.SIGINT)  # Ctrl-C
        started = time.monotonic()
        code = await asyncio.to_thread(proc.wait, 40)
        text = out_path.read_text()
        assert code == 0, text
        assert text.rstrip().endswith("k8stars up: stopped"), text
        assert time.monotonic() - started < 30
        for pid in (supervisor, service):
            assert not alive(pid), pid
        assert (
            "prestop: deregistered TestApp.HelloServer from 127.0.0.31"
            in (tmp_path / "up" / "TestApp.HelloServer" / "log" / "supervisor.log").read_text()
        )
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def k8stars(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "k8stars", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)  # fmt: skip


async def load_config_through_up(tmp_path: Path, text: str) -> None:
    """The server level, then a node-level file for the service's pod IP, put with the CLI and fetched by the
    service (AdminObj ``tars.loadconfig``, sent with ``k8stars call``) into its basepath."""
    config_dir = tmp_path / "up" / "config"
    assert "config    tars.tarsconfig.ConfigObj@tcp -h 127.0.0.1 -p" in text and str(config_dir / "config.db") in text
    admin = re.findall(r"AdminObj \(local\)\s+(tcp -h \S+ -p \d+)", text)[0]
    (tmp_path / "hello.conf").write_text("<hello>\n  greeting=hi from up\n</hello>\n")
    (tmp_path / "node.conf").write_text("<hello>\n  node=31\n</hello>\n")
    put = k8stars("config", "put", "--data-dir", str(config_dir), "TestApp.HelloServer", str(tmp_path / "hello.conf"))
    assert put.returncode == 0 and "created TestApp.HelloServer hello.conf (server level)" in put.stdout, put
    written = tmp_path / "up" / "TestApp.HelloServer" / "bin" / "hello.conf"

    def load() -> str:
        call = k8stars("call", f"AdminObj@{admin}", "notify", '{"command": "tars.loadconfig hello.conf"}')
        assert call.returncode == 0, call
        return str(json.loads(call.stdout)["ret"])

    assert load() == f"tars.loadconfig hello.conf succ: written to {written}"
    assert written.read_text() == "<hello>\n  greeting=hi from up\n</hello>\n"
    put = k8stars("config", "put", "--data-dir", str(config_dir), "--host", "127.0.0.31", "--name", "hello.conf",
                  "TestApp.HelloServer", str(tmp_path / "node.conf"))  # fmt: skip
    assert put.returncode == 0, put
    await asyncio.sleep(0.6)  # past the service's answer cache
    assert load().endswith("succ: written to " + str(written))
    # the server level, then the node level, joined as TarsFramework joins levels
    assert written.read_bytes() == b"<hello>\n  greeting=hi from up\n</hello>\n\r\n\r\n<hello>\n  node=31\n</hello>\n"


async def notifications_through_up(tmp_path: Path, text: str) -> None:
    """The supervisor's start report reaches the notify service (found through the registry) and its SQLite store."""
    notify_dir = tmp_path / "up" / "notify"
    assert "notify    tars.tarsnotify.NotifyObj@tcp -h 127.0.0.1 -p" in text and str(notify_dir / "notify.db") in text

    def listed() -> str:
        r = k8stars("notify", "list", "--data-dir", str(notify_dir), "TestApp.HelloServer")
        return r.stdout if "server version" in r.stdout else ""

    await wait_for(listed, 20, "the supervisor's start report in the notify store")
    line = next(x for x in listed().splitlines() if "server version" in x)
    assert line.split()[2:5] == ["[normal]", "TestApp.HelloServer", "127.0.0.31"], line


async def remote_log_through_up(tmp_path: Path, text: str, locator: str) -> None:
    """log=tars.tarslog.LogObj resolves through the registry to the log service, which writes the record's file."""
    files = tmp_path / "up" / "log" / "files"
    assert "log       tars.tarslog.LogObj@tcp -h 127.0.0.1 -p" in text and str(files) in text, text
    async with Communicator(locator=locator) as comm:
        await comm.string_to_proxy(LogProxy, "tars.tarslog.LogObj").logger("TestApp", "HelloServer", "up", "%Y%m%d",
                                                                           ["through up\n"])  # fmt: skip
    hello = files / "TestApp" / "HelloServer"

    def written() -> bool:
        return any(p.read_text() == "127.0.0.1|through up\n" for p in hello.glob("TestApp.HelloServer_up_*.log"))

    await wait_for(written, 10, "the record in its file")
