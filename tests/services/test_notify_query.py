"""NotifyF.getNotifyInfo on the notify service: a server's records newest first, the ip filter, paging and an unknown
server, through a real ``k8stars notify`` process and ``k8stars call``, on SQLite and MariaDB; a store without queries
refuses it with a message (the Kubernetes store's answers: test_notify_kube_filters.py)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from k8stars.services.notify.model import Notification
from k8stars.services.notify.queue import NotifyImp, NotifyQueue
from k8stars.services.notify.sqlstore import PAGE_SIZE
from k8stars.tars.errors import TarsRpcError
from k8stars.tars.protocol.notifyf import NOTIFYLEVEL, NotifyKey, NotifyProxy, ReportInfo, ReportType
from k8stars.tars.rpc import Communicator
from k8stars.testing.cluster import eventually
from k8stars.testing.mariadb import SqlSpec, sql_spec
from k8stars.testing.procs import free_port, stop_process, wait_port

ROOT = Path(__file__).resolve().parents[2]
NOTIFY_OBJ = "tars.tarsnotify.NotifyObj"


@pytest.fixture(params=["sqlite", "mysql"])
def spec(request: pytest.FixtureRequest, tmp_path: Path) -> SqlSpec:
    return sql_spec(str(request.param), request, tmp_path)


@pytest.fixture
async def notify_obj(spec: SqlSpec) -> AsyncIterator[str]:
    """A ``k8stars notify`` process over the test's database; yields its NotifyObj address."""
    port = free_port()
    argv = [sys.executable, "-m", "k8stars", "notify", *spec.options(), "--endpoint", f"tcp -h 127.0.0.1 -p {port}",
            "--admin-endpoint", f"tcp -h 127.0.0.1 -p {free_port()}"]  # fmt: skip
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        await asyncio.to_thread(wait_port, port, proc)
        yield f"{NOTIFY_OBJ}@tcp -h 127.0.0.1 -p {port}"
    finally:
        stop_process(proc)
    assert proc.returncode == 0


def query(obj: str, name: str, ip: str = "", page: int = 0) -> dict[str, Any]:
    """``k8stars call ... getNotifyInfo``: the decoded answer."""
    key = json.dumps({"stKey": {"name": name, "ip": ip, "page": page}})
    r = subprocess.run([sys.executable, "-m", "k8stars", "call", obj, "getNotifyInfo", key], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)  # fmt: skip
    assert r.returncode == 0, r
    answer: dict[str, Any] = json.loads(r.stdout)
    return answer


def messages(answer: dict[str, Any]) -> list[str]:
    return [item["sMessage"] for item in answer["stInfo"]["notifyItems"]]


async def test_get_notify_info_pages_newest_first_per_server_and_ip(notify_obj: str) -> None:
    count = PAGE_SIZE + 3
    async with Communicator() as comm:
        notify = comm.string_to_proxy(NotifyProxy, notify_obj)
        for i in range(count):  # one by one: ids (and so the order) are the order of the reports
            node = "10.0.0.5" if i % 2 else "10.0.0.6"
            await notify.reportNotifyInfo(ReportInfo(eType=ReportType.NOTIFY, sApp="Test", sSet="", sContainer="",
                                                     sServer="HelloServer", sMessage=f"m{i}", sThreadId="",
                                                     eLevel=NOTIFYLEVEL.NOTIFYERROR if i == count - 1
                                                     else NOTIFYLEVEL.NOTIFYNORMAL, sNodeName=node))  # fmt: skip
            await asyncio.sleep(0.01)
        await notify.notifyServer("Test.Other", NOTIFYLEVEL.NOTIFYWARN, "other")

        async def stored() -> bool | None:
            got = await notify.getNotifyInfo(NotifyKey(name="Test.HelloServer", ip="", page=1))
            return True if got.ret == 0 and len(got.stInfo.notifyItems) == count - PAGE_SIZE else None

        await eventually(stored, timeout=10, what=f"{count} records stored")

    first = query(notify_obj, "Test.HelloServer")
    assert first["ret"] == 0 and first["stInfo"]["nextpage"] == 1
    assert messages(first) == [f"m{i}" for i in range(count - 1, count - 1 - PAGE_SIZE, -1)]
    top = first["stInfo"]["notifyItems"][0]
    assert (top["iLevel"], top["sServerId"]) == (2, "Test.HelloServer_10.0.0.6")
    assert top["sTimeStamp"].startswith("20") and first["stInfo"]["notifyItems"][1]["iLevel"] == 0
    second = query(notify_obj, "Test.HelloServer", page=1)
    assert second["stInfo"]["nextpage"] == -1 and messages(second) == ["m2", "m1", "m0"]
    # only the records of one node (the pod IP)
    odd = query(notify_obj, "Test.HelloServer", ip="10.0.0.5")
    assert messages(odd) == [f"m{i}" for i in range(count - 1, -1, -1) if i % 2] and odd["stInfo"]["nextpage"] == -1
    assert messages(query(notify_obj, "Test.HelloServer", ip="10.9.9.9")) == []
    other = query(notify_obj, "Test.Other")
    assert messages(other) == ["other"] and other["stInfo"]["notifyItems"][0]["iLevel"] == 1
    # an unknown server, a page past the end: empty, not an error
    for answer in (query(notify_obj, "Nobody.Server"), query(notify_obj, "Test.HelloServer", page=5)):
        assert answer["ret"] == 0 and answer["stInfo"] == {"nextpage": -1, "notifyItems": []}


class EventsOnly:
    kind, where = "kubernetes", "namespace tars"

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def write(self, items: Sequence[Notification]) -> int:
        return len(items)


async def test_a_store_without_queries_refuses_with_a_message() -> None:
    imp = NotifyImp(NotifyQueue(EventsOnly()))
    with pytest.raises(TarsRpcError, match="kubernetes store cannot be queried"):
        await imp.getNotifyInfo(NotifyKey(name="Test.HelloServer", ip="", page=0))
