"""The notify service's leftovers of issue 18: getNotifyInfo on the Kubernetes store (the Events it wrote, newest
first, per server and per pod by IP or name, a repeated alarm one record), TarsFramework's filters (``--filter``:
per server and ``default``, texts separated by ``;`` or ``|``, dropped reports counted), and the SQL store's query
per pod (TarsGo's ``sContainer``). All through a real ``k8stars notify`` process, NotifyF over TARS RPC and
``k8stars call``."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from test_notify_service import hello_pods

from k8stars.kube.client import Kube
from k8stars.services.notify.filters import FilterError, NotifyFilter
from k8stars.services.notify.model import Notification
from k8stars.services.notify.sqlstore import PAGE_SIZE
from k8stars.tars.protocol.notifyf import NOTIFYLEVEL, NotifyProxy, ReportInfo, ReportType
from k8stars.tars.rpc import Communicator
from k8stars.testing.cluster import Cluster
from k8stars.testing.procs import free_port, stop_process, wait_port

ROOT = Path(__file__).resolve().parents[2]
NOTIFY_OBJ = "tars.tarsnotify.NotifyObj"
FILTERS = ("--filter", "Test.HelloServer=ignore-me", "--filter", "default=noise|chatter;spam")


@contextmanager
def notify_process(*options: str) -> Iterator[tuple[str, str]]:
    """``k8stars notify OPTIONS``: its NotifyObj and AdminObj addresses."""
    port, admin = free_port(), free_port()
    argv = [sys.executable, "-m", "k8stars", "notify", *options, "--endpoint", f"tcp -h 127.0.0.1 -p {port}",
            "--admin-endpoint", f"tcp -h 127.0.0.1 -p {admin}"]  # fmt: skip
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_port(port, proc)
        yield f"{NOTIFY_OBJ}@tcp -h 127.0.0.1 -p {port}", f"AdminObj@tcp -h 127.0.0.1 -p {admin}"
    finally:
        stop_process(proc)
    assert proc.returncode == 0


def call(obj: str, op: str, args: dict[str, Any]) -> dict[str, Any]:
    r = subprocess.run([sys.executable, "-m", "k8stars", "call", obj, op, json.dumps(args)], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)  # fmt: skip
    assert r.returncode == 0, r
    answer: dict[str, Any] = json.loads(r.stdout)
    return answer


def query(obj: str, name: str, ip: str = "", page: int = 0) -> dict[str, Any]:
    return call(obj, "getNotifyInfo", {"stKey": {"name": name, "ip": ip, "page": page}})["stInfo"]


def messages(info: dict[str, Any]) -> list[str]:
    return [item["sMessage"] for item in info["notifyItems"]]


def report(message: str, node: str = "", server: str = "HelloServer", container: str = "",
           level: NOTIFYLEVEL = NOTIFYLEVEL.NOTIFYNORMAL) -> ReportInfo:  # fmt: skip
    return ReportInfo(eType=ReportType.REPORT, sApp="Test", sServer=server, sSet="", sContainer=container,
                      sThreadId="", sMessage=message, eLevel=level, sNodeName=node)  # fmt: skip


def test_filters_as_tarsframework_reads_them() -> None:
    f = NotifyFilter.parse(["Test.HelloServer=a;b|c", "default=zz", "TestOther=x"])

    def drops(app: str, server: str, message: str) -> bool:
        return f.drops(Notification(app=app, server=server, message=message))

    assert drops("Test", "HelloServer", "..b..") and drops("Test", "Go", "zz top") and drops("Test", "Other", "x!")
    assert not drops("Test", "Go", "b") and not drops("Test", "HelloServer", "nothing")
    assert not NotifyFilter.parse([]) and NotifyFilter.parse(["default=;;a"]).texts == {"default": frozenset({"a"})}
    for bad, why in (("nokey", "expected"), ("=a", "expected"), ("x=;|", "no text")):
        try:
            NotifyFilter.parse([bad])
        except FilterError as e:
            assert why in str(e)
        else:
            raise AssertionError(f"{bad!r} accepted")
    r = subprocess.run([sys.executable, "-m", "k8stars", "notify", "--filter", "bad", "--store", "sqlite"], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)  # fmt: skip
    assert r.returncode == 2 and "--filter 'bad': expected" in r.stderr


async def test_kubernetes_store_answers_get_notify_info(k8s_cluster: Cluster, kube: Kube, namespace: str) -> None:
    pods = await hello_pods(kube, namespace)
    ip0, ip1 = (pods[i]["status"]["podIP"] for i in (0, 1))
    options = ("--store", "kubernetes", "-n", namespace, "--kubeconfig", str(k8s_cluster.kubeconfig), *FILTERS)
    with notify_process(*options) as (obj, admin):
        async with Communicator() as comm:
            notify = comm.string_to_proxy(NotifyProxy, obj)
            for _ in range(3):  # one Event, count 3: one record
                await notify.reportNotifyInfo(report("[alarm] down, server is inactive", node=ip1))
            await asyncio.sleep(1.1)  # the records below are newer, to the second
            count = PAGE_SIZE + 3
            for i in range(count):
                await notify.reportNotifyInfo(report(f"m{i}", node=ip1 if i % 2 else ip0))
            for dropped in ("please ignore-me", "some noise", "spam and eggs"):
                await notify.reportNotifyInfo(report(dropped, node=ip0))
            await notify.reportNotifyInfo(report("chatter", node=ip0, server="Other"))  # default: every server
            await notify.notifyServer("Test.HelloServer", NOTIFYLEVEL.NOTIFYWARN, "ignore-me too")  # any operation

            async def settled() -> bool:
                stat = call(admin, "notify", {"command": "tars.notifystat"})["ret"]
                return f"received {count + 8}, stored {count + 3}, dropped 0, failed 0, filtered 5" in stat

            await _eventually(settled, "every report stored or filtered")
        first = await asyncio.to_thread(query, obj, "Test.HelloServer")
        assert messages(first) == [f"m{i}" for i in range(count - 1, count - 1 - PAGE_SIZE, -1)]
        assert first["nextpage"] == 1
        top = first["notifyItems"][0]
        assert top["sServerId"] == f"Test.HelloServer_{ip0}" and top["iLevel"] == 0 and top["sTimeStamp"][:2] == "20"
        second = await asyncio.to_thread(query, obj, "Test.HelloServer", page=1)
        assert messages(second) == ["m2", "m1", "m0", "[alarm] down, server is inactive"]
        assert second["nextpage"] == -1 and second["notifyItems"][-1]["iLevel"] == 2
        # per pod: by its IP (the reporting node) or by its name
        odd = [f"m{i}" for i in range(count - 1, -1, -1) if i % 2]
        by_ip = await asyncio.to_thread(query, obj, "Test.HelloServer", ip1)
        assert messages(by_ip) == [*odd, "[alarm] down, server is inactive"]
        by_name = await asyncio.to_thread(query, obj, "Test.HelloServer", "test-helloserver-0")
        assert messages(by_name) == [f"m{i}" for i in range(count - 1, -1, -1) if not i % 2]
        for empty in (query(obj, "Test.Other"), query(obj, "Nobody.Server"), query(obj, "Test.HelloServer", page=3),
                      query(obj, "Bad name.x")):  # fmt: skip
            assert empty == {"nextpage": -1, "notifyItems": []}


async def test_sql_store_query_per_pod_name(tmp_path: Path) -> None:
    with notify_process("--store", "sqlite", "--data-dir", str(tmp_path), *FILTERS) as (obj, admin):
        async with Communicator() as comm:
            notify = comm.string_to_proxy(NotifyProxy, obj)
            await notify.reportNotifyInfo(report("from pod 1", node="10.0.0.7", container="test-helloserver-1"))
            await notify.reportNotifyInfo(report("from pod 0", node="10.0.0.6", container="test-helloserver-0"))
            await notify.reportNotifyInfo(report("no noise please", node="10.0.0.6"))

            async def settled() -> bool:
                return (
                    "stored 2, dropped 0, failed 0, filtered 1"
                    in call(admin, "notify", {"command": "tars.notifystat"})["ret"]
                )

            await _eventually(settled, "2 stored, 1 filtered")
        assert messages(query(obj, "Test.HelloServer", "test-helloserver-1")) == ["from pod 1"]
        assert messages(query(obj, "Test.HelloServer", "10.0.0.6")) == ["from pod 0"]
        assert messages(query(obj, "Test.HelloServer")) == ["from pod 0", "from pod 1"]


async def _eventually(probe: Any, what: str, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await probe():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)
