"""Bringing up the real node of a cluster whose control plane is up: the registry (and the pause image in it),
then containerd, then kubelet, until the Node is Ready. The pieces are in node.py and registry.py; the processes
start through the launcher's one way (`spawn`, `wait`: launcher._start and launcher._wait_for)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import _node_leftovers, _proc, node, registry

if TYPE_CHECKING:
    from .launcher import Cluster

Spawn = Callable[[str, list[str]], _proc.Proc]
Wait = Callable[[_proc.Proc, Callable[[], Awaitable[bool]], str], Awaitable[None]]


async def bring_up(
    cluster: Cluster, kubelet: Path, spawn: Spawn, wait: Wait, say: Callable[[str], None], t0: float
) -> None:
    ports = cluster.ports
    host_port = f"127.0.0.1:{ports.registry}"
    await asyncio.to_thread(_node_leftovers.sweep, say)  # a node whose launcher was killed before its down
    reg = spawn("registry", registry.argv(registry.write_config(cluster.workdir / "registry", ports.registry)))
    cluster.real_node = state = node.plan(
        cluster.workdir, registry=host_port, ports=(ports.kubelet, ports.kubelet_healthz)
    )
    cluster.save()  # before the host changes: `down` (or a failed start) must undo the bridge, cgroups and mounts
    owners = [_proc.current("launcher")]
    _node_leftovers.write(state, owners)  # before apply changes the host: a launcher killed meanwhile is swept
    await asyncio.to_thread(node.apply, state, cluster.workdir / "pki")
    cluster.save()
    await wait(reg, lambda: registry.ready(host_port), "registry /v2/")
    await node.push_pause_image(state)
    containerd = spawn("containerd", node.containerd_argv(state))
    owners.append(containerd)
    _node_leftovers.write(state, owners)
    await wait(containerd, lambda: node.containerd_ready(state), "containerd")
    kubelet_proc = spawn("kubelet", node.kubelet_argv(state, kubelet, cluster.kubeconfig))
    owners.append(kubelet_proc)
    _node_leftovers.write(state, owners)
    await wait(kubelet_proc, lambda: _node_ready(cluster, state.name), f"node {state.name} Ready")
    state.ready_seconds = round(time.monotonic() - t0, 2)
    say(
        f"cluster: real node {state.name} Ready after {state.ready_seconds:.1f} s "
        f"(pods on {state.subnet}, bridge {state.bridge}, registry {host_port})"
    )


async def _node_ready(cluster: Cluster, name: str) -> bool:
    got: dict[str, Any] = await cluster.api("GET", f"/api/v1/nodes/{name}", ok=(404,))
    if got.get("kind") != "Node":
        return False  # not registered yet (a 404 Status)
    conditions = got.get("status", {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
