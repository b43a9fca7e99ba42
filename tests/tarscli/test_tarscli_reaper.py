"""As a container's PID 1 tarscli reaps the orphans of its service, and never the processes it awaits itself: the
supervised server's exit status (and a script's) is always seen, however the reaper's ticks fall."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from tarscli_helpers import ROOT

# Runs as PID 1 of a new PID namespace. The service exits 7 and leaves an orphan (the sleep); both are zombies,
# neither collected, when the reaper runs: the loop has not turned since, so the Child's own watch has not either.
SCRIPT = r"""
import asyncio, json, os, time
from pathlib import Path
from k8stars.tarscli.proc import Child, reap_orphans

def zombies():
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                state, ppid = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:2]
            except OSError:
                continue
            if state == "Z" and ppid == "1":
                found.add(int(entry.name))
    return found

async def main():
    assert os.getpid() == 1
    child = Child(["/bin/sh", "-c", "(sleep 0.1 &); exit 7"], cwd=Path("/"), env=dict(os.environ), output=None)
    deadline = time.monotonic() + 20
    while len(zombies()) < 2 and time.monotonic() < deadline:  # blocking: the loop must not collect the child
        time.sleep(0.01)
    before = zombies()
    reap_orphans()  # what the supervisor's check loop and its process-group stops call every tick
    after = zombies()
    code = await child.wait()
    print(json.dumps({"child": child.pid, "before": sorted(before), "after": sorted(after), "code": code}))

asyncio.run(main())
"""


@pytest.mark.skipif(shutil.which("unshare") is None or os.geteuid() != 0, reason="needs unshare and root")
def test_the_reaper_leaves_the_supervised_server_to_its_watcher() -> None:
    res = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-c", SCRIPT],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert len(out["before"]) == 2 and out["child"] in out["before"]  # the service and its orphan, both exited
    assert out["after"] == [out["child"]]  # the orphan reaped, the service left to its watcher
    assert out["code"] == 7  # whose exit status is the service's own
