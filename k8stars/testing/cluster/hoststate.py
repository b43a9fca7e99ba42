"""What a real node could change on the machine, captured before `up` and after `down` to prove it left nothing.

Each part is a sorted list of text lines, so a difference reads as "+ line" (appeared) or "- line" (vanished):
links, IPv4/IPv6 routes of every table, iptables rules (legacy and nft back ends, nft ruleset when `nft` exists),
mounts, cgroups whose name says Kubernetes or k8stars, the sysctls kubelet touches, processes that belong to a
real node, and the host directories containerd and kubelet are known to create.

A shared machine has other work going on. Mounts it makes in the temp directory are left out (see _mounts), and
`diff(..., ours=...)` leaves out what belongs to *another* real node: lines of real-node state (a bridge, cgroup
root or run directory name, a node directory path) that name none of ours. So the lines carry those names: a veth
its bridge, a route its device's bridge, a process its command line and cgroup, a log link its target.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Collection
from pathlib import Path

Snapshot = dict[str, list[str]]

SYSCTLS = (
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
    "net/ipv4/ip_forward",
    "net/ipv4/conf/all/forwarding",
    "net/ipv6/conf/all/forwarding",
    "net/ipv4/conf/all/route_localnet",
    "net/bridge/bridge-nf-call-iptables",
    "net/bridge/bridge-nf-call-ip6tables",
)
HOST_PATHS = (
    "/run/containerd",
    "/run/containerd/s",
    "/run/netns",
    "/var/run/netns",
    "/var/lib/cni",
    "/var/lib/cni/results",
    "/var/lib/containerd",
    "/var/lib/kubelet",
    "/var/lib/kubelet/device-plugins",
    "/var/log/pods",
    "/var/log/containers",
    "/etc/cni",
    "/opt/cni",
    "/opt/containerd",
    "/usr/libexec/kubernetes",
    "/etc/kubernetes",
)
# Directories every containerd or kubelet on the machine shares, whose entries name no node (shim sockets by hash,
# kubelet's device-plugin socket): only whether they exist is recorded, and not even that while another real node
# is around.
SHARED_DIRS = ("/run/containerd/s", "/var/lib/kubelet/device-plugins")
LOOPBACK_RESULTS = "/var/lib/cni/results/cni-loopback"
_CGROUP_NAME = re.compile(r"kube|k8stars|pod[0-9a-f-]{8,}")
# Names a real node's state carries (network.new_bridge_name, node.plan's cgroup root and run dir, its directory).
REAL_NODE_MARK = re.compile(
    r"k8st-[0-9a-f]{6}|k8stars-[0-9a-f]{6}(?![\w-])|/run/k8stars-run-\w+|/node/(containerd|pod-logs)/"
)
_COUNTERS = re.compile(r"\[\d+:\d+\]")


def _run(*argv: str) -> list[str]:
    if shutil.which(argv[0]) is None:
        return []
    done = subprocess.run(list(argv), capture_output=True, text=True, timeout=20, check=False)
    return done.stdout.splitlines() if done.returncode == 0 else [f"({argv[0]} failed: {done.returncode})"]


def _masters() -> dict[str, str]:
    out = json.loads(subprocess.run(["ip", "-j", "link"], capture_output=True, text=True, check=True).stdout)
    return {link["ifname"]: f"{link.get('link_type', '')} master {link.get('master', '-')}" for link in out}


def _links(masters: dict[str, str]) -> list[str]:
    return sorted(f"{name} {info}" for name, info in masters.items())


def _routes(masters: dict[str, str]) -> list[str]:
    lines = []
    for family in ("-4", "-6"):
        for route in _run("ip", family, "route", "show", "table", "all"):
            dev = route.split(" dev ", 1)[1].split()[0] if " dev " in route else ""
            lines.append(f"{family} {route} ({masters.get(dev, '')})")
    return sorted(lines)


def _firewall() -> list[str]:
    lines = []
    for tool in ("iptables-save", "ip6tables-save", "iptables-legacy-save", "ip6tables-legacy-save"):
        # Comments carry timestamps, counters change with traffic: neither is state a node leaves behind.
        lines += [f"{tool}: {_COUNTERS.sub('', r)}" for r in _run(tool) if not r.startswith("#")]
    lines += [f"nft: {r}" for r in _run("nft", "list", "ruleset")]
    return lines


def _mounts(scratch: Path | None) -> list[str]:
    """Every mount, except those under the temp directory that are not under `scratch`: other work on a shared
    machine mounts there (mmdebstrap's chroots, other tests) and comes and goes while a test runs."""
    tmp = tempfile.gettempdir().rstrip("/") + "/"
    ours = str(scratch).rstrip("/") + "/" if scratch else None
    lines = []
    for line in Path("/proc/mounts").read_text().splitlines():
        source, point, kind = line.split()[:3]
        if point.startswith(tmp) and not (ours and (point + "/").startswith(ours)):
            continue
        lines.append(f"{source} {point} {kind}")
    return sorted(lines)


def _cgroups() -> list[str]:
    found = []
    root = Path("/sys/fs/cgroup")
    for hierarchy in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        # Two levels: the kubelet cgroup root (/k8stars-*, or /kubepods by default) and kubepods below it.
        for child in (c for c in hierarchy.iterdir() if c.is_dir()):
            if _CGROUP_NAME.search(child.name):
                found.append(str(child))
            found += [str(g) for g in child.iterdir() if g.is_dir() and _CGROUP_NAME.search(g.name)]
    return sorted(found)


def _sysctls() -> list[str]:
    lines = []
    for key in SYSCTLS:
        with contextlib.suppress(OSError):
            lines.append(f"{key} = {(Path('/proc/sys') / key).read_text().strip()}")
    return lines


def _node_processes() -> list[str]:
    """Processes of a real node: containerd, its shims, kubelet, and anything in a Kubernetes pod cgroup."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            comm = (entry / "comm").read_text().strip()
            cgroup = (entry / "cgroup").read_text()
            # A zombie holds nothing; the processes `up` started are reaped by init, sometimes a moment later.
            zombie = (entry / "stat").read_text().rpartition(")")[2].split()[0] == "Z"
            if not zombie and (comm.startswith(("containerd", "kubelet")) or "kubepods" in cgroup):
                argv = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:400]
                marks = sorted({m.group(0) for m in REAL_NODE_MARK.finditer(argv + cgroup)})
                found.append(f"{entry.name} {comm} {argv} {marks}")
    return sorted(found)


def _host_paths() -> list[str]:
    """Each directory that exists, and each entry (a link with its target) except in SHARED_DIRS."""
    lines = []
    for path in map(Path, HOST_PATHS):
        if not path.exists():
            continue
        lines.append(f"{path}/" if path.is_dir() else str(path))
        if path.is_dir() and str(path) not in SHARED_DIRS:
            for entry in sorted(path.iterdir()):
                target = f" -> {os.readlink(entry)}" if entry.is_symlink() else ""
                lines.append(f"{entry}{'/' if entry.is_dir() and not target else ''}{target}")
    return sorted(set(lines))


def snapshot(scratch: Path | None = None) -> Snapshot:
    """The machine now; `scratch`: the cluster's directory when it lies under the temp directory (see _mounts)."""
    masters = _masters()
    return {
        "links": _links(masters),
        "routes": _routes(masters),
        "firewall": _firewall(),
        "mounts": _mounts(scratch),
        "cgroups": _cgroups(),
        "sysctls": _sysctls(),
        "processes": _node_processes(),
        "host paths": _host_paths(),
    }


def diff(before: Snapshot, after: Snapshot, *, ours: Collection[str] = ()) -> list[str]:
    """Lines that appeared (+) or vanished (-), per part; empty when the machine is as it was.

    With `ours` (the real node's bridge, cgroup root, run directory and node directory): lines that carry a real
    node's name but none of these belong to another real node and are left out, and so are the SHARED_DIRS while
    such a node is seen.
    """
    ours = [o for o in ours if o]

    def foreign(line: str) -> bool:
        return bool(ours) and bool(REAL_NODE_MARK.search(line)) and not any(o in line for o in ours)

    others = any(foreign(line) for snap in (before, after) for lines in snap.values() for line in lines)
    shared = {f"{d}/" for d in SHARED_DIRS} if others else set()

    def skip(line: str) -> bool:
        # the CNI loopback plugin's results name a container only, not its node: another node's while one runs
        return foreign(line) or line in shared or (others and line.startswith(f"{LOOPBACK_RESULTS}-"))

    out = []
    for part in before.keys() | after.keys():
        old, new = before.get(part, []), after.get(part, [])
        out += [f"{part}: - {line}" for line in old if line not in new and not skip(line)]
        out += [f"{part}: + {line}" for line in new if line not in old and not skip(line)]
    return sorted(out)
