"""The real-pod mode's pure parts, without root: the pod /24 choice, the CNI config, the machine-state diff and the
skip rule (a real node is skipped with its reason where it cannot run, never silently)."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import pytest

from k8stars.testing.cluster import hoststate, network, node
from k8stars.testing.cluster.pytest_plugin import skip_unless_real_pods


def test_pick_subnet_avoids_every_route_and_address() -> None:
    nets = [ipaddress.IPv4Network(n) for n in ("192.0.2.0/24", "127.0.0.0/8")]
    assert network.pick_subnet(nets) == "10.244.0.0/24"
    # A /16 route covering the usual choice, and an address inside the next candidate.
    taken = [*nets, ipaddress.IPv4Network("10.244.0.0/16"), ipaddress.IPv4Network("10.200.77.0/24")]
    chosen = ipaddress.IPv4Network(network.pick_subnet(taken))
    assert chosen.prefixlen == 24 and not any(chosen.overlaps(t) for t in taken)
    with pytest.raises(network.NetworkError):
        network.pick_subnet([ipaddress.IPv4Network("10.0.0.0/8")])


def test_conflist_has_no_gateway_no_nat_no_routes(tmp_path: Path) -> None:
    net = network.PodNetwork(bridge="k8st-abc123", subnet="10.244.0.0/24", host_ip="10.244.0.1")
    conf = json.loads(network.write_conflist(net, tmp_path / "net.d", tmp_path / "ipam").read_text())
    (bridge,) = conf["plugins"]
    assert bridge["bridge"] == "k8st-abc123"
    assert bridge["isGateway"] is False and bridge["ipMasq"] is False and bridge["isDefaultGateway"] is False
    ipam = bridge["ipam"]
    assert "routes" not in ipam and ipam["dataDir"] == str(tmp_path / "ipam")
    (rng,) = ipam["ranges"][0]
    assert rng["subnet"] == "10.244.0.0/24" and rng["rangeStart"] == "10.244.0.10"  # the host keeps .1


def test_hoststate_diff_names_what_appeared_and_vanished() -> None:
    before = {"links": ["eth0 ether", "lo loopback"], "mounts": ["a"]}
    after = {"links": ["eth0 ether", "k8st-1 ether"], "mounts": ["a"]}
    assert hoststate.diff(before, after) == ["links: + k8st-1 ether", "links: - lo loopback"]
    assert hoststate.diff(before, before) == []


def test_hoststate_diff_leaves_out_other_real_nodes() -> None:
    ours = ("k8st-aaaaaa", "k8stars-aaaaaa", "/run/k8stars-run-ours1234", "/tmp/ours")
    before = {"links": ["eth0 ether master -"], "host paths": []}
    after = {
        "links": [
            "eth0 ether master -",
            "k8st-bbbbbb bridge master -",  # another cluster's bridge and veth
            "veth1234 ether master k8st-bbbbbb",
            "veth5678 ether master k8st-aaaaaa",  # ours: reported
            "dummy0 ether master -",  # nobody's: reported
        ],
        "host paths": ["/run/containerd/s/", "/var/lib/kubelet/device-plugins/"],  # shared, another node runs
        "processes": [
            "42 kubelet /x/kubelet --root-dir=/run/k8stars-run-other123/kubelet ['/run/k8stars-run-other123']"
        ],
    }
    assert hoststate.diff(before, after, ours=ours) == [
        "links: + dummy0 ether master -",
        "links: + veth5678 ether master k8st-aaaaaa",
    ]
    # Without another real node around, the shared directories count.
    alone = {"links": before["links"], "host paths": ["/run/containerd/s/"]}
    assert hoststate.diff(before, alone, ours=ours) == ["host paths: + /run/containerd/s/"]


def test_hoststate_snapshot_reads_this_machine() -> None:
    snap = hoststate.snapshot()
    assert set(snap) == {"links", "routes", "firewall", "mounts", "cgroups", "sysctls", "processes", "host paths"}
    assert any(line.startswith("lo ") for line in snap["links"])
    assert snap["mounts"]


def test_not_root_skips_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(node.os, "geteuid", lambda: 1000)
    monkeypatch.delenv("K8STARS_SKIP_CLUSTER", raising=False)
    monkeypatch.delenv("K8STARS_SKIP_REAL_PODS", raising=False)
    with pytest.raises(pytest.skip.Exception, match="not root"):
        skip_unless_real_pods()


def test_skip_on_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("K8STARS_SKIP_REAL_PODS", "1")
    with pytest.raises(pytest.skip.Exception, match="K8STARS_SKIP_REAL_PODS=1"):
        skip_unless_real_pods()
