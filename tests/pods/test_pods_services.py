"""The framework's services reach a real pod, and the pod reaches them: a k8stars (Python) server on the python base,
launcherType foreground, with the config, notify and stat services on the host (their Kubernetes stores: TConfigs,
Events on the reporting pod; /metrics), registered with the registry as K8SFramework's tarsconfig, tarsnotify and
tarsstat are, so the server finds them through its config's `config=`, `notify=`, `stat=`:

- a TConfig reaches the pod: `tars.loadconfig echo.conf` (AdminObj, through `kubectl exec ... tarscli notify`)
  fetches it into the server's basepath;
- the agent's start report and the server's own `NotifyF.reportServer` become Events on the pod;
- the server's stat reports of the calls it served show on the stat service's /metrics;
- `kubectl logs` shows the server's output (foreground: the server's output is the container's).

And a hostNetwork server (the pod shares the node's network namespace: its IP is the node IP, the bridge's address;
its servant port is one free there) is called by name through the registry."""

from __future__ import annotations

import asyncio
import subprocess
import urllib.request
from pathlib import Path

import pytest
from framework import framework_on_host, images, until
from podkit import (
    ECHO,
    EVENTS,
    NAME,
    SERVANT,
    SERVER,
    build_recorded,
    go_files,
    listed,
    services_on_host,
    tars_ns,
    tserver,
    wait_settled,
)

from k8stars.kube.client import Kube, Obj
from k8stars.kube.resources import TCONFIG, TSERVER
from k8stars.tars.protocol.queryf import QueryFProxy
from k8stars.tars.rpc import Communicator, ServantProxy
from k8stars.testing import peers
from k8stars.testing.cluster import Cluster
from k8stars.testing.procs import free_port

pytestmark = pytest.mark.realpods
__all__ = ["tars_ns"]

# A k8stars server as a Python user writes one; "notify" makes it report to tarsnotify itself.
PYTHON_SERVER = b"""import asyncio, sys
from pathlib import Path

from k8stars.tars.idl.compiler import load_runtime
from k8stars.tars.protocol.notifyf import NotifyProxy
from k8stars.tars.rpc import Application, Servant

ECHO = load_runtime([Path(__file__).with_name("echo.tars")]).interfaces()["Test::Echo"]


class EchoImp(Servant):
    __tars_interface__ = ECHO

    def __init__(self, app):
        self.app = app

    async def echo(self, s):
        if s == "notify":
            notify = self.app.comm.string_to_proxy(NotifyProxy, "tars.tarsnotify.NotifyObj")
            await notify.reportServer("Test.EchoServer", "1", "python server reports to tarsnotify")
        return 0, f"python says {s}"


async def main():
    config = next(a.partition("=")[2] for a in sys.argv if a.startswith("--config="))
    app = Application.from_config(config)
    app.add_servant(EchoImp(app), f"{app.name}.EchoObj")
    print("EchoServer: serving EchoObj", flush=True)
    await app.run()


asyncio.run(main())
"""
# K8SFramework's template reports every 60 s; a profile (merged last) makes it 1 s for the test
PROFILE = "<tars>\n<application>\n<client>\nreport-interval=1000\n</client>\n</application>\n</tars>\n"
CONFIG = "<echo>\n  greeting=hello from a TConfig\n</echo>\n"


def _kubectl(cluster: Cluster, *args: str) -> str:
    proc = subprocess.run(["kubectl", "--kubeconfig", str(cluster.kubeconfig), *args], capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL, check=False)  # fmt: skip
    assert proc.returncode == 0, f"kubectl {' '.join(args)}: {proc.stderr}"
    return proc.stdout


def _tconfig(content: str) -> Obj:
    return {"apiVersion": "k8s.tars.io/v1beta3", "kind": "TConfig", "metadata": {"name": f"{NAME}-echo.conf-m-v1"},
            "app": "Test", "server": SERVER, "configName": "echo.conf", "podSeq": "m", "version": "v1",
            "activated": True, "updatePerson": "test", "updateReason": "first", "configContent": content}  # fmt: skip


async def _events(kube: Kube, namespace: str, pod: str, text: str) -> list[Obj]:
    items: list[Obj] = (await kube.list(EVENTS, namespace))["items"]
    return [e for e in items if e["involvedObject"].get("name") == pod and text in str(e.get("message"))]


def _metric_lines(url: str) -> list[str]:
    with urllib.request.urlopen(url, timeout=5) as response:  # 127.0.0.1 only
        text = response.read().decode()
    calls = [line for line in text.splitlines() if line.startswith("tars_rpc_calls_total{")]
    return [line for line in calls if 'source="server"' in line and "EchoServer" in line]


async def test_tconfig_notify_stat_and_logs(tars_ns: tuple[Kube, str], k8s_real_cluster: Cluster,
                                            tmp_path: Path) -> None:  # fmt: skip
    kube, namespace = tars_ns
    cluster, logs = k8s_real_cluster, tmp_path / "logs"
    built = await asyncio.to_thread(images, cluster, namespace, "node", "python")
    files: dict[str, bytes | Path] = {f"{SERVER}/{SERVER}.py": PYTHON_SERVER,
                                      f"{SERVER}/echo.tars": peers.GO_SRC / "echo.tars"}  # fmt: skip
    v1 = await asyncio.to_thread(build_recorded, cluster, namespace, tmp_path, files, built["python"], "python", "v1")
    await kube.create(TCONFIG, namespace, _tconfig(CONFIG))
    async with (
        framework_on_host(cluster, namespace, logs) as host,
        services_on_host(cluster, namespace, host, logs) as svc,
    ):
        doc = tserver(v1, built["node"], host, env={"TARS_PRESTOP_WAITTIME": "1s"})
        doc["spec"]["k8s"]["launcherType"] = "foreground"
        doc["spec"]["tars"]["profile"] = PROFILE
        await kube.create(TSERVER, namespace, doc)
        (pod,) = await wait_settled(kube, namespace, 1, v1["id"], logs)
        name, container = pod["metadata"]["name"], pod["spec"]["containers"][0]["name"]
        async with Communicator(locator=host.locator) as comm:
            query = comm.string_to_proxy(QueryFProxy, host.locator)
            await until(lambda: listed(query, [pod]), timeout=10, what="QueryF lists the pod")
            proxy = comm.string_to_proxy(ServantProxy, SERVANT, interface=ECHO)
            for i in range(5):
                assert tuple(await proxy.tars_invoke("echo", (str(i),))) == (0, f"python says {i}")
            assert tuple(await proxy.tars_invoke("echo", ("notify",))) == (0, "python says notify")

        # the TConfig, fetched from the config service by the server itself, on the admin command
        agent = "/usr/local/app/tars/tarsnode/bin/tarscli"
        outs = []
        # An operator's retry, bounded: the config service on the host shares 2 loaded cores (3 s timeout), and a
        # server that found no active ConfigObj yet waits for its next endpoint refresh.
        for _ in range(8):
            outs.append(_kubectl(cluster, "-n", namespace, "exec", name, "-c", container, "--", agent, "notify",
                                 "tars.loadconfig", "echo.conf"))  # fmt: skip
            if "echo.conf succ: written to" in outs[-1]:
                break
            await asyncio.sleep(5)
        assert "echo.conf succ: written to" in outs[-1], outs
        assert _kubectl(cluster, "-n", namespace, "exec", name, "-c", container, "--", "cat",
                        "/usr/local/server/bin/echo.conf") == CONFIG  # fmt: skip

        # reports to tarsnotify as Events on the pod: the agent's (start) and the server's own
        await until(lambda: _events(kube, namespace, name, "server version"), timeout=30, what="the agent's Event")
        (own,) = await until(lambda: _events(kube, namespace, name, "python server reports to tarsnotify"),
                             timeout=30, what="the server's Event")  # fmt: skip
        assert own["involvedObject"]["kind"] == "Pod" and own["reason"] == "TarsNotify"

        # the server's side of the calls, reported to tarsstat every second
        lines = await until(lambda: asyncio.to_thread(_metric_lines, svc.metrics_url), timeout=30,
                            what="EchoServer calls on /metrics")  # fmt: skip
        assert any('function="echo"' in line for line in lines), lines

        # foreground: the server's output is the container's
        assert "EchoServer: serving EchoObj" in _kubectl(cluster, "-n", namespace, "logs", name, "-c", container)


async def test_host_network_server(tars_ns: tuple[Kube, str], k8s_real_cluster: Cluster, tmp_path: Path) -> None:
    kube, namespace = tars_ns
    cluster, logs = k8s_real_cluster, tmp_path / "logs"
    assert cluster.real_node is not None
    built = await asyncio.to_thread(images, cluster, namespace, "node", "cpp")
    v1 = await asyncio.to_thread(build_recorded, cluster, namespace, tmp_path, go_files("v1"), built["cpp"], "go", "v1")
    async with framework_on_host(cluster, namespace, logs) as host:
        doc = tserver(v1, built["node"], host, env={"TARS_PRESTOP_WAITTIME": "1s"})
        doc["spec"]["k8s"]["hostNetwork"] = True
        # the node's network namespace is the machine's: a port free on the node IP, not K8SFramework's 10000
        doc["spec"]["tars"]["servants"][0]["port"] = port = free_port(cluster.real_node.host_ip)
        await kube.create(TSERVER, namespace, doc)
        (pod,) = await wait_settled(kube, namespace, 1, v1["id"], logs)
        assert pod["status"]["podIP"] == cluster.real_node.host_ip
        async with Communicator(locator=host.locator) as comm:
            query = comm.string_to_proxy(QueryFProxy, host.locator)
            await until(lambda: listed(query, [pod]), timeout=10, what="QueryF lists the host-network pod")
            (found,) = await query.findObjectById(SERVANT)
            assert found.port == port
            proxy = comm.string_to_proxy(ServantProxy, SERVANT, interface=ECHO)
            assert tuple(await proxy.tars_invoke("echo", ("on the host network",))) == (0, "on the host network")
