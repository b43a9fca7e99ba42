"""Which pods a command goes to. K8SFramework's admin registry reaches ``<nodeName>:19385`` with nodeName a pod name
(``<app>-<server>-<n>``, through the headless Service's DNS); here nodeName is a pod name or a pod IP of the server,
found through the Kubernetes API (the pods labelled ``tars.io/ServerApp``/``tars.io/ServerName``), and an empty
nodeName means every pod of the server that has an IP. Without Kubernetes (``k8stars up``) nodeName must be the
pod IP itself."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from k8stars.kube.client import Kube, Obj
from k8stars.kube.meta import SERVER_APP, SERVER_NAME
from k8stars.kube.pods import pod_ips
from k8stars.kube.resources import POD

POD_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


@dataclass(frozen=True)
class Target:
    name: str  # the pod's name (its IP without Kubernetes)
    ip: str


def is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


class PodDirectory:
    """The pods of a server in ``namespace`` (``kube`` None: no Kubernetes, pod IPs given directly)."""

    def __init__(self, kube: Kube | None, namespace: str) -> None:
        self.kube = kube
        self.namespace = namespace

    async def pods(self, app: str, server: str) -> list[Obj]:
        assert self.kube is not None
        selector = f"{SERVER_APP}={app},{SERVER_NAME}={server}"
        items: list[Obj] = (await self.kube.list(POD, self.namespace, selector=selector)).get("items") or []
        return sorted(items, key=lambda p: str(p["metadata"]["name"]))

    async def targets(self, app: str, server: str, node: str) -> list[Target]:
        """The pods ``node`` names (all with an IP when empty); [] when none matches."""
        if self.kube is None:
            return [Target(node, node)] if is_ip(node) else []
        found = []
        for pod in await self.pods(app, server):
            name, ips = str(pod["metadata"]["name"]), sorted(pod_ips(pod))
            if ips and (not node or node == name or node in ips):
                found.append(Target(name, (pod.get("status") or {}).get("podIP") or ips[0]))
        return found

    async def ping_target(self, node: str) -> Target | None:
        """pingNode names a pod only (no server): by IP, or by name in the namespace."""
        if is_ip(node):
            return Target(node, node)
        if self.kube is None or not node:
            return None
        if not POD_NAME.match(node):
            return None
        pod = await self.kube.get(POD, self.namespace, node)
        ips = sorted(pod_ips(pod)) if pod else []
        return Target(node, ips[0]) if ips else None
