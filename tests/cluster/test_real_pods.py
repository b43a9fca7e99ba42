"""Real pods: a control plane with a real node (containerd + kubelet, pods on a bridge of their own) and a local
registry, from `ClusterOptions(kubelet=True)` / the `k8s_real_cluster` fixture (docs/k8s-cluster.md).

Runs as root only (skipped with the reason otherwise, or when containerd, runc, the CNI plugins or docker-registry
are missing); `-m "not realpods"` deselects the tier. Traffic goes only to 127.0.0.1 and to pod IPs on the bridge
the launcher made (checked before each connection); pods have no route off that bridge (checked too).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import k8stars
from k8stars.testing.cluster import Cluster, ensure_binaries, eventually, hoststate, pods
from k8stars.testing.cluster._http import request
from k8stars.testing.cluster.pytest_plugin import skip_unless_real_pods

pytestmark = pytest.mark.realpods

NAMESPACE = "default"
PAGE = "pong from a real pod"


async def _push_image(cluster: Cluster) -> str:
    from k8stars.image import push_busybox_image

    assert cluster.real_node is not None
    return await push_busybox_image(cluster.real_node.registry, "k8stars/test-busybox", "1")


def _web_pod(name: str, image: str) -> dict[str, Any]:
    """busybox httpd on 8080 behind a readiness probe (kubelet -> pod IP), a line on stdout for `kubectl logs`."""
    script = f"echo hello from {name}; mkdir -p /www; echo '{PAGE}' > /www/index.html; exec httpd -f -p 8080 -h /www"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"app": name}},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "dnsPolicy": "Default",  # no cluster DNS here
            "containers": [
                {
                    "name": "web",
                    "image": image,
                    "command": ["sh", "-c", script],
                    "ports": [{"containerPort": 8080}],
                    "readinessProbe": {"httpGet": {"path": "/index.html", "port": 8080}, "periodSeconds": 1},
                }
            ],
        },
    }


def _status(pod: dict[str, Any], kind: str) -> bool:
    return any(c["type"] == kind and c["status"] == "True" for c in pod.get("status", {}).get("conditions") or [])


async def _run_pod(cluster: Cluster, name: str, image: str, timeout: float = 60) -> tuple[dict[str, Any], float, float]:
    """Create the pod; return it once Ready, with seconds from create to Running and to Ready."""
    path = f"/api/v1/namespaces/{NAMESPACE}/pods"
    t0 = time.monotonic()
    await cluster.api("POST", path, _web_pod(name, image))
    running = 0.0
    deadline = t0 + timeout
    while time.monotonic() < deadline:
        pod = await cluster.api("GET", f"{path}/{name}")
        if not running and pod["status"].get("phase") == "Running":
            running = time.monotonic() - t0
        if _status(pod, "Ready"):
            return pod, running or time.monotonic() - t0, time.monotonic() - t0
        await asyncio.sleep(0.05)
    raise AssertionError(f"pod {name} not Ready in {timeout:.0f} s: {pod.get('status')}")


def _kubectl(cluster: Cluster, *args: str, timeout: float = 30) -> str:
    done = subprocess.run(
        ["kubectl", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, **cluster.env()},
    )
    assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}"
    return done.stdout


def _on_bridge(cluster: Cluster, ip: str) -> str:
    """The pod IP, after checking it is on the launcher's bridge (the only non-loopback address tests may reach)."""
    assert cluster.real_node is not None
    assert ipaddress.ip_address(ip) in ipaddress.ip_network(cluster.real_node.subnet), (ip, cluster.real_node)
    return ip


# ---- the machine is left as found (first: it runs a cluster of its own and must not see another one change) -------


def _cli(workdir: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    src = str(Path(k8stars.__file__).resolve().parents[1])  # this checkout, installed or not
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")]))}
    argv = [sys.executable, "-m", "k8stars.testing.cluster", "--workdir", str(workdir), *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False, env=env)


def test_up_kubelet_env_down_leaves_machine_as_found(tmp_path: Path, record_property: Any) -> None:
    """`up --kubelet`, a pod Ready, `down`: links, routes, firewall, mounts, cgroups, sysctls, processes and the
    host directories containerd and kubelet use are as before. Also the warm-start and teardown figures."""
    skip_unless_real_pods()
    asyncio.run(ensure_binaries())  # a cold build must not count as start-up
    workdir = tmp_path / "cluster"
    before = hoststate.snapshot(workdir)
    t0 = time.monotonic()
    up = _cli(workdir, "up", "--kubelet")
    try:
        assert up.returncode == 0, up.stderr
        cluster = Cluster.load(workdir)
        assert cluster.real_node is not None and not cluster.node_names  # the real node instead of kwok's
        node = cluster.real_node
        # Other real nodes may come and go on a shared machine meanwhile (other tests): the diffs leave them out.
        ours = (node.bridge, node.cgroup_name, node.run_dir, str(workdir))
        registry = cluster.real_node.registry
        assert f"export K8STARS_IMAGE_REGISTRY={registry}" in up.stdout and registry.startswith("127.0.0.1:")
        assert _cli(workdir, "env").stdout == up.stdout
        image = asyncio.run(_push_image(cluster))
        pod, running, _ = asyncio.run(_run_pod(cluster, "first", image))
        first_ready = time.monotonic() - t0
        during = hoststate.snapshot(workdir)
    finally:
        t1 = time.monotonic()
        down = _cli(workdir, "down")
        teardown = time.monotonic() - t1
    assert down.returncode == 0, down.stderr
    after = hoststate.snapshot(workdir)
    figures = {
        "up_s": cluster.startup_seconds,
        "up_to_first_pod_ready_s": round(first_ready, 2),
        "pod_create_to_running_s": round(running, 2),
        "down_s": round(teardown, 2),
    }
    for key, value in figures.items():
        record_property(key, value)
    print(f"real node figures: {figures}")
    # The snapshot does see the node: a bridge, mounts, cgroups and processes while it ran...
    changed = {line.split(":")[0] for line in hoststate.diff(before, during, ours=ours)}
    assert {"links", "mounts", "cgroups", "processes", "routes"} <= changed, changed
    # ...and none of it afterwards.
    assert hoststate.diff(before, after, ours=ours) == []
    assert not workdir.exists()
    assert pod["status"]["podIP"]


# ---- one pod on the session's real node, shared by the tests below ------------------------------------------------


@pytest.fixture(scope="module")
def web_pod(k8s_real_cluster: Cluster) -> Iterator[dict[str, Any]]:
    name = f"web-{uuid.uuid4().hex[:8]}"
    image = asyncio.run(_push_image(k8s_real_cluster))
    pod, running, ready = asyncio.run(_run_pod(k8s_real_cluster, name, image))
    print(f"real pod {name}: create -> Running {running:.2f} s, -> Ready {ready:.2f} s")
    yield pod
    with contextlib.suppress(Exception):
        asyncio.run(k8s_real_cluster.api("DELETE", f"/api/v1/namespaces/{NAMESPACE}/pods/{name}", ok=(404,)))


def test_pod_is_running_and_ready_on_the_real_node(k8s_real_cluster: Cluster, web_pod: dict[str, Any]) -> None:
    assert k8s_real_cluster.real_node is not None
    assert web_pod["spec"]["nodeName"] == k8s_real_cluster.real_node.name
    assert web_pod["status"]["phase"] == "Running"
    assert _status(web_pod, "Ready")
    assert web_pod["status"]["hostIP"] == k8s_real_cluster.real_node.host_ip
    _on_bridge(k8s_real_cluster, web_pod["status"]["podIP"])
    (container,) = web_pod["status"]["containerStatuses"]
    assert container["ready"]
    # Pulled from the launcher's registry (by digest: containerd then reports the image by its ID).
    assert web_pod["spec"]["containers"][0]["image"].startswith(k8s_real_cluster.real_node.registry + "/")
    assert container["imageID"].endswith(web_pod["spec"]["containers"][0]["image"].split("@")[1])


def test_kubectl_logs(k8s_real_cluster: Cluster, web_pod: dict[str, Any]) -> None:
    out = _kubectl(k8s_real_cluster, "logs", "-n", NAMESPACE, web_pod["metadata"]["name"])
    assert f"hello from {web_pod['metadata']['name']}" in out


def test_kubectl_exec_and_no_route_off_the_bridge(k8s_real_cluster: Cluster, web_pod: dict[str, Any]) -> None:
    name = web_pod["metadata"]["name"]
    assert _kubectl(k8s_real_cluster, "exec", "-n", NAMESPACE, name, "--", "cat", "/www/index.html").strip() == PAGE
    routes = _kubectl(k8s_real_cluster, "exec", "-n", NAMESPACE, name, "--", "ip", "-4", "route").splitlines()
    assert k8s_real_cluster.real_node is not None
    assert [r.split()[0] for r in routes] == [k8s_real_cluster.real_node.subnet], routes  # no default route


async def test_host_reaches_pod_ip(k8s_real_cluster: Cluster, web_pod: dict[str, Any]) -> None:
    ip = _on_bridge(k8s_real_cluster, web_pod["status"]["podIP"])
    response = await request("GET", f"http://{ip}:8080/index.html", timeout=5)
    assert response.status == 200 and response.text.strip() == PAGE


async def test_kubectl_port_forward(k8s_real_cluster: Cluster, web_pod: dict[str, Any]) -> None:
    proc = await asyncio.create_subprocess_exec(
        "kubectl",
        "port-forward",
        "-n",
        NAMESPACE,
        "--address=127.0.0.1",
        f"pod/{web_pod['metadata']['name']}",
        ":8080",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, **k8s_real_cluster.env()},
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
        match = re.search(r"Forwarding from 127\.0\.0\.1:(\d+) -> 8080", line)
        assert match, line
        response = await request("GET", f"http://127.0.0.1:{match.group(1)}/index.html", timeout=5)
        assert response.status == 200 and response.text.strip() == PAGE
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 10)


# ---- a TARS server in a real pod, called from the host (groundwork for K8SFramework's pod model) ------------------


async def test_tarsgo_pod_and_host_call_each_other_over_tars(k8s_real_cluster: Cluster) -> None:
    """TarsGo's static echo server (our interop peer) in a busybox image from our builder, on the real node: the
    host calls it over TARS at the pod IP, as a client of the TARS registry would once it hands out pod endpoints;
    and TarsGo's client, in the pod, calls a k8stars server on the host's node IP."""
    from k8stars.tars.idl.compiler import load_runtime
    from k8stars.tars.rpc import Communicator, Servant, ServantProxy, Server
    from k8stars.testing import peers

    binary = await asyncio.to_thread(peers.go_binary)
    image = await pods.push_files_image(
        k8s_real_cluster, "k8stars/test-tarsgo", {"usr/local/server/bin/tarspeer": binary}
    )
    port = 20001
    command = ["/usr/local/server/bin/tarspeer", "echo-server", "--endpoint", f"tcp -h $(POD_IP) -p {port} -t 60000"]
    pod = await pods.run_pod(
        k8s_real_cluster, pods.pod_manifest(f"tarsgo-{uuid.uuid4().hex[:8]}", image, command, port=port)
    )
    try:
        echo_iface = load_runtime([peers.GO_SRC / "echo.tars"]).interfaces()["Test::Echo"]
        target = f"Test.EchoServer.EchoObj@tcp -h {_on_bridge(k8s_real_cluster, pod.ip)} -p {port} -t 60000"
        async with Communicator() as comm:
            proxy = comm.string_to_proxy(ServantProxy, target, interface=echo_iface)
            assert tuple(await proxy.tars_invoke("echo", ("hello from the host",))) == (0, "hello from the host")
            results = await asyncio.gather(*(proxy.tars_invoke("echo", (str(i),)) for i in range(100)))
            assert [r.r for r in results] == [str(i) for i in range(100)]

        class EchoImp(Servant):
            __tars_interface__ = echo_iface

            async def echo(self, s: str) -> tuple[int, str]:
                return 0, f"host got {s}"

        assert k8s_real_cluster.real_node is not None
        server = Server()
        servant = "Test.HostServer.EchoObj"
        adapter = server.add_servant(EchoImp(), servant, f"tcp -h {k8s_real_cluster.real_node.host_ip} -p 0 -t 60000")
        await server.start()
        try:
            client = ["/usr/local/server/bin/tarspeer", "echo-client", f"{servant}@{adapter.endpoint}", "--once", "hi"]
            out = await asyncio.to_thread(_kubectl, k8s_real_cluster, "exec", "-n", NAMESPACE, pod.name, "--", *client)
            assert json.loads(out) == {"ret": 0, "r": "host got hi"}
        finally:
            await server.stop()
    finally:
        await pods.delete_pod(k8s_real_cluster, pod)


async def test_pod_reaches_a_host_service_on_the_node_ip(k8s_real_cluster: Cluster, web_pod: dict[str, Any]) -> None:
    """The other direction: a server on the host bound to the node IP (the bridge address) answers a pod."""
    assert k8s_real_cluster.real_node is not None
    host_ip = k8s_real_cluster.real_node.host_ip

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.0 200 OK\r\nContent-Length: 9\r\n\r\nfrom host")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, host_ip, 0)
    port = server.sockets[0].getsockname()[1]
    try:
        name = web_pod["metadata"]["name"]
        # busybox's nc: Debian's static busybox wget resolves through glibc's NSS, which a static binary lacks.
        request = f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 {host_ip} {port}"
        out = await asyncio.to_thread(
            _kubectl, k8s_real_cluster, "exec", "-n", NAMESPACE, name, "--", "sh", "-c", request
        )
        assert out.startswith("HTTP/1.0 200 OK") and out.endswith("from host"), out
    finally:
        server.close()
        await server.wait_closed()


async def test_service_endpoints_list_the_pod_ip(k8s_real_cluster: Cluster, web_pod: dict[str, Any]) -> None:
    """With real pod IPs only, KCM's endpoint controllers run: a Service's EndpointSlice lists the pod."""
    name = web_pod["metadata"]["name"]
    assert web_pod["metadata"]["labels"] == {"app": name}
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"selector": {"app": name}, "ports": [{"port": 8080}]},
    }
    await k8s_real_cluster.api("POST", f"/api/v1/namespaces/{NAMESPACE}/services", svc)
    try:

        async def addresses() -> list[str] | None:
            query = f"labelSelector=kubernetes.io%2Fservice-name%3D{name}"
            path = f"/apis/discovery.k8s.io/v1/namespaces/{NAMESPACE}/endpointslices?{query}"
            slices = (await k8s_real_cluster.api("GET", path))["items"]
            found = [a for s in slices for e in s.get("endpoints") or [] for a in e["addresses"]]
            return found or None

        assert await eventually(addresses, timeout=20, what="EndpointSlice addresses") == [web_pod["status"]["podIP"]]
    finally:
        await k8s_real_cluster.api("DELETE", f"/api/v1/namespaces/{NAMESPACE}/services/{name}", ok=(404,))
