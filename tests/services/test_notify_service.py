"""The notify service (`k8stars notify`, tars.tarsnotify.NotifyObj): TarsFramework's level rules, the bounded queue,
the classic t_server_notifys on SQLite and a real MariaDB through TARS RPC and the CLI, a real TarsGo v1.4.6 server
reporting with tars.ReportNotifyInfo, and Kubernetes Events on the reporting pod on the real control plane."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from k8stars.kube.client import Kube, Obj
from k8stars.kube.resources import POD, STATEFULSET, TSERVER
from k8stars.services.notify.app import NotifyService, NotifyServiceError, NotifyServiceOptions
from k8stars.services.notify.kubestore import EVENT, KubernetesNotifyStore
from k8stars.services.notify.model import Notification, from_notify_server, from_report, from_report_server
from k8stars.services.notify.queue import NotifyQueue
from k8stars.tars import packet
from k8stars.tars.protocol.notifyf import NOTIFYLEVEL, Notify_interface, NotifyProxy, ReportInfo, ReportType
from k8stars.tars.rpc import Communicator
from k8stars.testing.cluster import Cluster, eventually
from k8stars.testing.mariadb import SqlSpec, sql_spec
from k8stars.testing.procs import free_port, stop_process, wait_port

ROOT = Path(__file__).resolve().parents[2]
NOTIFY_OBJ = "tars.tarsnotify.NotifyObj"
GO_SRC = Path(__file__).resolve().parent / "go_notify"
LABELS = {"tars.io/ServerApp": "Test", "tars.io/ServerName": "HelloServer"}
GO_TSERVER = {"apiVersion": "k8s.tars.io/v1beta3", "kind": "TServer", "metadata": {"name": "test-goserver"},
              "spec": {"app": "Test", "server": "GoServer", "subType": "tars", "k8s": {"replicas": 0},
                       "tars": {"template": "tars.go", "profile": "", "servants": []}}}  # fmt: skip


def report(message: str, *, kind: ReportType = ReportType.REPORT, level: NOTIFYLEVEL = NOTIFYLEVEL.NOTIFYNORMAL,
           node: str = "", app: str = "Test", server: str = "HelloServer", set_: str = "") -> ReportInfo:  # fmt: skip
    return ReportInfo(eType=kind, sApp=app, sSet=set_, sContainer="c1", sServer=server, sMessage=message,
                      sThreadId="77", eLevel=level, sNodeName=node)  # fmt: skip


# -- rules, no I/O ------------------------------------------------------------------------------------------------
def test_levels_as_tarsframework() -> None:
    n = from_report(report("[warn] server down (exit code 1)", level=NOTIFYLEVEL.NOTIFYERROR), "10.0.0.1")
    assert (n.command, n.node, n.peer, n.warning, n.server_id) == ("[warn]", "10.0.0.1", "10.0.0.1", True,
                                                                    "Test.HelloServer_10.0.0.1")  # fmt: skip
    assert from_report(report("x [fail] y"), "p").command == "[error]"
    assert from_report(report("[alarm] and [error]"), "p").command == "[alarm]"
    assert from_report(report("restart"), "p").command == "[normal]" and not from_report(report("r"), "p").warning
    # a REPORT without a tag takes its level (TarsGo and tarscli send one); a NOTIFY always its level
    assert from_report(report("disk full", level=NOTIFYLEVEL.NOTIFYERROR), "p").command == "[error]"
    n = from_report(report("[alarm] x", kind=ReportType.NOTIFY, level=NOTIFYLEVEL.NOTIFYWARN, node="pod-1"), "p")
    assert (n.command, n.node, n.peer, n.notify) == ("[warn]", "pod-1", "p", True)
    assert from_report(report("x", set_="s.a.1"), "p").set_division == ("s", "a", "1")
    assert from_report(report("x", set_="s.*.1"), "p").set_division == ("", "", "")
    assert len(from_report(report("y" * 100000), "p").message) == 16384
    n = from_report_server("Test.HelloServer", "12", "[error] boom", "10.0.0.2")
    assert (n.app, n.server, n.command, n.node, n.thread_id, n.notify) == ("Test", "HelloServer", "[error]",
                                                                           "10.0.0.2", "12", False)  # fmt: skip
    n = from_notify_server("Solo", NOTIFYLEVEL.NOTIFYWARN, "m", "10.0.0.3")
    assert (n.app, n.server, n.command, n.notify) == ("Solo", "Solo", "[warn]", True)


class SlowSink:
    kind, where = "memory", "a list"

    def __init__(self) -> None:
        self.items: list[Notification] = []
        self.go = asyncio.Event()

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def write(self, items: Sequence[Notification]) -> int:
        await self.go.wait()
        self.items.extend(items)
        return len(items)


async def test_a_flood_is_dropped_and_counted_not_queued() -> None:
    sink = SlowSink()
    queue = NotifyQueue(sink, capacity=10, batch=4)
    accepted = [queue.offer(Notification("A", "S", f"m{i}")) for i in range(25)]
    assert accepted == [True] * 10 + [False] * 15
    assert (queue.pending, queue.counters.dropped, queue.counters.received) == (10, 15, 25)
    queue.start()
    sink.go.set()
    assert await queue.flush(5.0)
    assert [n.message for n in sink.items] == [f"m{i}" for i in range(10)]
    assert str(queue.counters) == "received 25, stored 10, dropped 15, failed 0"
    await queue.stop()
    with pytest.raises(ValueError, match="at least 1"):
        NotifyQueue(sink, capacity=0)


async def test_a_flood_through_tars_rpc_stays_bounded() -> None:
    """200 one-way reports against a store that does not move: at most the queue (10) and one batch wait, every
    other report is answered, dropped and counted; once the store moves the kept ones are written."""
    sink = SlowSink()
    svc = NotifyService(NotifyServiceOptions(endpoint=f"tcp -h 127.0.0.1 -p {free_port()}", queue_size=10), sink)
    await svc.start()
    try:
        async with Communicator() as comm:
            notify = comm.string_to_proxy(NotifyProxy, f"{NOTIFY_OBJ}@{svc.endpoint}")
            for i in range(200):
                await notify.reportNotifyInfo(report(f"[alarm] flood {i}"))
        c = svc.queue.counters
        assert c.received == 200 and svc.queue.pending == 10 and c.dropped > 100, c
        sink.go.set()
        assert await svc.queue.flush(5.0)
        assert len(sink.items) == c.stored == 200 - c.dropped and c.failed == 0
        assert sink.items[0].message == "[alarm] flood 0"  # the first ones are kept, the flood's tail dropped
    finally:
        await svc.stop()


def test_options() -> None:
    for options, why in [
        (NotifyServiceOptions(store="kubernetes"), "--namespace is required"),
        (NotifyServiceOptions(store="mysql"), "--store mysql needs --dsn"),
        (NotifyServiceOptions(store="mysql", dsn="postgres://x"), "--dsn: bad DSN"),
        (NotifyServiceOptions(store="nope"), "--store 'nope'"),
        (NotifyServiceOptions(endpoint="x"), "--endpoint"),
        (NotifyServiceOptions(queue_size=0), "--queue-size 0"),
        (NotifyServiceOptions(locator="127.0.0.1:17890"), "--locator"),
    ]:
        with pytest.raises(NotifyServiceError, match=why):
            options.check()
    assert NotifyServiceOptions(namespace="tars").store_kind == "kubernetes"
    assert NotifyServiceOptions().store_kind == "sqlite"


# -- the SQL store, on SQLite and MariaDB -------------------------------------------------------------------------
@pytest.fixture(params=["sqlite", "mysql"])
def spec(request: pytest.FixtureRequest, tmp_path: Path) -> SqlSpec:
    return sql_spec(str(request.param), request, tmp_path)


@pytest.fixture
async def service(spec: SqlSpec) -> AsyncIterator[NotifyService]:
    """``k8stars notify`` over the test's database, in this process."""
    options = NotifyServiceOptions(store=spec.kind, data_dir=str(spec.data_dir), dsn=spec.dsn,
                                   endpoint=f"tcp -h 127.0.0.1 -p {free_port()} -t 60000")  # fmt: skip
    svc = NotifyService(options)
    await svc.start()
    yield svc
    await svc.stop()


async def rows(store: Any) -> list[tuple[Any, ...]]:
    """Every column TarsFramework writes, oldest first."""
    result: list[tuple[Any, ...]] = await store.db.fetch(
        "SELECT application, server_name, container_name, node_name, set_name, set_area, set_group, server_id, "
        "thread_id, command, result, notifytime FROM t_server_notifys ORDER BY id", ()
    )  # fmt: skip
    return result


def k8stars(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "k8stars", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)  # fmt: skip


async def test_reports_land_in_t_server_notifys(spec: SqlSpec, service: NotifyService) -> None:
    async with Communicator() as comm:
        notify = comm.string_to_proxy(NotifyProxy, f"{NOTIFY_OBJ}@{service.endpoint}")
        await notify.reportNotifyInfo(report("[warn] server down", level=NOTIFYLEVEL.NOTIFYERROR, node="127.0.0.9",
                                             set_="s.a.1"))  # fmt: skip
        await notify.reportNotifyInfo(report("disk full", kind=ReportType.NOTIFY, level=NOTIFYLEVEL.NOTIFYERROR))
        await notify.reportServer("Test.Other", "12", "restart")
        await notify.notifyServer("Test.Other", NOTIFYLEVEL.NOTIFYWARN, "slow")
        assert await service.queue.flush(5.0)
    got = await rows(service.store)
    assert [r[:11] for r in got] == [
        ("Test", "HelloServer", "c1", "127.0.0.9", "s", "a", "1", "Test.HelloServer_127.0.0.9", "77", "[warn]",
         "[warn] server down"),
        ("Test", "HelloServer", "c1", "127.0.0.1", "", "", "", "Test.HelloServer_127.0.0.1", "77", "[error]",
         "disk full"),
        ("Test", "Other", "", "127.0.0.1", "", "", "", "Test.Other_127.0.0.1", "12", "[normal]", "restart"),
        ("Test", "Other", "", "127.0.0.1", "", "", "", "Test.Other_127.0.0.1", "", "[warn]", "slow"),
    ]  # fmt: skip
    assert all(str(r[11]).startswith("20") for r in got)  # notifytime, a datetime
    assert service.queue.counters.stored == 4
    # the CLI, with the group's store options or the subcommand's
    r = k8stars("notify", "list", *spec.options(), "Test.HelloServer")
    lines = r.stdout.splitlines()
    assert r.returncode == 0 and lines[0].split() == ["TIME", "LEVEL", "SERVER", "NODE", "MESSAGE"], r
    assert [line.split()[2:] for line in lines[1:]] == [["[error]", "Test.HelloServer", "127.0.0.1", "disk", "full"],
                                                        ["[warn]", "Test.HelloServer", "127.0.0.9", "[warn]", "server",
                                                         "down"]]  # fmt: skip
    r = k8stars("notify", *spec.options(), "list", "Test", "--limit", "1", "--node", "127.0.0.1")
    assert r.returncode == 0 and len(r.stdout.splitlines()) == 2 and r.stdout.rstrip().endswith("slow"), r
    r = k8stars("notify", "list", *spec.options(), "Nobody")
    assert (r.returncode, r.stdout.strip()) == (0, "no notifications of Nobody")
    for bad, why in [(["list", *spec.options(), "a.b.c"], "bad target 'a.b.c'"),
                     (["list", *spec.options(), "Test", "--limit", "0"], "--limit 0"),
                     (["list", "--store", "kubernetes", "Test"], "Events")]:  # fmt: skip
        r = k8stars("notify", *bad)
        assert r.returncode == 2 and why in r.stderr, (bad, r)


async def test_the_process_answers_k8stars_call_and_counts(spec: SqlSpec, tmp_path: Path) -> None:
    port, admin = free_port(), free_port()
    argv = [sys.executable, "-m", "k8stars", "notify", *spec.options(), "--endpoint", f"tcp -h 127.0.0.1 -p {port}",
            "--admin-endpoint", f"tcp -h 127.0.0.1 -p {admin}"]  # fmt: skip
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        await asyncio.to_thread(wait_port, port, proc)
        r = k8stars("call", f"{NOTIFY_OBJ}@tcp -h 127.0.0.1 -p {port}", "notifyServer",
                    '{"sServerName": "Test.HelloServer", "level": 2, "sMessage": "from the shell"}')  # fmt: skip
        assert r.returncode == 0, r

        async def stat() -> str | None:
            r = k8stars("call", f"AdminObj@tcp -h 127.0.0.1 -p {admin}", "notify", '{"command": "tars.notifystat"}')
            return r.stdout if "stored 1," in r.stdout else None

        assert "received 1, stored 1, dropped 0, failed 0" in await eventually(stat, timeout=10, what="stored 1")
    finally:
        stop_process(proc)
    assert proc.returncode == 0
    r = k8stars("notify", "list", *spec.options(), "Test.HelloServer")
    assert "[error]" in r.stdout and "from the shell" in r.stdout, r


async def test_unreachable_database_and_bad_options_exit_clearly(tmp_path: Path) -> None:
    r = k8stars("notify", "--store", "mysql", "--dsn", f"mysql://root@127.0.0.1:{free_port()}/db_tars")
    assert r.returncode == 1 and "notify store mysql://root@127.0.0.1" in r.stderr, r
    r = k8stars("notify", "--store", "kubernetes")
    assert r.returncode == 2 and "--namespace is required" in r.stderr, r


# -- a real TarsGo server reporting ---------------------------------------------------------------------------------
GO_CONF = """<tars>
  <application>
    <server>
      app=Test
      server=GoServer
      localip=127.0.0.1
      logpath={path}
      notify=tars.tarsnotify.NotifyObj@tcp -h 127.0.0.1 -p {port}
    </server>
  </application>
</tars>
"""


def notify_peer() -> Path:
    """tests/services/go_notify built once per source hash into the peers cache (TarsGo v1.4.6)."""
    from k8stars.testing.peers import go_program

    return go_program(GO_SRC, "notifypeer")


async def test_a_tarsgo_server_reports(tmp_path: Path) -> None:
    peer = notify_peer()
    options = NotifyServiceOptions(
        store="sqlite", data_dir=str(tmp_path), endpoint=f"tcp -h 127.0.0.1 -p {free_port()}"
    )
    svc = NotifyService(options)
    await svc.start()
    try:
        conf = tmp_path / "GoServer.conf"
        conf.write_text(GO_CONF.format(path=tmp_path, port=svc.endpoint.port))
        r = await asyncio.to_thread(subprocess.run, [str(peer), f"--config={conf}", "0:restart", "2:disk is full",
                                                     "1:[alarm] queue overflow"], capture_output=True, text=True,
                                    timeout=60, cwd=tmp_path)  # fmt: skip
        assert r.returncode == 0, r
        assert await svc.queue.flush(5.0)
        got = [(g[0], g[1], g[3], g[9], g[10]) for g in await rows(svc.store)]
    finally:
        await svc.stop()
    assert got == [("Test", "GoServer", "127.0.0.1", "[normal]", "restart"),
                   ("Test", "GoServer", "127.0.0.1", "[error]", "disk is full"),
                   ("Test", "GoServer", "127.0.0.1", "[alarm]", "[alarm] queue overflow")]  # fmt: skip


# -- Kubernetes Events on the real control plane ------------------------------------------------------------------
async def hello_pods(kube: Kube, namespace: str) -> dict[int, Obj]:
    """Pods test-helloserver-0 and -1 run by kwok (127.64.x.y IPs): ordinal -> pod."""
    pod = {"metadata": {"labels": LABELS}, "spec": {"containers": [{"name": "test-helloserver", "image": "none"}]}}
    sts = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "test-helloserver"},
           "spec": {"replicas": 2, "serviceName": "test-helloserver", "podManagementPolicy": "Parallel",
                    "selector": {"matchLabels": LABELS}, "template": pod}}  # fmt: skip
    await kube.create(STATEFULSET, namespace, sts)

    async def running() -> dict[int, Obj] | None:
        pods = (await kube.list(POD, namespace, selector="tars.io/ServerName=HelloServer"))["items"]
        found = {int(p["metadata"]["name"].rsplit("-", 1)[1]): p for p in pods
                 if p["status"].get("phase") == "Running" and p["status"].get("podIP")}  # fmt: skip
        return found if len(found) == 2 else None

    return await eventually(running, timeout=30, what="2 running pods")


async def send_from(source_ip: str, port: int, info: ReportInfo) -> None:
    """reportNotifyInfo over a connection from ``source_ip``, as a server in that pod sends it (TarsGo sends no
    sNodeName: the service knows the pod by the caller's address)."""
    op = Notify_interface["reportNotifyInfo"]
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source_ip, 0))
    try:
        req = packet.RequestPacket(iVersion=1, iRequestId=3, sServantName=NOTIFY_OBJ, sFuncName="reportNotifyInfo",
                                   sBuffer=op.encode_args((info,)), iTimeout=3000)  # fmt: skip
        writer.write(packet.encode_request(req))
        decoder = packet.FrameDecoder()
        while not decoder.feed(await asyncio.wait_for(reader.read(65536), 5)):
            pass
    finally:
        writer.close()


async def events_of(kube: Kube, namespace: str, name: str) -> list[Obj]:
    items = (await kube.list(EVENT, namespace))["items"]
    return [e for e in items if e["involvedObject"]["name"] == name and e.get("reason") == "TarsNotify"]


async def test_events_on_the_reporting_pod(k8s_cluster: Cluster, kube: Kube, namespace: str) -> None:
    pods = await hello_pods(kube, namespace)
    ip0, ip1 = (pods[i]["status"]["podIP"] for i in (0, 1))
    store = KubernetesNotifyStore(namespace, str(k8s_cluster.kubeconfig))
    svc = NotifyService(NotifyServiceOptions(namespace=namespace, endpoint=f"tcp -h 127.0.0.1 -p {free_port()}"),
                        store)  # fmt: skip
    await svc.start()
    try:
        async with Communicator() as comm:
            notify = comm.string_to_proxy(NotifyProxy, f"{NOTIFY_OBJ}@{svc.endpoint}")
            # tarscli's supervisor names its pod by IP in sNodeName
            for _ in range(3):
                await notify.reportNotifyInfo(report("[alarm] down, server is inactive", node=ip1))
            await notify.reportNotifyInfo(report("server version: 1.0", node="test-helloserver-1"))  # a pod name
            assert await svc.queue.flush(10.0)
        await send_from(ip0, svc.endpoint.port, report("restart"))  # no node: the caller's own pod
        await send_from(ip0, svc.endpoint.port, report("from a stranger", node="10.9.9.9"))  # node unknown: caller
        assert await svc.queue.flush(10.0)
        on1 = sorted(await events_of(kube, namespace, "test-helloserver-1"), key=lambda e: e["message"])
        assert [(e["type"], e["message"], e["count"]) for e in on1] == [
            ("Warning", "[alarm] down, server is inactive", 3), ("Normal", "server version: 1.0", 1)]  # fmt: skip
        e = on1[0]
        assert e["involvedObject"] == {"apiVersion": "v1", "kind": "Pod", "namespace": namespace,
                                       "name": "test-helloserver-1", "uid": pods[1]["metadata"]["uid"]}  # fmt: skip
        assert (e["source"]["component"], e["source"]["host"], e["metadata"]["labels"]) == ("tarsnotify", ip1, LABELS)
        on0 = await events_of(kube, namespace, "test-helloserver-0")
        assert sorted(e["message"] for e in on0) == ["from a stranger", "restart"]
        assert all(e["type"] == "Normal" and e["involvedObject"]["uid"] == pods[0]["metadata"]["uid"] for e in on0)
        if shutil.which("kubectl"):  # what docs/notify.md promises a user sees
            env = {**os.environ, "KUBECONFIG": str(k8s_cluster.kubeconfig)}
            described = await asyncio.to_thread(
                subprocess.run, ["kubectl", "describe", "pod", "test-helloserver-1", "-n", namespace],
                capture_output=True, text=True, timeout=60, env=env,
            )  # fmt: skip
            assert described.returncode == 0, described.stderr
            line = next(x for x in described.stdout.splitlines() if "[alarm] down" in x)
            assert line.split()[:2] == ["Warning", "TarsNotify"] and "(x3 over" in line and "tarsnotify" in line, line
    finally:
        await svc.stop()


async def test_events_fall_back_to_the_tserver(k8s_cluster: Cluster, kube: Kube, namespace: str) -> None:
    created = await kube.create(TSERVER, namespace, GO_TSERVER)
    store = KubernetesNotifyStore(namespace, str(k8s_cluster.kubeconfig))
    svc = NotifyService(NotifyServiceOptions(namespace=namespace, endpoint=f"tcp -h 127.0.0.1 -p {free_port()}"),
                        store)  # fmt: skip
    await svc.start()
    try:
        async with Communicator() as comm:
            notify = comm.string_to_proxy(NotifyProxy, f"{NOTIFY_OBJ}@{svc.endpoint}")
            await notify.reportNotifyInfo(report("[error] no pod", node="10.9.9.9", server="GoServer"))
            await notify.reportNotifyInfo(report("nobody's", node="10.9.9.9", server="Ghost"))
            assert await svc.queue.flush(10.0)
        events = await events_of(kube, namespace, "test-goserver")
        assert [(e["type"], e["message"], e["involvedObject"]["kind"], e["involvedObject"]["uid"]) for e in events] == [
            ("Warning", "[error] no pod (from 10.9.9.9)", "TServer", created["metadata"]["uid"])]  # fmt: skip
        assert (svc.queue.counters.stored, svc.queue.counters.failed) == (1, 1)  # Ghost: no pod, no TServer
    finally:
        await svc.stop()


def _helm() -> str | None:
    """helm as tests/operator/test_helm.py finds it: $K8STARS_HELM, PATH, or the one scripts/test builds."""
    found = os.environ.get("K8STARS_HELM") or shutil.which("helm")
    cached = Path.home() / ".cache" / "k8stars" / "tools" / "bin" / "helm"
    return found or (str(cached) if cached.is_file() else None)


async def test_the_charts_role_is_enough(k8s_cluster: Cluster, kube: Kube, namespace: str) -> None:
    """The k8stars-framework chart's tars-notify ServiceAccount (impersonated) watches pods, writes and bumps Events
    and finds a TServer, with nothing more."""
    import yaml  # type: ignore[import-untyped,unused-ignore]

    from k8stars.kube.client import Resource

    helm = _helm()
    if helm is None:
        pytest.skip("no helm binary (see tests/operator/test_helm.py)")
    chart = ROOT / "deploy" / "helm" / "k8stars-framework"
    rendered = subprocess.run([helm, "template", "fw", str(chart), "-n", namespace, "--show-only",
                               "templates/notify.yaml"], capture_output=True, text=True, check=True)  # fmt: skip
    docs = [d for d in yaml.safe_load_all(rendered.stdout) if d]
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    spec = deployment["spec"]["template"]["spec"]
    assert spec["serviceAccountName"] == "tars-notify"
    assert {"--store=kubernetes", f"--namespace={namespace}"} <= set(spec["containers"][0]["args"])
    kinds = {"ServiceAccount": Resource("", "v1", "serviceaccounts", "ServiceAccount"),
             "Role": Resource("rbac.authorization.k8s.io", "v1", "roles", "Role"),
             "RoleBinding": Resource("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding")}  # fmt: skip
    for doc in docs:
        if doc["kind"] in kinds:
            await kube.create(kinds[doc["kind"]], namespace, doc)
    pods = await hello_pods(kube, namespace)
    ip1 = pods[1]["status"]["podIP"]
    await kube.create(TSERVER, namespace, GO_TSERVER)
    account = {"Impersonate-User": f"system:serviceaccount:{namespace}:tars-notify"}
    store = KubernetesNotifyStore(namespace, kube=Kube(kube.api, headers=account))
    await store.open()
    try:
        alarm = Notification("Test", "HelloServer", "[alarm] x", "[alarm]", node=ip1)
        assert await store.write([alarm, alarm, Notification("Test", "GoServer", "y", node="10.9.9.9")]) == 3
        page = await store.notify_page("Test.HelloServer", "", 0)  # getNotifyInfo: list on events is granted too
        assert [(m, level) for _, _, level, m in page.items] == [("[alarm] x", 2)]
    finally:
        await store.close()
    (on1,) = await events_of(kube, namespace, "test-helloserver-1")
    assert (on1["type"], on1["count"]) == ("Warning", 2)
    assert [e["message"] for e in await events_of(kube, namespace, "test-goserver")] == ["y (from 10.9.9.9)"]
