"""The pod network of a real node: one Linux bridge with a /24 of its own, and the CNI config that puts pods on it.

Pods get addresses from that /24 and nothing else: the CNI bridge is not their gateway, there is no NAT and no route
off the bridge, and ip_forward stays as it is. So pods reach the host (on the bridge address, which is also the node
IP) and each other, and the host reaches them, but nothing on the bridge reaches any other network.
"""

from __future__ import annotations

import ipaddress
import json
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from k8stars.paths import cache_home, file_lock

# Candidates for the pod /24, tried in order; the first that overlaps no route and no address of the machine wins.
# 10.244/16 is what Kubernetes guides use for pods; the rest are fallbacks inside 10/8.
_CANDIDATES = [f"10.244.{n}.0/24" for n in range(0, 250, 7)] + [f"10.{n}.77.0/24" for n in range(200, 250)]
CNI_BIN_DIR = Path("/usr/lib/cni")
# The plugins the conflist uses (containerd's CRI also runs `loopback` for each pod's lo).
CNI_PLUGINS = ("bridge", "host-local", "loopback")


class NetworkError(RuntimeError):
    """The bridge could not be made or removed."""


@dataclass(frozen=True)
class PodNetwork:
    bridge: str
    subnet: str  # e.g. 10.244.0.0/24
    host_ip: str  # the bridge's address: the node IP, the host's side of the pod network

    @property
    def prefix(self) -> int:
        return ipaddress.ip_network(self.subnet).prefixlen


def _ip(*args: str) -> str:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10, check=False)
    if done.returncode != 0:
        raise NetworkError(f"ip {' '.join(args)}: {done.stderr.strip() or done.returncode}")
    return done.stdout


def _ip_json(*args: str) -> list[dict[str, Any]]:
    out = _ip("-j", *args).strip()
    return list(json.loads(out)) if out else []


def used_networks() -> list[ipaddress.IPv4Network]:
    """Every IPv4 route destination (all tables, the default route excepted) and every interface address's network."""
    nets = []
    for route in _ip_json("-4", "route", "show", "table", "all"):
        dst = route.get("dst", "default")
        if dst != "default":
            nets.append(ipaddress.IPv4Network(dst, strict=False))
    for link in _ip_json("-4", "addr", "show"):
        for addr in link.get("addr_info") or []:
            nets.append(ipaddress.IPv4Network(f"{addr['local']}/{addr['prefixlen']}", strict=False))
    return nets


def pick_subnet(used: list[ipaddress.IPv4Network] | None = None) -> str:
    """The first candidate /24 that overlaps nothing this machine routes or holds."""
    used = used_networks() if used is None else used
    for candidate in _CANDIDATES:
        net = ipaddress.IPv4Network(candidate)
        if not any(net.overlaps(u) for u in used):
            return candidate
    raise NetworkError(f"no free /24 among {len(_CANDIDATES)} candidates in 10.0.0.0/8; routes: {used}")


def bridge_exists(name: str) -> bool:
    return Path("/sys/class/net", name).exists()


def new_bridge_name() -> str:
    """Unique per cluster, so that two real nodes can coexist (at most 15 characters: IFNAMSIZ)."""
    return f"k8st-{secrets.token_hex(3)}"


def create(name: str) -> PodNetwork:
    """A new bridge holding the first address of a free /24.

    Picking the /24 and adding the address happen under a lock in our cache directory: two clusters starting at
    once would otherwise both see 10.244.0.0/24 free.
    """
    if bridge_exists(name):
        raise NetworkError(f"interface {name} exists already")
    with file_lock(cache_home() / "real-node-network.lock"):
        return _create_locked(name)


def _create_locked(name: str) -> PodNetwork:
    subnet = pick_subnet()
    host_ip = str(ipaddress.IPv4Network(subnet)[1])
    _ip("link", "add", name, "type", "bridge")
    try:
        # No IPv6 on the bridge: no link-local address, no router solicitations, nothing to clean up there.
        ipv6 = Path(f"/proc/sys/net/ipv6/conf/{name}/disable_ipv6")
        if ipv6.exists():
            ipv6.write_text("1")
        _ip("addr", "add", f"{host_ip}/24", "dev", name)
        _ip("link", "set", name, "up")
    except BaseException:
        delete(name)
        raise
    return PodNetwork(bridge=name, subnet=subnet, host_ip=host_ip)


def delete(bridge: str) -> None:
    """Remove the bridge (its address and route go with it); pods' veth ends are gone with their namespaces."""
    if bridge_exists(bridge):
        _ip("link", "delete", bridge, "type", "bridge")


def leftover_veths(bridge: str) -> list[str]:
    """veth ends still attached to the bridge (none once every pod sandbox is gone)."""
    brif = Path("/sys/class/net", bridge, "brif")
    return sorted(p.name for p in brif.iterdir()) if brif.is_dir() else []


def write_conflist(net: PodNetwork, conf_dir: Path, ipam_dir: Path) -> Path:
    """The CNI config containerd's CRI reads: bridge + host-local, no gateway, no masquerade, no routes.

    host-local keeps its leases in `ipam_dir` (not /var/lib/cni), so they leave with the cluster's directory.
    """
    subnet = ipaddress.IPv4Network(net.subnet)
    conf_dir.mkdir(parents=True, exist_ok=True)
    ipam_dir.mkdir(parents=True, exist_ok=True)
    conflist = {
        "cniVersion": "0.4.0",
        # Named as the bridge: containerd's CNI result cache (/var/lib/cni/results/<network>-...) then says whose.
        "name": net.bridge,
        "plugins": [
            {
                "type": "bridge",
                "bridge": net.bridge,
                "isGateway": False,
                "isDefaultGateway": False,
                "ipMasq": False,
                # A pod can reach itself through a Service-less hairpin (its own IP), as with kubenet.
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": net.subnet, "rangeStart": str(subnet[10]), "rangeEnd": str(subnet[250])}]],
                    "dataDir": str(ipam_dir),
                },
            }
        ],
    }
    path = conf_dir / "10-k8stars.conflist"
    path.write_text(json.dumps(conflist, indent=2))
    return path


def missing_plugins() -> list[str]:
    return [p for p in CNI_PLUGINS if not (CNI_BIN_DIR / p).is_file()]
