"""`k8stars config` on the real control plane: ConfigF answered from TConfigs, pod N getting its pod-level TConfig
(by host, pod name or the caller's own pod IP) and everyone else the server level; changes visible within 1 s; a
k8stars Application fetching its pod's file with `tars.loadconfig` through the registry."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped,unused-ignore]
from rconf_peer import GO_CONF, rconf_peer

from k8stars.kube.client import Kube, Obj
from k8stars.kube.resources import POD, STATEFULSET, TCONFIG
from k8stars.tars import packet
from k8stars.tars.protocol.configf import Config_interface, ConfigInfo, ConfigProxy
from k8stars.tars.protocol.queryf import QueryFProxy
from k8stars.tars.rpc import Communicator
from k8stars.testing.cluster import Cluster, eventually
from k8stars.testing.procs import free_port, stop_process, wait_port

ROOT = Path(__file__).resolve().parents[2]
CONFIG_OBJ = "tars.tarsconfig.ConfigObj"
SERVER_CONF = "<hello>\n  greeting=hello\n</hello>\n"
POD1_CONF = "<hello>\n  greeting=hi from pod 1\n</hello>\n"
LABELS = {"tars.io/ServerApp": "Test", "tars.io/ServerName": "HelloServer"}


def tconfig(name: str, file: str, seq: str, content: str, *, server: str = "HelloServer", version: str = "v1",
            activated: bool = True, labels: dict[str, str] | None = None) -> Obj:  # fmt: skip
    return {"apiVersion": "k8s.tars.io/v1beta3", "kind": "TConfig", "metadata": {"name": name, "labels": labels or {}},
            "app": "Test", "server": server, "configName": file, "podSeq": seq, "version": version,
            "activated": activated, "configContent": content}  # fmt: skip


async def statefulset_pods(kube: Kube, namespace: str, replicas: int = 2) -> dict[int, str]:
    """Pods test-helloserver-0..N-1 run by kwok: ordinal -> pod IP (127.64.x.y)."""
    pod = {"metadata": {"labels": LABELS}, "spec": {"containers": [{"name": "test-helloserver", "image": "none"}]}}
    sts = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "test-helloserver"},
           "spec": {"replicas": replicas, "serviceName": "test-helloserver", "podManagementPolicy": "Parallel",
                    "selector": {"matchLabels": LABELS}, "template": pod}}  # fmt: skip
    await kube.create(STATEFULSET, namespace, sts)

    async def running() -> dict[int, str] | None:
        pods = (await kube.list(POD, namespace, selector="tars.io/ServerName=HelloServer"))["items"]
        ips = {int(p["metadata"]["name"].rsplit("-", 1)[1]): p["status"].get("podIP") for p in pods
               if p["status"].get("phase") == "Running"}  # fmt: skip
        return ips if len(ips) == replicas and all(ips.values()) else None

    ips: dict[int, str] = await eventually(running, timeout=30, what=f"{replicas} running pods")
    assert all(ip.startswith("127.64.") for ip in ips.values())
    return ips


async def within(check: Callable[[], Awaitable[bool]], limit: float, what: str) -> None:
    """check() holds within `limit` seconds (polled every 20 ms)."""
    deadline = time.monotonic() + limit
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {limit} s")
        await asyncio.sleep(0.02)


async def call_from(source_ip: str, port: int, func: str, *args: Any) -> Any:
    """A ConfigF call whose connection comes from `source_ip` (a pod's IP), as a server in that pod would make
    it; TarsGo's rconf sends no host, so the service must know the pod from the connection."""
    op = Config_interface[func]
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source_ip, 0))
    try:
        req = packet.RequestPacket(iVersion=1, iRequestId=7, sServantName=CONFIG_OBJ, sFuncName=func,
                                   sBuffer=op.encode_args(args), iTimeout=3000)  # fmt: skip
        writer.write(packet.encode_request(req))
        decoder = packet.FrameDecoder()
        while True:
            data = await asyncio.wait_for(reader.read(65536), 5)
            assert data, "connection closed without an answer"
            frames = decoder.feed(data)
            if frames:
                rsp = packet.decode_response(frames[0])
                assert rsp.iRet == 0, rsp.sResultDesc
                return op.decode_result(rsp.sBuffer)
    finally:
        writer.close()


def _helm() -> str | None:
    """helm as tests/operator/test_helm.py finds it: $K8STARS_HELM, PATH, or the one scripts/test builds."""
    found = os.environ.get("K8STARS_HELM") or shutil.which("helm")
    cached = Path.home() / ".cache" / "k8stars" / "tools" / "bin" / "helm"
    return found or (str(cached) if cached.is_file() else None)


class Proc:
    """A `python -m k8stars ...` process with its log."""

    def __init__(self, argv: list[str], log: Path) -> None:
        self.log_path = log
        self._log = open(log, "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", *argv], stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=ROOT)  # fmt: skip

    def stop(self) -> None:
        stop_process(self.proc)
        self._log.close()

    def text(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
async def procs() -> AsyncIterator[list[Proc]]:
    running: list[Proc] = []
    yield running
    for p in reversed(running):
        p.stop()


async def start_config(k8s_cluster: Cluster, namespace: str, tmp_path: Path, procs: list[Proc],
                       *extra: str) -> int:  # fmt: skip
    """`k8stars config` for the namespace; its port once it answers."""
    port = free_port()
    proc = Proc(["k8stars", "config", "--kubeconfig", str(k8s_cluster.kubeconfig), "--namespace", namespace,
                 "--endpoint", f"tcp -h 127.0.0.1 -p {port} -t 60000", *extra], tmp_path / "config.log")  # fmt: skip
    procs.append(proc)
    await asyncio.to_thread(wait_port, port, proc.proc)
    return port


async def k8stars_call(*args: str) -> Any:
    p = await asyncio.create_subprocess_exec(sys.executable, "-m", "k8stars", "call", *args, cwd=ROOT,
                                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    out, err = await asyncio.wait_for(p.communicate(), 30)
    assert p.returncode == 0, err.decode()
    return json.loads(out)


async def test_config_service_answers_from_tconfigs(
    k8s_cluster: Cluster, kube: Kube, namespace: str, tmp_path: Path, procs: list[Proc]
) -> None:
    ips = await statefulset_pods(kube, namespace)
    for obj in (
        tconfig("hello-m-v1", "hello.conf", "m", SERVER_CONF),
        tconfig("hello-1-v1", "hello.conf", "1", POD1_CONF),
        tconfig("common-m-v1", "common.conf", "m", "shared=1\n", server=""),
        tconfig("bad-m-v1", "bad.conf", "m", "<a>\n  x=1\n"),
        tconfig("off-m-v1", "off.conf", "m", "x=1\n", activated=False),
        tconfig("gone-m-v1", "gone.conf", "m", "x=1\n", labels={"tars.io/Deleting": "true"}),
    ):
        await kube.create(TCONFIG, namespace, obj)
    port = await start_config(k8s_cluster, namespace, tmp_path, procs)
    async with Communicator() as comm:
        cfg = comm.string_to_proxy(ConfigProxy, f"{CONFIG_OBJ}@tcp -h 127.0.0.1 -p {port}")
        assert await cfg.ListConfig("Test", "HelloServer") == (0, ["bad.conf", "hello.conf"])
        assert await cfg.ListConfig("Test", "") == (0, ["common.conf"])

        # pod 1 gets its pod-level file, by IP or pod name; pod 0 and a host that is no pod the server level
        assert await cfg.loadConfigByHost("Test.HelloServer", "hello.conf", ips[1]) == (0, POD1_CONF)
        assert await cfg.loadConfigByHost("Test.HelloServer", "hello.conf", "test-helloserver-1") == (0, POD1_CONF)
        assert await cfg.loadConfigByHost("Test.HelloServer", "hello.conf", ips[0]) == (0, SERVER_CONF)
        assert await cfg.loadConfigByHost("Test.HelloServer", "hello.conf", "127.9.9.9") == (0, SERVER_CONF)
        assert await cfg.loadConfigByInfo(ConfigInfo("Test", "HelloServer", "hello.conf", False, ips[1])) == (
            0, POD1_CONF)  # fmt: skip
        # no host at all (TarsGo's rconf): the caller's own address says which pod it is
        assert await call_from(ips[1], port, "loadConfig", "Test", "HelloServer", "hello.conf") == (0, POD1_CONF)
        assert await call_from(ips[0], port, "loadConfig", "Test", "HelloServer", "hello.conf") == (0, SERVER_CONF)
        info = ConfigInfo("Test", "HelloServer", "hello.conf")
        assert await call_from(ips[1], port, "loadConfigByInfo", info) == (0, POD1_CONF)

        # app level, unknown files, deactivated and deleting TConfigs, checkConfig
        assert await cfg.loadConfigByHost("Test", "common.conf", "") == (0, "shared=1\n")
        assert await cfg.loadConfigByInfo(ConfigInfo("Test", "HelloServer", "common.conf", True, ips[1])) == (
            0, "shared=1\n")  # fmt: skip
        for name in ("nope.conf", "off.conf", "gone.conf"):
            assert await cfg.loadConfig("Test", "HelloServer", name) == (
                -1, f"config {name} of server Test.HelloServer not found: no activated TConfig")  # fmt: skip
        assert await cfg.checkConfig("Test.HelloServer", "hello.conf", ips[1]) == (0, POD1_CONF)
        assert await cfg.checkConfig("Test.HelloServer", "bad.conf", "") == (
            -1, "bad.conf is not a valid TARS config: <a> is never closed")  # fmt: skip
        assert (await cfg.loadConfigByHost("Test.Hello.Server", "hello.conf", "")).ret == -1

        # the same through `k8stars call` (no IDL needed for the framework servant)
        target = f"{CONFIG_OBJ}@tcp -h 127.0.0.1 -p {port}"
        args = {"appServerName": "Test.HelloServer", "filename": "hello.conf", "host": ips[1]}
        assert await k8stars_call(target, "loadConfigByHost", json.dumps(args)) == {"ret": 0, "config": POD1_CONF}
        args["filename"] = "nope.conf"
        out = await k8stars_call(target, "loadConfigByHost", json.dumps(args))
        assert out["ret"] == -1 and "not found" in out["config"]

        async def pod1_gets(content: str) -> bool:
            return await cfg.loadConfigByHost("Test.HelloServer", "hello.conf", ips[1]) == (0, content)

        # changes reach the answers within 1 s: the pod-level config being deleted, then a new server version
        await kube.merge_patch(TCONFIG, namespace, "hello-1-v1", {"metadata": {"labels": {"tars.io/Deleting": "t"}}})
        await within(lambda: pod1_gets(SERVER_CONF), 1.0, "pod 1 back on the server level")
        await kube.create(TCONFIG, namespace, tconfig("hello-m-v2", "hello.conf", "m", "v=2\n", version="v2"))
        await kube.merge_patch(TCONFIG, namespace, "hello-m-v1", {"activated": False})
        await within(lambda: pod1_gets("v=2\n"), 1.0, "the new server-level version")
        await kube.merge_patch(TCONFIG, namespace, "hello-m-v2", {"activated": False})

        async def gone() -> bool:
            return (await cfg.loadConfig("Test", "HelloServer", "hello.conf")).ret == -1

        await within(gone, 1.0, "no activated version left")
    assert procs[0].proc.poll() is None, procs[0].text()


HELLO_CONF = """<tars>
  <application>
    <client>
      locator={locator}
      sync-invoke-timeout=3000
    </client>
    <server>
      app=Test
      server=HelloServer
      localip={localip}
      local=tcp -h 127.0.0.1 -p {admin} -t 10000
      basepath={basepath}
      config=tars.tarsconfig.ConfigObj
      logLevel=INFO
      <Test.HelloServer.HelloObjAdapter>
        endpoint=tcp -h 127.0.0.1 -p {port} -t 60000
        servant=Test.HelloServer.HelloObj
      </Test.HelloServer.HelloObjAdapter>
    </server>
  </application>
</tars>
"""


async def test_application_loads_its_pod_config_found_through_the_registry(
    k8s_cluster: Cluster, kube: Kube, namespace: str, tmp_path: Path, procs: list[Proc]
) -> None:
    ips = await statefulset_pods(kube, namespace)
    await kube.create(TCONFIG, namespace, tconfig("hello-m-v1", "hello.conf", "m", SERVER_CONF))
    await kube.create(TCONFIG, namespace, tconfig("hello-1-v1", "hello.conf", "1", POD1_CONF))
    reg_port = free_port()
    procs.append(Proc(["k8stars", "registry", "--store", "sqlite", "--data-dir", str(tmp_path / "reg"), "--port",
                       str(reg_port), "--http-port", "0"], tmp_path / "registry.log"))  # fmt: skip
    await asyncio.to_thread(wait_port, reg_port, procs[-1].proc)
    locator = f"tars.tarsregistry.QueryObj@tcp -h 127.0.0.1 -p {reg_port}"
    await start_config(k8s_cluster, namespace, tmp_path, procs, "--locator", locator)

    async with Communicator() as comm:
        query = comm.string_to_proxy(QueryFProxy, locator)

        async def registered() -> bool:
            return bool(await query.findObjectById(CONFIG_OBJ))

        await eventually(registered, timeout=15, what="ConfigObj registered with the registry")

    # a server in pod 1 (its localip), config=tars.tarsconfig.ConfigObj resolved through the locator
    base = tmp_path / "base"
    admin, hello = free_port(), free_port()
    conf = tmp_path / "HelloServer.conf"
    conf.write_text(HELLO_CONF.format(locator=locator, localip=ips[1], admin=admin, basepath=base, port=hello))
    procs.append(Proc(["examples.hello.server", "--config", str(conf)], tmp_path / "hello.log"))
    await asyncio.to_thread(wait_port, admin, procs[-1].proc)
    out = await k8stars_call(f"AdminObj@tcp -h 127.0.0.1 -p {admin}", "notify",
                             json.dumps({"command": "tars.loadconfig hello.conf"}))  # fmt: skip
    assert out == {"ret": f"tars.loadconfig hello.conf succ: written to {base / 'hello.conf'}"}
    assert (base / "hello.conf").read_text() == POD1_CONF
    out = await k8stars_call(f"AdminObj@tcp -h 127.0.0.1 -p {admin}", "notify",
                             json.dumps({"command": "tars.loadconfig missing.conf"}))  # fmt: skip
    assert "tars.loadconfig missing.conf failed: " in out["ret"] and "not found" in out["ret"]

    # stopping the service deregisters it (onPrestop): no active ConfigObj left
    config_proc = procs[1]
    await asyncio.to_thread(config_proc.stop)
    assert config_proc.proc.returncode == 0, config_proc.text()
    async with Communicator() as comm:
        query = comm.string_to_proxy(QueryFProxy, locator)

        async def deregistered() -> bool:
            return not await query.findObjectById(CONFIG_OBJ)

        await eventually(deregistered, timeout=10, what="ConfigObj gone from the registry")


async def test_framework_chart_rbac_is_enough_for_the_config_store(
    kube: Kube, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The k8stars-framework chart's tars-config ServiceAccount (impersonated) lists and watches what it needs."""
    from k8stars.kube.client import Resource
    from k8stars.services.config.store import KubernetesConfigStore

    helm = _helm()
    if helm is None:
        pytest.skip("no helm binary (see tests/operator/test_helm.py)")
    chart = ROOT / "deploy" / "helm" / "k8stars-framework"
    rendered = subprocess.run([helm, "template", "fw", str(chart), "-n", namespace, "--show-only",
                               "templates/config.yaml"], capture_output=True, text=True, check=True)  # fmt: skip
    docs = [d for d in yaml.safe_load_all(rendered.stdout) if d]
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    spec = deployment["spec"]["template"]["spec"]
    assert spec["serviceAccountName"] == "tars-config"
    assert f"--namespace={namespace}" in spec["containers"][0]["args"]
    kinds = {"ServiceAccount": Resource("", "v1", "serviceaccounts", "ServiceAccount"),
             "Role": Resource("rbac.authorization.k8s.io", "v1", "roles", "Role"),
             "RoleBinding": Resource("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding")}  # fmt: skip
    for doc in docs:
        if doc["kind"] in kinds:
            await kube.create(kinds[doc["kind"]], namespace, doc)
    ips = await statefulset_pods(kube, namespace, replicas=2)
    await kube.create(TCONFIG, namespace, tconfig("hello-m-v1", "hello.conf", "m", SERVER_CONF))
    await kube.create(TCONFIG, namespace, tconfig("hello-1-v1", "hello.conf", "1", POD1_CONF))
    account = {"Impersonate-User": f"system:serviceaccount:{namespace}:tars-config"}
    store = KubernetesConfigStore(namespace, kube=Kube(kube.api, headers=account))
    await store.open()
    try:
        assert store.pod_name(ips[1]) == "test-helloserver-1"
        assert store.names("Test", "HelloServer") == ["hello.conf"]
        assert sorted(e.pod_seq for e in store.entries("Test", "HelloServer", "hello.conf")) == ["1", "m"]
    finally:
        await store.close()
    # nothing beyond its namespace: another one cannot be listed, and the error says what to check
    monkeypatch.setattr("k8stars.services.config.store.SYNC_TIMEOUT", 2.0)
    denied = KubernetesConfigStore("default", kube=Kube(kube.api, headers=account))
    with pytest.raises(RuntimeError, match="no get/list/watch on tconfigs and pods"):
        await denied.open()


async def test_tarsgo_rconf_loads_from_the_config_service(
    k8s_cluster: Cluster, kube: Kube, namespace: str, tmp_path: Path, procs: list[Proc]
) -> None:
    """A real TarsGo (v1.4.6) RConf: GetConfig sends no host (the caller is no pod here: server level),
    GetAppConfig an empty servername (app level), GetConfigList ListAllConfigByInfo; files land in basepath."""
    peer = await asyncio.to_thread(rconf_peer)
    await kube.create(TCONFIG, namespace, tconfig("hello-m-v1", "hello.conf", "m", SERVER_CONF))
    await kube.create(TCONFIG, namespace, tconfig("hello-1-v1", "hello.conf", "1", POD1_CONF))
    await kube.create(TCONFIG, namespace, tconfig("common-m-v1", "common.conf", "m", "shared=1\n", server=""))
    port = await start_config(k8s_cluster, namespace, tmp_path, procs)

    async def listed() -> bool:  # the service answers once its caches are synced
        async with Communicator() as comm:
            cfg = comm.string_to_proxy(ConfigProxy, f"{CONFIG_OBJ}@tcp -h 127.0.0.1 -p {port}")
            return await cfg.ListConfig("Test", "HelloServer") == (0, ["hello.conf"])

    await eventually(listed, timeout=15, what="the config service to list hello.conf")
    base = tmp_path / "go"
    base.mkdir()
    conf = tmp_path / "GoServer.conf"
    conf.write_text(GO_CONF.format(basepath=base, port=port))
    p = await asyncio.create_subprocess_exec(str(peer), f"--config={conf}", "hello.conf", "app:common.conf",
                                             "missing.conf", "list", stdout=subprocess.PIPE,
                                             stderr=subprocess.PIPE)  # fmt: skip
    out, err = await asyncio.wait_for(p.communicate(), 60)
    assert p.returncode == 0, err.decode()
    result = json.loads(out)
    assert result["files"] == {"hello.conf": SERVER_CONF, "app:common.conf": "shared=1\n"}
    assert result["errors"] == {"missing.conf": "ret -1"}
    assert result["list"] == ["hello.conf"]
    assert (base / "hello.conf").read_text() == SERVER_CONF
    assert (base / "common.conf").read_text() == "shared=1\n"
