"""The Helm charts on real pods: `helm install` of deploy/helm/k8stars-controller and deploy/helm/k8stars-framework
with the framework image (`k8stars image framework`, our builder, from the cluster's registry); every Deployment
becomes Ready: the operator (its admission and conversion webhooks called by the apiserver at the pod's IP), the
registry, config, notify, stat (+ query, kevent), log, image builder and web console. Then a TServer as K8SFramework
documents it, with a TarsGo release on our cppbase and no nodeImage (the operator's webhook fills it in from the
chart's TFrameworkConfig), becomes Ready through the registry pod (its tars.io/active), and the host calls it by name
through that registry. Root only (skipped with the reason otherwise); `-m "not realpods"` deselects it."""

from __future__ import annotations

import asyncio
import copy
import ipaddress
import uuid
from pathlib import Path

import pytest
from framework import build_release, framework_image, k8stars, load, tgz, until

from k8stars.kube.client import Kube, Obj, Resource
from k8stars.kube.resources import POD, TSERVER
from k8stars.tars.idl.compiler import load_runtime
from k8stars.tars.protocol.queryf import QueryFProxy
from k8stars.tars.rpc import Communicator, ServantProxy
from k8stars.testing import peers
from k8stars.testing.cluster import Cluster
from k8stars.testing.cluster.charts import DEPLOYMENT, Charts, helm_binary, install_charts, pods_state

NO_HELM = "no helm binary (k8stars.testing.cluster.charts.helm_binary)"
pytestmark = [pytest.mark.realpods, pytest.mark.skipif(helm_binary() is None, reason=NO_HELM)]

NODES = Resource("", "v1", "nodes", "Node", namespaced=False)
SERVANT = "Test.EchoServer.EchoObj"
PORT = 10000
SELECTOR = "tars.io/ServerApp=Test,tars.io/ServerName=EchoServer"
LAUNCHER = b'#!/bin/sh\nexec /usr/local/server/bin/tarspeer echo-server "$@"\n'  # bin/<ServerName>, as K8SFramework
ECHO = load_runtime([peers.GO_SRC / "echo.tars"]).interfaces()["Test::Echo"]
FRAMEWORK = {"tars-registry", "tars-config", "tars-notify", "tars-stat", "tars-log", "tars-tarsimage", "tars-web"}


def tserver(image: str, locator: str) -> Obj:
    """examples/k8s/tserver.yaml with the echo servant, our release and no nodeImage; the registry pod's locator in
    the user's env (there is no cluster DNS here)."""
    (doc,) = load("tserver.yaml")
    doc = copy.deepcopy(doc)
    doc["metadata"] = {"name": "test-echoserver"}
    spec = doc["spec"]
    spec["server"] = "EchoServer"
    spec["tars"]["servants"] = [{"name": "EchoObj", "port": PORT, "thread": 2, "capacity": 1000, "connection": 1000,
                                 "isTars": True, "isTcp": True, "timeout": 60000}]  # fmt: skip
    spec["k8s"].update(replicas=1, mounts=[], resources={})
    spec["k8s"]["env"] = [{"name": "TARS_LOCATOR", "value": locator}, {"name": "TARS_PRESTOP_WAITTIME", "value": "1s"}]
    spec["release"] = {"id": "v1", "image": image}
    return doc


def _true(pod: Obj, kind: str) -> bool:
    conditions = pod.get("status", {}).get("conditions") or []
    return any(c.get("type") == kind and c.get("status") == "True" for c in conditions)


async def _served(kube: Kube, namespace: str) -> Obj | None:
    (pod,) = (await kube.list(POD, namespace, selector=SELECTOR))["items"] or [None]
    return pod if pod and _true(pod, "Ready") and _true(pod, "tars.io/active") else None


async def _listed(query: QueryFProxy, ip: str) -> bool:
    return [e.host for e in await query.findObjectById(SERVANT)] == [ip]


async def test_charts_ready_and_a_tserver_served_through_them(k8s_real_cluster: Cluster, tmp_path: Path) -> None:
    cluster = k8s_real_cluster
    assert cluster.real_node is not None
    subnet = ipaddress.ip_network(cluster.real_node.subnet)
    image = await asyncio.to_thread(framework_image, cluster)
    out = await asyncio.to_thread(k8stars, "image", "bases", cluster.real_node.registry, "--kind", "node", "--kind",
                                  "cpp")  # fmt: skip
    built = dict(line.split(" ", 1) for line in out.splitlines() if line.strip())
    namespace = f"charts-{uuid.uuid4().hex[:8]}"
    async with install_charts(cluster, namespace, image, built["node"]) as charts, \
            await Kube.connect(str(cluster.kubeconfig), field_manager="k8stars-tests") as kube:  # fmt: skip
        deployments = {d["metadata"]["name"] for d in (await kube.list(DEPLOYMENT, namespace))["items"]}
        assert FRAMEWORK | {f"{charts.controller_release}-k8stars-controller"} <= deployments  # all Ready
        for pod in (await kube.list(POD, namespace))["items"]:  # all of them real pods on the bridge, from our image
            assert ipaddress.ip_address(pod["status"]["podIP"]) in subnet
            assert {c["image"] for c in pod["spec"]["containers"]} == {image}
        await _serve_a_tserver(kube, cluster, charts, built["cpp"], tmp_path)


async def _serve_a_tserver(kube: Kube, cluster: Cluster, charts: Charts, cppbase: str, tmp_path: Path) -> None:
    assert cluster.real_node is not None
    namespace = charts.namespace
    binary = await asyncio.to_thread(peers.go_binary)
    package = tmp_path / "EchoServer.tgz"
    package.write_bytes(tgz({"EchoServer/EchoServer": LAUNCHER, "EchoServer/tarspeer": binary}))
    release = await asyncio.to_thread(build_release, cluster, package, cppbase, "go",
                                      f"{cluster.real_node.registry}/test/test.echoserver:charts")  # fmt: skip
    (node,) = (await kube.list(NODES, None, selector="k8stars.io/real-node=true"))["items"]
    label = f"tars.io/node.{namespace}"  # as a K8SFramework admin labels the nodes of a namespace
    await kube.merge_patch(NODES, None, node["metadata"]["name"], {"metadata": {"labels": {label: ""}}})
    try:
        created = await kube.create(TSERVER, namespace, tserver(release, charts.registry_locator))
        framework_config = await kube.get(Resource("k8s.tars.io", "v1beta3", "tframeworkconfigs", "TFrameworkConfig"),
                                          namespace, "tars-framework")  # fmt: skip
        assert framework_config is not None
        assert created["spec"]["release"]["nodeImage"] == framework_config["nodeImage"]["image"]  # the webhook's
        pod = await until(lambda: _served(kube, namespace), timeout=180, what="the TServer's pod Ready and active")
        assert pod["spec"]["initContainers"][0]["image"] == framework_config["nodeImage"]["image"]
        async with Communicator(locator=charts.registry_locator) as comm:
            query = comm.string_to_proxy(QueryFProxy, charts.registry_locator)
            ip = pod["status"]["podIP"]
            await until(lambda: _listed(query, ip), timeout=30, what=f"the registry pod lists {ip}")
            proxy = comm.string_to_proxy(ServantProxy, SERVANT, interface=ECHO)
            assert tuple(await proxy.tars_invoke("echo", ("by name, through the chart's registry",))) == (
                0, "by name, through the chart's registry")  # fmt: skip
        await kube.delete(TSERVER, namespace, "test-echoserver")
        try:
            await until(lambda: _gone(kube, namespace), timeout=150, what="the TServer's pods gone")
        except AssertionError as e:
            sts = await kube.list(Resource("apps", "v1", "statefulsets", "StatefulSet"), namespace)
            left = [(s["metadata"]["name"], s["metadata"].get("deletionTimestamp")) for s in sts["items"]]
            raise AssertionError(f"{e}\nstatefulsets: {left}\n{await pods_state(kube, namespace)}") from None
    finally:
        await kube.merge_patch(NODES, None, node["metadata"]["name"], {"metadata": {"labels": {label: None}}})


async def _gone(kube: Kube, namespace: str) -> bool:
    return not (await kube.list(POD, namespace, selector=SELECTOR))["items"]
