"""`k8stars up --kubeconfig K --namespace NS` runs the web console too: over NS of that cluster, its monitoring page
reading the local query services through the local registry (a report sent by name shows), its logs page the local
log service's files (the example service's remote log). Without a kubeconfig no console is started."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from helpers import Browser, add_account
from test_servers import tserver

from k8stars.kube.client import Kube
from k8stars.kube.resources import TSERVER
from k8stars.tars.protocol.statf import StatFProxy, StatMicMsgBody, StatMicMsgHead
from k8stars.tars.rpc import Communicator
from k8stars.testing.cluster import Cluster
from k8stars.testing.procs import free_port
from tests.conftest import ROOT


async def _until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.3)


async def test_up_runs_the_console(k8s_cluster: Cluster, kube: Kube, namespace: str, browser: Any,
                                   tmp_path: Path) -> None:  # fmt: skip
    reg_port, web_port = free_port(), free_port()
    out_path = tmp_path / "up.out"
    argv = [sys.executable, "-m", "k8stars", "up", "--data-dir", str(tmp_path / "up"), "--registry-port",
            str(reg_port), "--first-ip", "127.0.0.71", "--kubeconfig", str(k8s_cluster.kubeconfig), "--namespace",
            namespace, "--web-port", str(web_port)]  # fmt: skip
    await kube.create(TSERVER, namespace, tserver("TestApp", "HelloServer"))
    await add_account(kube, namespace, "admin", "admin-pass", ("admin", "*"))
    with open(out_path, "wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})  # fmt: skip
    b = None
    try:
        await _until(lambda: "Ctrl-C stops everything." in out_path.read_text() or proc.poll() is not None, 120,
                     "k8stars up to start")  # fmt: skip
        text = out_path.read_text()
        assert proc.poll() is None and f"web       http://127.0.0.1:{web_port}" in text, text
        locator = f"tars.tarsregistry.QueryObj@tcp -h 127.0.0.1 -p {reg_port}"
        head = StatMicMsgHead("TestApp.Caller", "TestApp.HelloServer", "sayHello", "127.0.0.71", "127.0.0.71", 1, 0)
        async with Communicator(locator=locator) as comm:
            stat = comm.string_to_proxy(StatFProxy, "tars.tarsstat.StatObj")
            assert await stat.reportMicMsg({head: StatMicMsgBody(7, 0, 0, {}, 7, 1, 1)}, False) == 0
        b = await Browser.open(browser, f"http://127.0.0.1:{web_port}")
        await b.login("admin", "admin-pass")
        page = "/servers/testapp-helloserver/monitoring"

        async def shown() -> bool:  # the stat service writes its minute every few seconds
            await b.goto(page)
            return await b.page.locator("#calls tr.call[data-key=sayHello]").count() == 1

        deadline = time.monotonic() + 60
        while not await shown():
            assert time.monotonic() < deadline, await b.page.inner_text("main")
            await asyncio.sleep(1.0)
        assert await b.page.locator("#monitor-error").count() == 0
        await b.goto("/servers/testapp-helloserver/logs")
        assert await b.page.locator("#files-error").count() == 0, await b.page.inner_text("main")
        b.assert_clean()
        proc.send_signal(signal.SIGINT)
        assert await asyncio.to_thread(proc.wait, 60) == 0, out_path.read_text()
        assert re.search(r"console of namespace \S+ on http", (tmp_path / "up" / "web" / "web.log").read_text())
        # the log files' view asked for a token that only this user reads, and the console sent it (no files-error)
        assert (tmp_path / "up" / "log" / "http-token").stat().st_mode & 0o777 == 0o600
        assert "is open" not in (tmp_path / "up" / "log" / "log.log").read_text()
    finally:
        if b is not None:
            await b.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_up_without_a_cluster_has_no_console() -> None:
    done = subprocess.run([sys.executable, "-m", "k8stars", "up", "--kubeconfig", "/nonexistent"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2 and "--kubeconfig and --namespace go together" in done.stderr, done.stderr
