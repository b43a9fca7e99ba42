"""`k8stars up` runs the query services over the stat service's history: a call report sent to
tars.tarsstat.StatObj by name comes back from tars.tarsquerystat.QueryObj, found by name through the same registry
with `k8stars call`; both stop cleanly with it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from k8stars.tars.protocol.statf import StatFProxy, StatMicMsgBody, StatMicMsgHead
from k8stars.tars.rpc import Communicator
from k8stars.testing.procs import free_port

ROOT = Path(__file__).resolve().parents[2]
IDL = ROOT / "k8stars" / "tars" / "protocol" / "MonitorQuery.tars"


async def test_up_serves_the_query_services_by_name(tmp_path: Path) -> None:
    port = free_port()
    out_path = tmp_path / "up.out"
    argv = [sys.executable, "-m", "k8stars", "up", "--data-dir", str(tmp_path / "up"), "--registry-port", str(port),
            "--first-ip", "127.0.0.51"]  # fmt: skip
    with open(out_path, "wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while "Ctrl-C stops everything." not in out_path.read_text() and proc.poll() is None:
            assert time.monotonic() < deadline, out_path.read_text()
            await asyncio.sleep(0.3)
        text = out_path.read_text()
        assert proc.poll() is None and "tars.tarsquerystat.QueryObj (port" in text, text

        locator = f"tars.tarsregistry.QueryObj@tcp -h 127.0.0.1 -p {port}"
        head = StatMicMsgHead("TestApp.UpCaller", "TestApp.HelloServer", "sayHello", "127.0.0.51", "127.0.0.51", 1, 0)
        async with Communicator(locator=locator) as comm:
            stat = comm.string_to_proxy(StatFProxy, "tars.tarsstat.StatObj")
            assert await stat.reportMicMsg({head: StatMicMsgBody(3, 1, 0, {5: 3}, 6, 2, 2)}, False) == 0
        req = {
            "date": time.strftime("%Y%m%d"),
            "tflag1": "",
            "tflag2": "",
            "indexs": ["succ_count", "timeout_count"],
            "groupby": ["master_name"],
            "conditions": [{"field": "master_name", "op": 0, "val": "TestApp.UpCaller"}],
        }
        call = [sys.executable, "-m", "k8stars", "call", "--locator", locator, "--idl", str(IDL),
                "tars.tarsquerystat.QueryObj", "query", json.dumps({"req": req})]  # fmt: skip
        deadline = time.monotonic() + 30  # the stat service writes its minute every 5 s
        while True:
            done = await asyncio.to_thread(subprocess.run, call, cwd=ROOT, capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, done.stderr
            if json.loads(done.stdout)["rsp"]["result"] == {"TestApp.UpCaller": [3.0, 1.0]}:
                break
            assert time.monotonic() < deadline, done.stdout
            await asyncio.sleep(1.0)

        proc.send_signal(signal.SIGINT)
        assert await asyncio.to_thread(proc.wait, 40) == 0, out_path.read_text()
        assert "registered tars.tarsquerystat.QueryObj" in (tmp_path / "up" / "stat" / "monitor.log").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
