"""K8SFramework's pod model, for real: a TarsGo server packaged as a K8SFramework user packages a release (a tgz of
the server's directory), built with `k8stars image build` on our cppbase, deployed by TServer YAML as K8SFramework
documents it. The operator renders the pod (tarsnode init container from our node image copies the agent into the
work dir; the server container runs the base's ENTRYPOINT: the agent, which starts the server by ServerType from
/usr/local/server/bin); the pod reaches Ready through `tars.io/active`, and the host calls the server by name
through the registry. Root only (skipped with the reason otherwise); `-m "not realpods"` deselects it."""

from __future__ import annotations

import asyncio
import copy
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from framework import Host, build_release, framework_on_host, images, load, tgz, until

from k8stars.kube.client import Kube, Obj, Resource
from k8stars.kube.install import install_crds
from k8stars.kube.resources import POD, TIMAGE, TSERVER, TTEMPLATE
from k8stars.tars.idl.compiler import load_runtime
from k8stars.tars.protocol.queryf import QueryFProxy
from k8stars.tars.rpc import Communicator, ServantProxy
from k8stars.testing import peers
from k8stars.testing.cluster import Cluster

pytestmark = pytest.mark.realpods

NAMESPACES = Resource("", "v1", "namespaces", "Namespace", namespaced=False)
NODES = Resource("", "v1", "nodes", "Node", namespaced=False)
SERVANT = "Test.EchoServer.EchoObj"
PORT = 10000
SELECTOR = "tars.io/ServerApp=Test,tars.io/ServerName=EchoServer"
# The package's program is named like the server (K8SFramework starts bin/<ServerName> --config=<conf>); our TarsGo
# test peer serves with a sub-command, so the package holds it beside a two-line launcher.
LAUNCHER = b'#!/bin/sh\nexec /usr/local/server/bin/tarspeer echo-server "$@"\n'


@pytest.fixture
async def real(k8s_real_cluster: Cluster) -> AsyncIterator[tuple[Kube, str]]:
    """An admin client of the real-node cluster (CRDs installed) and a fresh namespace whose TARS servers may run
    on the real node (labelled `tars.io/node.<namespace>`, as a K8SFramework admin labels the nodes)."""
    async with await Kube.connect(str(k8s_real_cluster.kubeconfig), field_manager="k8stars-tests") as kube:
        await install_crds(kube)
        name = f"t-{uuid.uuid4().hex[:10]}"
        await kube.create(NAMESPACES, None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
        (node,) = (await kube.list(NODES, None, selector="k8stars.io/real-node=true"))["items"]
        label = f"tars.io/node.{name}"
        await kube.merge_patch(NODES, None, node["metadata"]["name"], {"metadata": {"labels": {label: ""}}})
        try:
            yield kube, name
        finally:
            await kube.delete(NAMESPACES, None, name)
            await kube.merge_patch(NODES, None, node["metadata"]["name"], {"metadata": {"labels": {label: None}}})


def tserver(image: str, node_image: str, host: Host, replicas: int = 1) -> Obj:
    """The TServer as K8SFramework documents it (examples/k8s/tserver.yaml), with our release and node image, one
    servant, and the locator of the registry on the host (there is no cluster DNS here) in the user's env."""
    (doc,) = load("tserver.yaml")
    doc = copy.deepcopy(doc)
    doc["metadata"] = {"name": "test-echoserver"}
    spec = doc["spec"]
    spec["server"] = "EchoServer"
    spec["tars"]["servants"] = [{"name": "EchoObj", "port": PORT, "thread": 2, "capacity": 1000, "connection": 1000,
                                 "isTars": True, "isTcp": True, "timeout": 60000}]  # fmt: skip
    spec["k8s"]["replicas"] = replicas
    # the agent reads K8STARS's variables: the registry, and a prestop wait short enough for a test
    spec["k8s"]["env"] = [{"name": "TARS_LOCATOR", "value": host.locator},
                          {"name": "TARS_PRESTOP_WAITTIME", "value": "2s"}]  # fmt: skip
    spec["k8s"]["mounts"] = []
    spec["k8s"]["resources"] = {}
    spec["release"] = {"id": "v1", "image": image, "nodeImage": node_image}
    return doc


def _condition(pod: Obj, kind: str) -> bool:
    conditions = pod.get("status", {}).get("conditions") or []
    return any(c.get("type") == kind and c.get("status") == "True" for c in conditions)


STUCK = ("CrashLoopBackOff", "ErrImagePull", "ImagePullBackOff", "CreateContainerError", "RunContainerError")


def _stuck(pod: Obj) -> str:
    status = pod.get("status") or {}
    for c in status.get("conditions") or []:
        if c.get("reason") == "Unschedulable":
            return str(c.get("message"))
    for cs in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        waiting = (cs.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in STUCK:
            return f"{cs['name']}: {waiting.get('reason')}: {waiting.get('message')}"
    return ""


async def ready_pods(kube: Kube, namespace: str, count: int) -> list[Obj]:
    """The server's pods once exactly ``count`` live ones are Ready and tars.io/active; fails at once when a pod
    cannot get there (unschedulable, image not pulled, crash loop)."""
    items: list[Obj] = (await kube.list(POD, namespace, selector=SELECTOR))["items"]
    live = [p for p in items if not p["metadata"].get("deletionTimestamp")]
    for p in live:
        assert not _stuck(p), f"pod {p['metadata']['name']} is stuck: {_stuck(p)}"
    ready = [p for p in live if _condition(p, "Ready") and _condition(p, "tars.io/active")]
    return sorted(ready, key=lambda p: str(p["metadata"]["name"])) if len(ready) == count == len(live) else []


async def _why(kube: Kube, namespace: str) -> str:
    """Each pod's status and the logs of its containers."""
    lines = []
    for p in (await kube.list(POD, namespace, selector=SELECTOR))["items"]:
        name = p["metadata"]["name"]
        lines.append(f"{name}: {p.get('status')}")
        for c in ("tarsnode", p["spec"]["containers"][0]["name"]):
            try:
                text = await kube.request("GET", POD.path(namespace, name, "log"), query={"container": c})
            except Exception as e:  # not started: say so
                text = f"(no log: {e})"
            lines.append(f"---- {name}/{c}\n{str(text)[-3000:]}")
    return "\n".join(lines)


@pytest.mark.usefixtures("k8s_real_cluster")
async def test_tarsgo_release_served_by_name_scaled_and_deleted(real: tuple[Kube, str], k8s_real_cluster: Cluster,
                                                        tmp_path: Path) -> None:  # fmt: skip
    kube, namespace = real
    cluster = k8s_real_cluster
    assert cluster.real_node is not None
    built = await asyncio.to_thread(images, cluster, namespace, "node", "cpp")
    cppbase = await kube.get(TIMAGE, namespace, "cppbase")
    assert cppbase is not None and cppbase["imageType"] == "base"
    assert cppbase["metadata"]["labels"] == {"tars.io/ImageType": "base", "tars.io/Supported.cpp": "cpp",
                                             "tars.io/Supported.go": "go"}  # fmt: skip
    assert cppbase["releases"][0]["image"] == built["cpp"]
    node = await kube.get(TIMAGE, namespace, "node")
    assert node is not None and node["imageType"] == "node" and node["releases"][0]["image"] == built["node"]

    binary = await asyncio.to_thread(peers.go_binary)
    package = tmp_path / "EchoServer.tgz"
    package.write_bytes(tgz({"EchoServer/EchoServer": LAUNCHER, "EchoServer/tarspeer": binary}))
    image = await asyncio.to_thread(build_release, cluster, package, built["cpp"], "go",
                                    f"{cluster.real_node.registry}/test/test.echoserver:v1")  # fmt: skip
    for doc in load("ttemplate.yaml"):
        await kube.create(TTEMPLATE, namespace, doc)

    async with framework_on_host(cluster, namespace, tmp_path / "logs") as host:
        await kube.create(TSERVER, namespace, tserver(image, built["node"], host))
        (pod,) = await _ready(kube, namespace, 1, tmp_path)
        container = pod["spec"]["containers"][0]
        assert "command" not in container  # the base image's ENTRYPOINT: the agent from the work dir
        echo = load_runtime([peers.GO_SRC / "echo.tars"]).interfaces()["Test::Echo"]
        async with Communicator(locator=host.locator) as comm:
            query = comm.string_to_proxy(QueryFProxy, host.locator)

            async def listed(hosts: set[str]) -> bool:  # the registry follows the pods' readiness within a second
                return {e.host for e in await query.findObjectById(SERVANT)} == hosts

            await until(lambda: listed({pod["status"]["podIP"]}), timeout=10, what="QueryF lists the pod")
            proxy = comm.string_to_proxy(ServantProxy, SERVANT, interface=echo)
            assert tuple(await proxy.tars_invoke("echo", ("hello by name",))) == (0, "hello by name")

            # scale 1 -> 3: each new pod serves, and the registry hands out all three
            await kube.merge_patch(TSERVER, namespace, "test-echoserver", {"spec": {"k8s": {"replicas": 3}}})
            pods = await _ready(kube, namespace, 3, tmp_path)
            ips = {p["status"]["podIP"] for p in pods}
            await until(lambda: listed(ips), timeout=10, what=f"QueryF lists {sorted(ips)}")
            for ip in sorted(ips):
                direct = comm.string_to_proxy(ServantProxy, f"{SERVANT}@tcp -h {ip} -p {PORT} -t 60000", interface=echo)
                assert tuple(await direct.tars_invoke("echo", (ip,))) == (0, ip)

            # delete a pod: its prestop takes it out of the registry before it stops
            gone = pods[0]
            start = time.monotonic()
            await kube.delete(POD, namespace, gone["metadata"]["name"])
            await until(lambda: listed(ips - {gone["status"]["podIP"]}), timeout=10, what="the deleted pod unlisted")
            print(f"deleted pod gone from QueryF after {time.monotonic() - start:.2f} s")  # the issue asks for < 2 s
            results = await asyncio.gather(*(proxy.tars_invoke("echo", (str(i),)) for i in range(20)))
            assert [r.r for r in results] == [str(i) for i in range(20)]


async def _ready(kube: Kube, namespace: str, count: int, tmp_path: Path) -> list[Obj]:
    try:
        pods: list[Obj] = await until(lambda: ready_pods(kube, namespace, count), timeout=120,
                                      what=f"{count} pods Ready")  # fmt: skip
    except AssertionError as e:
        raise AssertionError(f"{e}\n{await _why(kube, namespace)}\n{_logs(tmp_path)}") from None
    return pods


def _logs(tmp_path: Path) -> str:
    parts = []
    for name in ("operator.log", "registry.log"):
        path = tmp_path / "logs" / name
        if path.exists():
            parts.append(f"---- {name}\n{path.read_text()[-3000:]}")
    return "\n".join(parts)
