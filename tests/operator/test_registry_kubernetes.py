"""`k8stars registry --store kubernetes` on the real control plane: lookups follow pod readiness, and
the agents' reports (onStartup/keepAlive/onPrestop) set the pods' `tars.io/active` condition."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from operator_helpers import OperatorRunner, load_examples, until

from examples.hello.gen.hello import HelloProxy
from k8stars.kube.client import Kube, Obj, Resource
from k8stars.kube.resources import CONFIGMAP, POD, STATEFULSET, TSERVER
from k8stars.registry.model import AdapterSpec, registration
from k8stars.registry.store.kubernetes import KubernetesStore
from k8stars.registry.store.leases import LEASE
from k8stars.tars.protocol.queryf import QueryFProxy
from k8stars.tars.protocol.tarsregistry import AdapterConf, keepAliveReq, onPrestopReq, onStartupReq, tarsregistryProxy
from k8stars.tars.rpc import Communicator
from k8stars.testing.cluster import Cluster
from k8stars.testing.kuberegistry import kube_registry, set_tars_active

SERVANT = "Test.HelloServer.HelloObj"
SELECTOR = "tars.io/ServerName=HelloServer"


async def _pods(kube: Kube, namespace: str) -> list[Obj]:
    items: list[Obj] = (await kube.list(POD, namespace, selector=SELECTOR))["items"]
    return sorted(items, key=lambda p: str(p["metadata"]["name"]))


def _condition(pod: Obj, kind: str) -> str | None:
    for c in pod.get("status", {}).get("conditions") or []:
        if c.get("type") == kind:
            return str(c.get("status"))
    return None


SETTLE = 15.0  # a bound against a hang, far above what a change takes (tens of ms): no timed test on a loaded CI


class Registry:
    def __init__(self, proc: subprocess.Popen[bytes], port: int, comm: Communicator, host: str = "127.0.0.1") -> None:
        self.proc = proc
        self.locator = f"tars.tarsregistry.QueryObj@tcp -h {host} -p {port}"
        self.query = comm.string_to_proxy(QueryFProxy, self.locator)
        self.registry = comm.string_to_proxy(tarsregistryProxy, f"tars.tarsregistry.Registry@tcp -h {host} -p {port}")

    async def endpoints(self, servant: str = SERVANT) -> tuple[set[str], set[str]]:
        res = await self.query.findObjectById4Any(servant)
        return {e.host for e in res.activeEp}, {e.host for e in res.inactiveEp}


@contextlib.asynccontextmanager
async def running_registry(cluster: Cluster, namespace: str, data_dir: Path, host: str = "127.0.0.1"
                           ) -> AsyncIterator[Registry]:  # fmt: skip
    """A real `k8stars registry --store kubernetes` process; its output in data_dir/registry.log."""
    async with kube_registry(cluster.kubeconfig, namespace, data_dir, host) as (proc, port), Communicator() as comm:
        reg = Registry(proc, port, comm, host)

        async def up() -> bool:
            assert proc.poll() is None, (data_dir / "registry.log").read_text()
            try:
                return bool(await reg.query.findObjectById("tars.tarsregistry.QueryObj"))
            except Exception:
                return False

        await until(up, timeout=30, what="the registry to answer")
        yield reg


@pytest.fixture
async def registry(k8s_cluster: Cluster, namespace: str, tmp_path: Path) -> AsyncIterator[Registry]:
    async with running_registry(k8s_cluster, namespace, tmp_path) as reg:
        yield reg


async def _tserver_with_pods(kube: Kube, namespace: str, replicas: int, only_hello: bool = False) -> list[Obj]:
    (doc,) = load_examples("tserver.yaml")
    doc = copy.deepcopy(doc)
    doc["spec"]["k8s"]["replicas"] = replicas
    if only_hello:  # what examples/hello/server.py serves (the example also has AdminHttpObj)
        doc["spec"]["tars"]["servants"] = doc["spec"]["tars"]["servants"][:1]
    await kube.create(TSERVER, namespace, doc)

    async def running() -> list[Obj] | None:
        pods = await _pods(kube, namespace)
        ok = len(pods) == replicas and all(p["status"].get("phase") == "Running" and p["status"].get("podIP")
                                           for p in pods)  # fmt: skip
        return pods if ok else None

    pods: list[Obj] = await until(running, timeout=30, what=f"{replicas} running pods")
    return pods


async def test_lookups_follow_pod_readiness(
    kube: Kube, namespace: str, operator: OperatorRunner, registry: Registry
) -> None:
    pods = await _tserver_with_pods(kube, namespace, 2)
    ips = {p["metadata"]["name"]: p["status"]["podIP"] for p in pods}
    assert all(ip.startswith("127.64.") for ip in ips.values())

    # Running, not Ready yet: listed, inactive.
    async def listed_inactive() -> bool:
        return await registry.endpoints() == (set(), set(ips.values()))

    await until(listed_inactive, timeout=10, what="both pods listed as inactive")

    # The pod becomes Ready -> an active endpoint.
    first, second = sorted(ips)
    await set_tars_active(kube, namespace, first, "True")

    async def first_active() -> bool:
        return (await registry.endpoints())[0] == {ips[first]}

    await until(first_active, timeout=SETTLE, what="a Ready pod in the lookups")
    await set_tars_active(kube, namespace, second, "True")

    async def both_active() -> bool:
        return (await registry.endpoints())[0] == set(ips.values())

    await until(both_active, timeout=SETTLE, what="the second Ready pod in the lookups")

    # The real CLI, through the locator: the endpoints with the servant's port.
    out = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "k8stars", "call", "--locator", registry.locator, "tars.tarsregistry.QueryObj",
         "findObjectById", json.dumps({"id": SERVANT})],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout)["ret"]
    assert {(e["host"], e["port"], e["istcp"]) for e in answer} == {(ip, 10000, 1) for ip in ips.values()}

    # Not Ready any more -> out of the active list.
    await set_tars_active(kube, namespace, second, "False")

    async def second_inactive() -> bool:
        return (await registry.endpoints())[0] == {ips[first]}

    await until(second_inactive, timeout=SETTLE, what="a pod that lost readiness leaving the active list")

    # A deleted pod is gone from the active list.
    await kube.delete(POD, namespace, first)

    async def first_gone() -> bool:
        return ips[first] not in (await registry.endpoints())[0]

    await until(first_gone, timeout=SETTLE, what="a deleted pod leaving the lookups")


async def test_registrations_of_non_pods_are_shared_by_replicas(
    k8s_cluster: Cluster, kube: Kube, namespace: str, tmp_path: Path
) -> None:
    """A process that is no pod registers through one replica; the other answers with it, follows its state and
    forgets it on onPrestop: the registration is a Lease both watch, not one replica's memory."""
    node = "127.0.0.77"
    servant = "Ext.Gateway.HttpObj"
    adapters = [AdapterConf(servant, f"tcp -h {node} -p 18080 -t 60000")]
    async with (
        running_registry(k8s_cluster, namespace, tmp_path / "a", "127.0.0.31") as a,
        running_registry(k8s_cluster, namespace, tmp_path / "b", "127.0.0.32") as b,
    ):
        await a.registry.onStartup(onStartupReq(node, "Ext", "Gateway", adapters=adapters, State="active"))

        async def b_active() -> bool:
            return (await b.endpoints(servant))[0] == {node}

        await until(b_active, timeout=SETTLE, what="replica b answering with what replica a registered")
        leases = (await kube.list(LEASE, namespace, selector="k8stars.io/registration"))["items"]
        assert sorted(lease["spec"]["holderIdentity"] for lease in leases) == [
            f"Ext.Gateway@{node}", "tars.tarsregistry@127.0.0.31", "tars.tarsregistry@127.0.0.32"]  # fmt: skip
        # each replica finds both (their self-registrations are shared the same way)
        hosts = {e.host for e in (await a.query.findObjectById4Any("tars.tarsregistry.QueryObj")).activeEp}
        assert hosts == {"127.0.0.31", "127.0.0.32"}

        await a.registry.keepAlive(keepAliveReq(node, "inactive", "Ext", "Gateway"))

        async def b_inactive() -> bool:
            return (await b.endpoints(servant)) == (set(), {node})

        await until(b_inactive, timeout=SETTLE, what="replica b seeing the state replica a was told")

        await b.registry.onPrestop(onPrestopReq(node, "Ext", "Gateway"))  # the other way round

        async def a_gone() -> bool:
            return (await a.endpoints(servant)) == (set(), set())

        await until(a_gone, timeout=SETTLE, what="replica a forgetting what replica b deregistered")
        leases = (await kube.list(LEASE, namespace, selector="k8stars.io/registration"))["items"]
        assert not [lease for lease in leases if lease["spec"]["holderIdentity"].startswith("Ext.")]


async def test_agent_reports_set_the_active_condition(
    kube: Kube, namespace: str, operator: OperatorRunner, registry: Registry
) -> None:
    (pod,) = await _tserver_with_pods(kube, namespace, 1)
    ip = pod["status"]["podIP"]
    adapters = [AdapterConf(SERVANT, f"tcp -h {ip} -p 10000 -t 60000")]

    async def state(active: str | None, ready: str | None) -> bool:
        (p,) = await _pods(kube, namespace)
        return _condition(p, "tars.io/active") == active and _condition(p, "Ready") == ready

    # What tarscli does: onStartup(activating), then keepAlive(active) once the server answers.
    await registry.registry.onStartup(onStartupReq(ip, "Test", "HelloServer", adapters=adapters, State="activating"))
    await until(lambda: state("False", "False"), timeout=5, what="tars.io/active False while activating")
    assert (await registry.endpoints())[0] == set()

    await registry.registry.keepAlive(keepAliveReq(ip, "active", "Test", "HelloServer"))
    await until(lambda: state("True", "True"), timeout=5, what="tars.io/active True and the pod Ready")

    async def active() -> bool:
        return (await registry.endpoints())[0] == {ip}

    await until(active, timeout=SETTLE, what="the pod in the lookups once Ready")

    # A repeated report writes nothing (the condition is unchanged).
    (before,) = await _pods(kube, namespace)
    await registry.registry.keepAlive(keepAliveReq(ip, "active", "Test", "HelloServer"))
    await asyncio.sleep(0.3)
    (after,) = await _pods(kube, namespace)
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]

    # prestop: False, not Ready, out of the lookups.
    await registry.registry.onPrestop(onPrestopReq(ip, "Test", "HelloServer"))
    await until(lambda: state("False", "False"), timeout=5, what="tars.io/active False after onPrestop")

    async def inactive() -> bool:
        return (await registry.endpoints())[0] == set()

    await until(inactive, timeout=SETTLE, what="the pod leaving the lookups after onPrestop")


def test_unusable_kubeconfig_exits_1(tmp_path: Path) -> None:
    missing = tmp_path / "no-kubeconfig"
    out = subprocess.run(
        [sys.executable, "-m", "k8stars", "registry", "--store", "kubernetes", "--kubeconfig", str(missing),
         "--port", "0", "--http-port", "0", "--data-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 1
    assert "error: cannot open the kubernetes store" in out.stderr


RBAC_KINDS = {
    "ServiceAccount": Resource("", "v1", "serviceaccounts", "ServiceAccount"),
    "Role": Resource("rbac.authorization.k8s.io", "v1", "roles", "Role"),
    "RoleBinding": Resource("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding"),
}


async def test_framework_chart_rbac_is_enough_for_the_kubernetes_store(
    kube: Kube, namespace: str, operator: OperatorRunner
) -> None:
    """The k8stars-framework chart with registry.store=kubernetes: its ServiceAccount may watch and mark the pods."""
    from test_helm import FRAMEWORK, HELM, render_chart

    if HELM is None:
        pytest.skip("no helm binary (see tests/operator/test_helm.py)")
    docs = render_chart(FRAMEWORK, "fw", namespace, "--set", "registry.store=kubernetes")
    (deployment,) = [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "tars-registry"]
    pod_spec = deployment["spec"]["template"]["spec"]
    assert pod_spec["serviceAccountName"] == "tars-registry"
    assert {"--store=kubernetes", f"--namespace={namespace}"} <= set(pod_spec["containers"][0]["args"])
    for doc in docs:
        if doc["kind"] in RBAC_KINDS:
            await kube.create(RBAC_KINDS[doc["kind"]], namespace, doc)

    (pod,) = await _tserver_with_pods(kube, namespace, 1)
    ip = pod["status"]["podIP"]
    account = {"Impersonate-User": f"system:serviceaccount:{namespace}:tars-registry"}
    store = KubernetesStore(namespace=namespace, kube=Kube(kube.api, headers=account))
    await store.open()
    try:
        reg = registration(ip, "Test", "HelloServer", state="active",
                           adapters=[AdapterSpec(SERVANT, f"tcp -h {ip} -p 10000 -t 60000")])  # fmt: skip
        await store.register(reg, time.time())

        async def ready() -> bool:
            (p,) = await _pods(kube, namespace)
            rows = await store.load()
            return _condition(p, "Ready") == "True" and [r.present_state for r in rows] == ["active"]

        await until(ready, timeout=10, what="the pod Ready through the chart's ServiceAccount")
        # a process that is no pod: its registration is a Lease the ServiceAccount may write and delete
        gateway = AdapterSpec("Ext.Gateway.HttpObj", "tcp -h 127.0.0.78 -p 18080 -t 60000")
        ext = registration("127.0.0.78", "Ext", "Gateway", state="active", adapters=[gateway])
        await store.register(ext, time.time())
        assert len((await kube.list(LEASE, namespace, selector="k8stars.io/registration"))["items"]) == 1
        await store.deregister(ext.key, time.time())
    finally:
        await store.close()


ROOT = Path(__file__).resolve().parents[2]
FAST = {"TARS_CHECK_INTERVAL": "1s", "TARS_REPORT_INTERVAL": "2s", "TARS_PRESTOP_WAITTIME": "1s",
        "TARS_TERMINATION_GRACE_PERIOD": "30s", "PYTHONUNBUFFERED": "1"}  # fmt: skip


async def test_tarscli_in_an_operator_pod_makes_it_ready(
    kube: Kube, namespace: str, operator: OperatorRunner, registry: Registry, tmp_path: Path
) -> None:
    """A real `tarscli supervisor` as the pod's agent, as in the pod: the tarsnode init container (`tarscli nodeinit`
    with the env the operator rendered, resolved as the kubelet does) fills the work dir, and the server container's
    agent gets nothing but the work dir and a locator — its pod IP (127.64.x), namespace and the TServer's meta come
    from there. The server comes up on the TServer's port, the registry sets tars.io/active, the pod turns Ready,
    clients find and call it by name; prestop takes it out again."""
    (pod,) = await _tserver_with_pods(kube, namespace, 1, only_hello=True)
    ip, name = pod["status"]["podIP"], pod["metadata"]["name"]
    configmap = await kube.get(CONFIGMAP, namespace, "test-helloserver-server-meta")
    sts = await kube.get(STATEFULSET, namespace, "test-helloserver")
    assert configmap is not None and sts is not None
    init_env: dict[str, str] = {}
    for var in sts["spec"]["template"]["spec"]["initContainers"][0]["env"]:  # what the kubelet gives tarsnode
        source = var.get("valueFrom") or {}
        if "fieldRef" in source:
            field = source["fieldRef"]["fieldPath"]
            init_env[var["name"]] = pod["status"]["podIP"] if field == "status.podIP" else pod["metadata"][field[9:]]
        elif "configMapKeyRef" in source:
            init_env[var["name"]] = configmap["data"].get(source["configMapKeyRef"]["key"], "")
        else:
            init_env[var["name"]] = var["value"]
    work = tmp_path / "tarsnode"
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TARS", "POD_"))}
    nodeinit = subprocess.run([sys.executable, "-m", "k8stars.tarscli", "nodeinit"], capture_output=True, text=True,
                              env={**clean, **init_env, "TARS_NODE_DIR": str(work)}, timeout=60)  # fmt: skip
    assert nodeinit.returncode == 0, nodeinit.stderr
    tars_path = tmp_path / "tars"  # no bin/_server_meta.yaml: everything comes from the work dir
    (tars_path / "bin").mkdir(parents=True)
    start = tars_path / "bin" / "start.sh"
    start.write_text(f'#!/bin/sh\ncd "{ROOT}" && exec "{sys.executable}" -m examples.hello.server\n')
    start.chmod(0o755)
    env = {**clean, **FAST, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "TARS_PATH": str(tars_path), "TARS_NODE_DIR": str(work), "TARS_LOCATOR": registry.locator}  # fmt: skip
    out = open(tmp_path / "supervisor.out", "wb")
    agent = subprocess.Popen([sys.executable, "-m", "k8stars.tarscli", "supervisor"], env=env, stdout=out,
                             stderr=subprocess.STDOUT, cwd=tars_path)  # fmt: skip
    out.close()

    def log() -> str:
        path = tars_path / "log" / "supervisor.log"
        return path.read_text()[-3000:] if path.exists() else (tmp_path / "supervisor.out").read_text()[-3000:]

    try:

        async def state(active: str, ready: str) -> bool:
            assert agent.poll() is None, log()
            (p,) = await _pods(kube, namespace)
            return _condition(p, "tars.io/active") == active and _condition(p, "Ready") == ready

        try:
            await until(lambda: state("True", "True"), timeout=40, what=f"pod {name} Ready through tarscli")
        except AssertionError as e:
            raise AssertionError(f"{e}\n{log()}") from None

        async def listed() -> bool:  # on the TServer's port and the pod's IP: both came from the work dir
            res = await registry.query.findObjectById4Any(SERVANT)
            return [(e.host, e.port) for e in res.activeEp] == [(ip, 10000)]

        await until(listed, timeout=SETTLE, what="the Ready pod in the lookups")
        async with Communicator(locator=registry.locator) as comm:
            hello = comm.string_to_proxy(HelloProxy, SERVANT).tars_options(timeout_ms=3000)
            assert await hello.sayHello("k8s") == "hello k8s"

        prestop = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "k8stars.tarscli", "prestop"], env=env, capture_output=True,
            text=True, timeout=60,
        )  # fmt: skip
        assert prestop.returncode == 0, prestop.stdout + prestop.stderr
        await until(lambda: state("False", "False"), timeout=10, what="tars.io/active False after prestop")

        async def gone() -> bool:
            return (await registry.endpoints())[0] == set()

        await until(gone, timeout=SETTLE, what="the pod out of the lookups after prestop")
    finally:
        agent.terminate()
        try:
            agent.wait(20)
        except subprocess.TimeoutExpired:
            agent.kill()
            agent.wait(5)
