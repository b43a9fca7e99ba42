"""K8SFramework's pod model, for real: a TarsGo server packaged as a K8SFramework user packages a release (a tgz of
the server's directory), built with `k8stars image build` on our cppbase, deployed by TServer YAML as K8SFramework
documents it. The operator renders the pod (tarsnode init container from our node image copies the agent into the
work dir; the server container runs the base's ENTRYPOINT: the agent, which starts the server by ServerType from
/usr/local/server/bin); the pod reaches Ready through `tars.io/active`, and the host calls the server by name
through the registry. Root only (skipped with the reason otherwise); `-m "not realpods"` deselects it."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from framework import Host, build_release, framework_on_host, images, load, tgz, until
from podkit import why

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
ECHO = load_runtime([peers.GO_SRC / "echo.tars"]).interfaces()["Test::Echo"]
# A k8stars server as a Python user writes one (started as `python3 bin/EchoServer.py --config=<conf>`).
PYTHON_SERVER = b"""import asyncio, sys
from pathlib import Path

from k8stars.tars.idl.compiler import load_runtime
from k8stars.tars.rpc import Application, Servant

ECHO = load_runtime([Path(__file__).with_name("echo.tars")]).interfaces()["Test::Echo"]


class EchoImp(Servant):
    __tars_interface__ = ECHO

    async def echo(self, s):
        return 0, f"python says {s}"


async def main():
    config = next(a.partition("=")[2] for a in sys.argv if a.startswith("--config="))
    app = Application.from_config(config)
    app.add_servant(EchoImp(), f"{app.name}.EchoObj")
    await app.run()


asyncio.run(main())
"""


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


@contextlib.asynccontextmanager
async def deployed(real: tuple[Kube, str], cluster: Cluster, tmp_path: Path, base: str, server_type: str,
                   files: dict[str, bytes | Path]) -> AsyncIterator[tuple[Host, Obj]]:  # fmt: skip
    """The framework images and the ``base`` kind's image built and registered, the package ``files`` released on it
    (`k8stars image build`), the operator and the registry on the host, and the TServer's one pod Ready."""
    kube, namespace = real
    assert cluster.real_node is not None
    built = await asyncio.to_thread(images, cluster, namespace, "node", base)
    package = tmp_path / "EchoServer.tgz"
    package.write_bytes(tgz(files))
    image = await asyncio.to_thread(build_release, cluster, package, built[base], server_type,
                                    f"{cluster.real_node.registry}/test/test.echoserver:{server_type}")  # fmt: skip
    for doc in load("ttemplate.yaml"):
        await kube.create(TTEMPLATE, namespace, doc)
    async with framework_on_host(cluster, namespace, tmp_path / "logs") as host:
        await kube.create(TSERVER, namespace, tserver(image, built["node"], host))
        (pod,) = await _ready(kube, namespace, 1, tmp_path)
        yield host, pod


async def _listed(query: QueryFProxy, hosts: set[str]) -> bool:
    """The registry hands out exactly ``hosts`` (it follows the pods' readiness within a second)."""
    return {e.host for e in await query.findObjectById(SERVANT)} == hosts


async def test_tarsgo_release_served_by_name_scaled_and_deleted(real: tuple[Kube, str], k8s_real_cluster: Cluster,
                                                                tmp_path: Path) -> None:  # fmt: skip
    kube, namespace = real
    binary = await asyncio.to_thread(peers.go_binary)
    files: dict[str, bytes | Path] = {"EchoServer/EchoServer": LAUNCHER, "EchoServer/tarspeer": binary}
    async with deployed(real, k8s_real_cluster, tmp_path, "cpp", "go", files) as (host, pod):
        cppbase = await kube.get(TIMAGE, namespace, "cppbase")
        assert cppbase is not None and cppbase["imageType"] == "base" and cppbase["supportedType"] == ["cpp", "go"]
        assert cppbase["metadata"]["labels"] == {"tars.io/ImageType": "base", "tars.io/Supported.cpp": "cpp",
                                                 "tars.io/Supported.go": "go"}  # fmt: skip
        node = await kube.get(TIMAGE, namespace, "node")
        assert node is not None and node["imageType"] == "node"
        assert node["releases"][0]["image"] == pod["spec"]["initContainers"][0]["image"]
        assert "command" not in pod["spec"]["containers"][0]  # the base's ENTRYPOINT: the agent from the work dir
        async with Communicator(locator=host.locator) as comm:
            query = comm.string_to_proxy(QueryFProxy, host.locator)
            await until(lambda: _listed(query, {pod["status"]["podIP"]}), timeout=10, what="QueryF lists the pod")
            proxy = comm.string_to_proxy(ServantProxy, SERVANT, interface=ECHO)
            assert tuple(await proxy.tars_invoke("echo", ("hello by name",))) == (0, "hello by name")

            # scale 1 -> 3: each new pod serves, and the registry hands out all three
            await kube.merge_patch(TSERVER, namespace, "test-echoserver", {"spec": {"k8s": {"replicas": 3}}})
            pods = await _ready(kube, namespace, 3, tmp_path)
            ips = {p["status"]["podIP"] for p in pods}
            await until(lambda: _listed(query, ips), timeout=10, what=f"QueryF lists {sorted(ips)}")
            for ip in sorted(ips):
                direct = comm.string_to_proxy(ServantProxy, f"{SERVANT}@tcp -h {ip} -p {PORT} -t 60000", interface=ECHO)
                assert tuple(await direct.tars_invoke("echo", (ip,))) == (0, ip)

            # delete a pod: its prestop takes it out of the registry before it stops
            gone = pods[0]
            start = time.monotonic()
            await kube.delete(POD, namespace, gone["metadata"]["name"])
            left = ips - {gone["status"]["podIP"]}
            await until(lambda: _listed(query, left), timeout=10, what="the deleted pod unlisted")
            print(f"deleted pod gone from QueryF after {time.monotonic() - start:.2f} s")  # the issue asks for < 2 s
            results = await asyncio.gather(*(proxy.tars_invoke("echo", (str(i),)) for i in range(20)))
            assert [r.r for r in results] == [str(i) for i in range(20)]


async def _call_by_name(host: Host, pod: Obj, text: str) -> tuple[int, str]:
    async with Communicator(locator=host.locator) as comm:
        query = comm.string_to_proxy(QueryFProxy, host.locator)
        await until(lambda: _listed(query, {pod["status"]["podIP"]}), timeout=10, what="QueryF lists the pod")
        proxy = comm.string_to_proxy(ServantProxy, SERVANT, interface=ECHO)
        return tuple(await proxy.tars_invoke("echo", (text,)))  # type: ignore[return-value]


async def test_python_release_on_pythonbase(real: tuple[Kube, str], k8s_real_cluster: Cluster,
                                            tmp_path: Path) -> None:  # fmt: skip
    """A k8stars (Python) server: bin/EchoServer.py on the python base (Debian's python3 + the k8stars runtime)."""
    files: dict[str, bytes | Path] = {"EchoServer/EchoServer.py": PYTHON_SERVER,
                                      "EchoServer/echo.tars": peers.GO_SRC / "echo.tars"}  # fmt: skip
    async with deployed(real, k8s_real_cluster, tmp_path, "python", "python", files) as (host, pod):
        assert await _call_by_name(host, pod, "hi") == (0, "python says hi")


async def test_nodejs_release_on_nodejsbase(real: tuple[Kube, str], k8s_real_cluster: Cluster,
                                            tmp_path: Path) -> None:  # fmt: skip
    """An @tars/rpc server (our Node interop peer with its node_modules) on the nodejs base (Debian's nodejs)."""
    peer = await asyncio.to_thread(peers.node_dir)
    files: dict[str, bytes | Path] = {"EchoServer/package.json": b'{"main": "echo_server.js"}'}
    for name in ("echo_server.js", "echo_common.js"):
        files[f"EchoServer/{name}"] = peer / name
    modules = peer.parent / "node_modules"
    files.update({f"EchoServer/node_modules/{f.relative_to(modules)}": f for f in modules.rglob("*") if f.is_file()})
    async with deployed(real, k8s_real_cluster, tmp_path, "nodejs", "nodejs", files) as (host, pod):
        assert await _call_by_name(host, pod, "hi") == (0, "hi")


async def _ready(kube: Kube, namespace: str, count: int, tmp_path: Path) -> list[Obj]:
    try:
        pods: list[Obj] = await until(lambda: ready_pods(kube, namespace, count), timeout=120,
                                      what=f"{count} pods Ready")  # fmt: skip
    except AssertionError as e:
        raise AssertionError(f"{e}\n{await why(kube, namespace, tmp_path / 'logs')}") from None
    return pods
