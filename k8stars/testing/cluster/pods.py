"""Running real pods on a cluster's real node from tests: images with our own builder into the cluster's registry,
a pod from one, Ready, and its IP (checked to be on the node's bridge: the only non-loopback address tests reach).

    image = await push_files_image(cluster, "test/server", {"/usr/local/server/bin/server": binary})
    pod = await run_pod(cluster, pod_manifest("srv", image, ["/usr/local/server/bin/server", "--port", "20001"],
                                              port=20001))
    ... call f"tcp -h {pod.ip} -p 20001" from the host ...
    await delete_pod(cluster, pod)
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .node import NODE_LABEL

if TYPE_CHECKING:
    from .launcher import Cluster

BASE_REPO = "k8stars/busybox"
BASE_TAG = "base"
# Container waiting reasons that will not go away by themselves; seen for FAIL_AFTER seconds, run_pod gives up.
STUCK_REASONS = frozenset(
    {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "CrashLoopBackOff", "CreateContainerError",
     "CreateContainerConfigError", "RunContainerError"}
)  # fmt: skip
FAIL_AFTER = 5.0


class PodError(RuntimeError):
    """A pod did not become Ready (its status says why) or is not on the real node's bridge."""


@dataclass(frozen=True)
class RealPod:
    namespace: str
    name: str
    ip: str  # on the real node's bridge
    node: str
    status: dict[str, Any]


def _registry(cluster: Cluster) -> str:
    if cluster.real_node is None:
        raise PodError("this cluster has no real node (start it with kubelet=True / up --kubelet)")
    return cluster.real_node.registry


async def push_files_image(cluster: Cluster, repo: str, files: Mapping[str, bytes | Path], tag: str = "1") -> str:
    """busybox (Debian's busybox-static) + `files` (image path -> content or local file, mode 0755) as
    `<registry>/<repo>:<tag>`; returns the reference by digest. Static binaries (TarsGo, ...) run as they are."""
    from k8stars.image import push_busybox_image, push_files_on_base  # aiohttp: imported only when used

    registry = _registry(cluster)
    base = await push_busybox_image(registry, BASE_REPO, BASE_TAG)
    return await push_files_on_base(base, f"{registry}/{repo}:{tag}", dict(files))


def pod_manifest(
    name: str,
    image: str,
    command: Sequence[str],
    *,
    port: int | None = None,
    namespace: str = "default",
    env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A bare pod on the real node. With `port`, Ready means kubelet could open a TCP connection to it on the pod IP.
    POD_IP is in the environment (so `$(POD_IP)` works in `command`, e.g. a TARS endpoint's `-h`)."""
    container: dict[str, Any] = {
        "name": "main",
        "image": image,
        "command": list(command),
        "env": [
            {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            *({"name": k, "value": v} for k, v in (env or {}).items()),
        ],
    }
    if port is not None:
        container["ports"] = [{"containerPort": port}]
        container["readinessProbe"] = {"tcpSocket": {"port": port}, "periodSeconds": 1}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "nodeSelector": {NODE_LABEL: "true"},
            "terminationGracePeriodSeconds": 1,
            "dnsPolicy": "Default",  # no cluster DNS on this cluster
            "containers": [container],
        },
    }


def on_bridge(cluster: Cluster, ip: str) -> bool:
    node = cluster.real_node
    return node is not None and bool(node.subnet) and ipaddress.ip_address(ip) in ipaddress.ip_network(node.subnet)


async def run_pod(cluster: Cluster, manifest: dict[str, Any], timeout: float = 60.0) -> RealPod:
    """Create the pod and wait (bounded) until it is Ready; fail early with its status if a container waits on an
    error (ErrImagePull, CrashLoopBackOff, ...) for longer than a few seconds."""
    meta = manifest["metadata"]
    path = f"/api/v1/namespaces/{meta['namespace']}/pods"
    await cluster.api("POST", path, manifest)
    deadline = time.monotonic() + timeout
    pod: dict[str, Any] = {}
    delay = 0.05
    stuck_since: float | None = None
    while time.monotonic() < deadline:
        pod = await cluster.api("GET", f"{path}/{meta['name']}")
        status = pod.get("status", {})
        if _stuck(status):
            stuck_since = stuck_since or time.monotonic()
            if time.monotonic() - stuck_since > FAIL_AFTER:
                raise PodError(f"pod {meta['namespace']}/{meta['name']} is stuck: {_why(pod)}")
        else:
            stuck_since = None
        if _ready(status):
            ip = status.get("podIP", "")
            if not on_bridge(cluster, ip):
                raise PodError(f"pod {meta['name']} has IP {ip!r}, not on the real node's bridge")
            return RealPod(meta["namespace"], meta["name"], ip, pod["spec"]["nodeName"], status)
        await asyncio.sleep(delay)
        delay = min(delay * 1.5, 0.5)
    raise PodError(f"pod {meta['namespace']}/{meta['name']} not Ready within {timeout:.0f} s: {_why(pod)}")


def _ready(status: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])


def _stuck(status: dict[str, Any]) -> bool:
    containers = status.get("containerStatuses") or []
    return any(c.get("state", {}).get("waiting", {}).get("reason") in STUCK_REASONS for c in containers)


def _why(pod: dict[str, Any]) -> str:
    status = pod.get("status", {})
    waiting = [
        f"{c['name']}: {next(iter(c.get('state', {}).values()), {})}" for c in status.get("containerStatuses") or []
    ]
    return f"phase {status.get('phase')}, conditions {status.get('conditions')}, containers {waiting}"


async def delete_pod(cluster: Cluster, pod: RealPod, *, wait: bool = False, timeout: float = 30.0) -> None:
    """Delete (grace 1 s); with `wait`, until the pod object is gone."""
    path = f"/api/v1/namespaces/{pod.namespace}/pods/{pod.name}"
    await cluster.api("DELETE", path, {"gracePeriodSeconds": 1}, ok=(404,))
    deadline = time.monotonic() + timeout
    while wait and time.monotonic() < deadline:
        got = await cluster.api("GET", path, ok=(404,))
        if got.get("kind") != "Pod":
            return
        await asyncio.sleep(0.2)
