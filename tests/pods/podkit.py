"""Shared pieces of the real-pod behaviour tests (rollout, services, faults): a TARS namespace on the real node,
releases built and recorded as K8SFramework's image service records them (`k8stars image build -n`), published with
`k8stars image release`, and waits on the server's pods."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from framework import Host, _process, k8stars, load, tgz, until

from k8stars.kube.client import Kube, Obj, Resource
from k8stars.kube.install import install_crds
from k8stars.kube.resources import POD, TENDPOINT, TFRAMEWORKCONFIG, TIMAGE, TSERVER, TTEMPLATE
from k8stars.tars.idl.compiler import load_runtime
from k8stars.tars.protocol.queryf import QueryFProxy
from k8stars.testing import peers
from k8stars.testing.cluster import Cluster
from k8stars.testing.procs import free_port, wait_port

NAMESPACES = Resource("", "v1", "namespaces", "Namespace", namespaced=False)
NODES = Resource("", "v1", "nodes", "Node", namespaced=False)
EVENTS = Resource("", "v1", "events", "Event")
APP, SERVER = "Test", "EchoServer"
NAME = "test-echoserver"  # the TServer and its TImage
SERVANT = f"{APP}.{SERVER}.EchoObj"
SELECTOR = f"tars.io/ServerApp={APP},tars.io/ServerName={SERVER}"
PORT = 10000
# K8SFramework starts bin/<ServerName> --config=<conf>; our TarsGo peer serves with a sub-command.
ECHO = load_runtime([peers.GO_SRC / "echo.tars"]).interfaces()["Test::Echo"]
GO_LAUNCHER = b'#!/bin/sh\nexec /usr/local/server/bin/tarspeer echo-server "$@"\n'


@pytest.fixture
async def tars_ns(k8s_real_cluster: Cluster) -> AsyncIterator[tuple[Kube, str]]:
    """An admin client (CRDs installed), a fresh namespace whose TARS pods may run on the real node (labelled
    `tars.io/node.<namespace>`), K8SFramework's TTemplates, a TFrameworkConfig whose registry is the cluster's, and
    the server's TImage (as the web console creates it with the server)."""
    assert k8s_real_cluster.real_node is not None
    async with await Kube.connect(str(k8s_real_cluster.kubeconfig), field_manager="k8stars-tests") as kube:
        await install_crds(kube)
        name = f"t-{uuid.uuid4().hex[:10]}"
        await kube.create(NAMESPACES, None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
        (node,) = (await kube.list(NODES, None, selector="k8stars.io/real-node=true"))["items"]
        label = f"tars.io/node.{name}"
        await kube.merge_patch(NODES, None, node["metadata"]["name"], {"metadata": {"labels": {label: ""}}})
        for doc in load("ttemplate.yaml"):
            await kube.create(TTEMPLATE, name, doc)
        (tfc,) = [d for d in load("tframework.yaml") if d["kind"] == "TFrameworkConfig"]
        tfc["imageUpload"] = {"registry": f"{k8s_real_cluster.real_node.registry}/test", "secret": ""}
        await kube.create(TFRAMEWORKCONFIG, name, tfc)
        labels = {"tars.io/ImageType": "server", "tars.io/ServerApp": APP, "tars.io/ServerName": SERVER}
        await kube.create(TIMAGE, name, {"apiVersion": "k8s.tars.io/v1beta3", "kind": "TImage", "imageType": "server",
                                         "metadata": {"name": NAME, "labels": labels}, "releases": []})  # fmt: skip
        try:
            yield kube, name
        finally:
            await kube.delete(NAMESPACES, None, name)
            await kube.merge_patch(NODES, None, node["metadata"]["name"], {"metadata": {"labels": {label: None}}})


def go_files(version: str) -> dict[str, bytes | Path]:
    """The TarsGo echo server as a K8SFramework user packages it; ``version`` makes each release's image distinct."""
    return {f"{SERVER}/{SERVER}": GO_LAUNCHER, f"{SERVER}/tarspeer": peers.go_binary(),
            f"{SERVER}/VERSION": version.encode()}  # fmt: skip


def build_recorded(cluster: Cluster, namespace: str, tmp_path: Path, files: dict[str, bytes | Path], base: str,
                   server_type: str, tag: str) -> dict[str, str]:  # fmt: skip
    """`k8stars image build -n NS --app --server --tag`: pushed to the TFrameworkConfig's registry and recorded on
    TImage test-echoserver, as the build API does. Returns the release as a TServer names it: id and image."""
    package = tmp_path / f"{SERVER}-{tag}.tgz"
    package.write_bytes(tgz(files))
    # one registry serves the session's tests, and the node keeps what it pulled: a tag of this namespace's own
    out = k8stars("image", "build", str(package), "--base", base, "--server-type", server_type, "-n", namespace,
                  "--app", APP, "--server", SERVER, "--tag", f"{namespace}-{tag}",
                  "--kubeconfig", str(cluster.kubeconfig))  # fmt: skip
    result = json.loads(out)
    return {"id": result["id"], "image": result["image"]}


def publish(cluster: Cluster, namespace: str, release_id: str) -> None:
    """`k8stars image release test-echoserver ID`: the TServer's spec.release becomes that recorded release."""
    k8stars("image", "release", NAME, release_id, "-n", namespace, "--kubeconfig", str(cluster.kubeconfig))


def tserver(release: dict[str, str], node_image: str, host: Host, replicas: int = 1,
            env: dict[str, str] | None = None) -> Obj:  # fmt: skip
    """The TServer as K8SFramework documents it (examples/k8s/tserver.yaml): one servant, our node image, and the
    locator of the registry on the host (no cluster DNS here) in the user's env."""
    (doc,) = load("tserver.yaml")
    doc = copy.deepcopy(doc)
    doc["metadata"] = {"name": NAME}
    spec = doc["spec"]
    spec["server"] = SERVER
    spec["tars"]["servants"] = [{"name": "EchoObj", "port": PORT, "thread": 2, "capacity": 1000, "connection": 1000,
                                 "isTars": True, "isTcp": True, "timeout": 60000}]  # fmt: skip
    spec["k8s"]["replicas"] = replicas
    spec["k8s"]["env"] = [{"name": "TARS_LOCATOR", "value": host.locator},
                          *({"name": k, "value": v} for k, v in (env or {}).items())]  # fmt: skip
    spec["k8s"]["mounts"] = []
    spec["k8s"]["resources"] = {}
    spec["k8s"]["imagePullPolicy"] = "IfNotPresent"
    spec["release"] = {**release, "nodeImage": node_image}
    return doc


def _condition(obj: Obj, kind: str) -> bool:
    return any(c.get("type") == kind and c.get("status") == "True"
               for c in (obj.get("status") or {}).get("conditions") or [])  # fmt: skip


async def pods(kube: Kube, namespace: str) -> list[Obj]:
    items: list[Obj] = (await kube.list(POD, namespace, selector=SELECTOR))["items"]
    return sorted(items, key=lambda p: str(p["metadata"]["name"]))


async def settled(kube: Kube, namespace: str, count: int, release_id: str) -> list[Obj]:
    """The pods once exactly ``count`` exist, none terminating, all of release ``release_id``, Ready and
    tars.io/active; else []."""
    items = await pods(kube, namespace)
    if len(items) != count or any(p["metadata"].get("deletionTimestamp") for p in items):
        return []
    if any(p["metadata"]["labels"].get("tars.io/ServerID") != release_id for p in items):
        return []
    return items if all(_condition(p, "Ready") and _condition(p, "tars.io/active") for p in items) else []


async def why(kube: Kube, namespace: str, logs: Path | None = None) -> str:
    """The TServer's status, each pod's status and container logs, and the host processes' logs: for a failure."""
    lines = [f"TServer status: {((await kube.get(TSERVER, namespace, NAME)) or {}).get('status')}"]
    for p in await pods(kube, namespace):
        name = p["metadata"]["name"]
        lines.append(f"{name}: {p.get('status')}")
        for c in ("tarsnode", p["spec"]["containers"][0]["name"]):
            try:
                text = await kube.request("GET", POD.path(namespace, name, "log"), query={"container": c})
            except Exception as e:  # not started: say so
                text = f"(no log: {e})"
            lines.append(f"---- {name}/{c}\n{str(text)[-2000:]}")
    for path in sorted(logs.glob("*.log")) if logs else []:
        lines.append(f"---- {path.name}\n{path.read_text(errors='replace')[-2000:]}")
    return "\n".join(lines)


async def wait_settled(kube: Kube, namespace: str, count: int, release_id: str, logs: Path | None = None,
                       timeout: float = 150) -> list[Obj]:  # fmt: skip
    try:
        found: list[Obj] = await until(lambda: settled(kube, namespace, count, release_id), timeout=timeout,
                                       what=f"{count} pods of release {release_id} Ready")  # fmt: skip
    except AssertionError as e:
        raise AssertionError(f"{e}\n{await why(kube, namespace, logs)}") from None
    return found


async def tserver_status(kube: Kube, namespace: str) -> dict[str, Any]:
    ts = await kube.get(TSERVER, namespace, NAME)
    assert ts is not None
    return dict(ts.get("status") or {})


async def listed(query: QueryFProxy, pods: list[Obj]) -> bool:
    """The registry hands out exactly these pods' IPs for the servant."""
    return {e.host for e in await query.findObjectById(SERVANT)} == {p["status"]["podIP"] for p in pods}


async def ready_condition(kube: Kube, namespace: str) -> Obj:
    """The TServer's status condition Ready ({} while there is none)."""
    conditions = (await tserver_status(kube, namespace)).get("conditions") or []
    return next((c for c in conditions if c.get("type") == "Ready"), {})


async def ready_reason(kube: Kube, namespace: str, reason: str) -> Obj | None:
    """The Ready condition once its reason is ``reason``."""
    condition = await ready_condition(kube, namespace)
    return condition if condition.get("reason") == reason else None


async def consistent(kube: Kube, namespace: str, query: QueryFProxy) -> bool:
    """The TEndpoint lists every pod of the server (and no other), and the registry hands out exactly the active
    ones."""
    items = await pods(kube, namespace)
    endpoint = await kube.get(TENDPOINT, namespace, NAME)
    listed_pods = sorted(p["name"] for p in ((endpoint or {}).get("status") or {}).get("pods") or [])
    active = [p for p in items if _condition(p, "tars.io/active") and not p["metadata"].get("deletionTimestamp")]
    return listed_pods == [p["metadata"]["name"] for p in items] and await listed(query, active)


@dataclass
class Services:
    """TARS framework services on the host, registered with the registry, on the node IP (what pods reach)."""

    metrics_url: str  # the stat service's /metrics, on 127.0.0.1


@contextlib.asynccontextmanager
async def services_on_host(cluster: Cluster, namespace: str, host: Host, logs: Path) -> AsyncIterator[Services]:
    """`k8stars config` and `k8stars notify` with their Kubernetes stores (TConfigs; Events on the reporting pod)
    and `k8stars stat` (/metrics), as processes registered as tars.tarsconfig, tars.tarsnotify and tars.tarsstat."""
    assert cluster.real_node is not None
    ip, kubeconfig = cluster.real_node.host_ip, str(cluster.kubeconfig)
    ports = {name: free_port(ip) for name in ("config", "notify", "stat", "property")}
    http = free_port()
    common = ["--locator", host.locator, "--node-name", ip]

    def endpoint(name: str) -> str:
        return f"tcp -h {ip} -p {ports[name]} -t 60000"

    argvs = {
        "config": ["config", "--store", "kubernetes", "-n", namespace, "--kubeconfig", kubeconfig,
                   "--endpoint", endpoint("config"), *common],
        "notify": ["notify", "--store", "kubernetes", "-n", namespace, "--kubeconfig", kubeconfig,
                   "--endpoint", endpoint("notify"), *common],
        "stat": ["stat", "--stat-endpoint", endpoint("stat"), "--property-endpoint", endpoint("property"),
                 "--http-port", str(http), "--history", "none", *common],
    }  # fmt: skip
    with contextlib.ExitStack() as stack:
        for name, argv in argvs.items():
            proc = stack.enter_context(_process([sys.executable, "-m", "k8stars", *argv], logs / f"{name}.log"))
            await asyncio.to_thread(wait_port, ports[name], proc, ip)
        yield Services(f"http://127.0.0.1:{http}/metrics")
