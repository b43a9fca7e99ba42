"""Removing a real node so that the machine is as it was: pods drained while kubelet still runs, then whatever
survived is killed by PID (our cgroups, our containerd's shims), mounts under the node's directory undone, the cgroup
tree removed leaves first, the bridge deleted, kubelet's log links and the host directories it made removed."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any, Protocol

from . import network
from .node import CNI_RESULTS, CONTAINER_LOG_LINKS, NodeError, NodeState, cgroup_hierarchies, ctr


class _Api(Protocol):
    async def api(self, method: str, path: str, body: Any = None, *, ok: tuple[int, ...] = ...) -> Any: ...


async def drain(cluster: _Api, state: NodeState, timeout: float = 30.0) -> bool:
    """Delete the node's pods (grace 0: the objects go at once, kubelet then kills their containers) and wait until
    containerd runs no task.

    True when drained in time. The controllers and the scheduler should be stopped first, so nothing replaces them.
    """
    deadline = time.monotonic() + timeout
    selector = f"fieldSelector=spec.nodeName%3D{state.name}"
    with contextlib.suppress(Exception):  # an apiserver already gone: the forced path below does the work
        pods = await cluster.api("GET", f"/api/v1/pods?{selector}")
        for pod in pods["items"]:
            meta = pod["metadata"]
            path = f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}"
            await cluster.api("DELETE", path, {"gracePeriodSeconds": 0}, ok=(404,))
    delay = 0.1
    while time.monotonic() < deadline:
        try:
            left = (await cluster.api("GET", f"/api/v1/pods?{selector}"))["items"]
            tasks = (await ctr(state, "tasks", "ls", "-q", timeout=5)).split()
        except Exception:  # apiserver or containerd gone: nothing more to wait for here
            return False
        if not left and not tasks:
            return True
        await asyncio.sleep(delay)
        delay = min(delay * 1.5, 1.0)
    return False


async def remove_tasks(state: NodeState) -> None:
    """With kubelet stopped: SIGKILL and delete every task containerd still has (their shims then exit)."""
    try:
        tasks = (await ctr(state, "tasks", "ls", "-q", timeout=5)).split()
    except (NodeError, OSError, TimeoutError):
        return
    for task in tasks:
        with contextlib.suppress(NodeError, OSError, TimeoutError):
            await ctr(state, "tasks", "kill", "--all", "--signal", "SIGKILL", task, timeout=5)
        with contextlib.suppress(NodeError, OSError, TimeoutError):
            await ctr(state, "tasks", "delete", "--force", task, timeout=10)


def cleanup(state: NodeState) -> list[str]:
    """Undo everything `node.apply` and the node's processes did to the host; what could not be undone, as text."""
    problems: list[str] = []
    _kill_leftovers(state)
    problems += _unmount_below(state.path) + _unmount_below(Path(state.run_dir))
    problems += _remove_cgroups(state.cgroup_name)
    try:
        network.delete(state.bridge)
    except network.NetworkError as exc:
        problems.append(str(exc))
    _remove_log_links(state.pod_logs)
    _remove_cni_results(state)
    if not _mounts_below(Path(state.run_dir)):  # never delete through a mount that would not go
        shutil.rmtree(state.run_dir, ignore_errors=True)
    # kubelet's device-plugin files, in a hard-coded directory (not under its root dir); only when we made it. No
    # device plugins run here, so another kubelet started meanwhile loses nothing it uses.
    for name in ("kubelet.sock", "kubelet_internal_checkpoint"):
        if "/var/lib/kubelet/device-plugins" in state.new_host_dirs:
            Path("/var/lib/kubelet/device-plugins", name).unlink(missing_ok=True)
    for d in sorted(state.new_host_dirs, key=lambda p: len(Path(p).parts), reverse=True):
        with contextlib.suppress(OSError):
            Path(d).rmdir()  # only when empty: something else may have started using it meanwhile
    return problems


def _pids_in_cgroups(name: str) -> set[int]:
    pids: set[int] = set()
    for hierarchy in cgroup_hierarchies():
        root = hierarchy / name
        if root.is_dir():
            for procs in root.rglob("cgroup.procs"):
                with contextlib.suppress(OSError, ValueError):
                    pids.update(int(p) for p in procs.read_text().split())
    return pids


def _shim_pids(socket: Path) -> set[int]:
    """containerd-shim processes of *our* containerd: their command line names its socket."""
    needle = str(socket).encode()
    pids = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if needle in (entry / "cmdline").read_bytes():
                    pids.add(int(entry.name))
    return pids


def _kill_leftovers(state: NodeState) -> None:
    """Container processes (in our cgroup tree) and our containerd's shims that outlived the drain, by PID."""
    for _ in range(20):  # bounded: a few rounds for processes forked while we kill
        pids = _pids_in_cgroups(state.cgroup_name) | _shim_pids(state.containerd_socket)
        pids.discard(os.getpid())
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)


def _mounts_below(root: Path) -> list[str]:
    """Mount points at or under `root`, deepest (most recently mounted) first."""
    prefix = str(root)
    found = []
    for line in Path("/proc/mounts").read_text().splitlines():
        # /proc/mounts escapes space, tab, newline and backslash as octal.
        point = line.split()[1].encode().decode("unicode_escape")
        if point == prefix or point.startswith(prefix + "/"):
            found.append(point)
    return list(reversed(found))


def _unmount_below(root: Path) -> list[str]:
    for _ in range(5):  # a bind mount may show up more than once (stacked); bounded passes
        points = _mounts_below(root)
        if not points:
            return []
        for point in points:
            done = subprocess.run(["umount", point], capture_output=True, timeout=10, check=False)
            if done.returncode != 0:
                subprocess.run(["umount", "--lazy", point], capture_output=True, timeout=10, check=False)
    left = _mounts_below(root)
    return [f"still mounted: {p}" for p in left]


def _remove_cgroups(name: str) -> list[str]:
    problems = []
    for hierarchy in cgroup_hierarchies():
        root = hierarchy / name
        if not root.is_dir():
            continue
        dirs = sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True)
        for d in [*dirs, root]:
            for attempt in range(20):  # a cgroup is busy for a moment after its last process died
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError as exc:
                    if attempt == 19:
                        problems.append(f"cgroup {d}: {exc}")
                    time.sleep(0.05)
    return problems


def sandbox_ids(state: NodeState) -> set[str]:
    """IDs of the pod sandboxes and containers our containerd knows of, from its own directories (it may be dead)."""
    d = state.path / "containerd"
    ids: set[str] = set()
    for sub in ("root/io.containerd.grpc.v1.cri/sandboxes", "state/io.containerd.grpc.v1.cri/sandboxes",
                "state/io.containerd.runtime.v2.task/k8s.io"):  # fmt: skip
        with contextlib.suppress(OSError):
            ids.update(e.name for e in (d / sub).iterdir() if e.is_dir())
    return ids


def _remove_cni_results(state: NodeState) -> None:
    """containerd's CNI result cache of our sandboxes: a sandbox whose CNI DEL never ran (its tasks killed at down,
    its launcher killed before down) leaves its files behind. Ours are those of our network (named as the bridge,
    so the names are ours alone) and the loopback plugin's of our sandboxes (named by sandbox ID only)."""
    results = Path(CNI_RESULTS)
    if not results.is_dir():
        return
    ours = [*results.glob(f"{state.bridge}-*")]
    ours += [results / f"cni-loopback-{sandbox}-lo" for sandbox in sandbox_ids(state)]
    for entry in ours:
        with contextlib.suppress(OSError):
            entry.unlink()


def _remove_log_links(pod_logs: Path) -> None:
    if not CONTAINER_LOG_LINKS.is_dir():
        return
    for link in CONTAINER_LOG_LINKS.iterdir():
        with contextlib.suppress(OSError):
            if link.is_symlink() and os.readlink(link).startswith(str(pod_logs) + "/"):
                link.unlink()
