"""`k8stars up` runs the stat service: the config tarscli generates for the example service points at
tars.tarsstat.StatObj and tars.tarsproperty.PropertyObj, both resolve by name through the local registry, and a
report sent that way is in the /metrics that `k8stars up` prints."""

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

import aiohttp

from k8stars.tars.protocol.propertyf import PropertyFProxy, StatPropInfo, StatPropMsgBody, StatPropMsgHead
from k8stars.tars.protocol.statf import StatFProxy, StatMicMsgBody, StatMicMsgHead
from k8stars.tars.rpc import Communicator
from k8stars.testing.procs import free_port

ROOT = Path(__file__).resolve().parents[2]


async def _until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.3)


async def test_up_serves_stat_and_property_by_name(tmp_path: Path) -> None:
    port = free_port()
    out_path = tmp_path / "up.out"
    argv = [sys.executable, "-m", "k8stars", "up", "--data-dir", str(tmp_path / "up"), "--registry-port", str(port),
            "--first-ip", "127.0.0.41"]  # fmt: skip
    with open(out_path, "wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})  # fmt: skip
    try:
        await _until(lambda: "Ctrl-C stops everything." in out_path.read_text() or proc.poll() is not None, 90,
                     "k8stars up to start")  # fmt: skip
        text = out_path.read_text()
        assert proc.poll() is None, text
        metrics = re.search(r"metrics (http://127\.0\.0\.1:\d+/metrics)", text)
        assert metrics and "tars.tarsstat.StatObj (port" in text, text
        confs = [p.read_text() for p in (tmp_path / "up" / "TestApp.HelloServer").rglob("*.conf")]
        assert any("stat =tars.tarsstat.StatObj" in c and "property=tars.tarsproperty.PropertyObj" in c
                   for c in confs), confs  # fmt: skip

        locator = f"tars.tarsregistry.QueryObj@tcp -h 127.0.0.1 -p {port}"
        head = StatMicMsgHead("TestApp.Caller", "TestApp.HelloServer", "sayHello", "127.0.0.41", "127.0.0.41", 1, 0)
        async with Communicator(locator=locator) as comm:
            stat = comm.string_to_proxy(StatFProxy, "tars.tarsstat.StatObj")
            assert await stat.reportMicMsg({head: StatMicMsgBody(1, 0, 0, {5: 1}, 1, 1, 1)}, True) == 0
            prop = comm.string_to_proxy(PropertyFProxy, "tars.tarsproperty.PropertyObj")
            phead = StatPropMsgHead("TestApp.HelloServer", "127.0.0.41", "greetings")
            assert await prop.reportPropMsg({phead: StatPropMsgBody([StatPropInfo("Count", "4")])}) == 0
        async with aiohttp.ClientSession() as http, http.get(metrics.group(1)) as r:
            body = await r.text()
        assert 'caller="TestApp.Caller"' in body and 'function="sayHello"' in body, body
        assert re.search(r'tars_property_total\{[^}]*property="greetings"[^}]*\} 4\.0', body), body

        proc.send_signal(signal.SIGINT)
        assert await asyncio.to_thread(proc.wait, 40) == 0, out_path.read_text()
        assert "registered tars.tarsstat.StatObj" in (tmp_path / "up" / "stat" / "stat.log").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
