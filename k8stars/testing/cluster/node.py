"""A real node for the local cluster: containerd (Debian 1.6) + runc + the CNI bridge, and a kubelet built with the
control plane. What this machine kind needs, and why, is in shared/reference/real-pods.md; the short of it:

- everything containerd and kubelet write lives in the node's directory (root, state, netns mounts, runc state, CNI
  leases, pod logs, volume plugins) or in a short /run/k8stars-* one (sockets, kubelet's root), so `down` removes
  it with those; the few host paths they use whatever they are told are listed in _MAYBE_CREATED;
- a cgroup root of its own (`/k8stars-<id>` in every hierarchy): two real nodes on one machine never garbage-collect
  each other's pod cgroups, and removing the cluster's cgroups is removing one tree;
- kubelet runs in a mount namespace of its own with files bind-mounted over the kernel sysctls it would rewrite
  (vm.overcommit_memory, kernel.panic, ...), so the host's values stay; its root directory is a shared bind mount,
  so the volumes it mounts there (service-account tokens, configMaps) still reach containerd;
- no iptables chains (makeIPTablesUtilChains: false), no OOM-score lowering (the process lacks CAP_SYS_RESOURCE).

Teardown (drain, then the processes, then `cleanup`) is in _node_teardown.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from . import certs, network, registry

NODE_LABEL = "k8stars.io/real-node"
CONTAINERD_NAMESPACE = "k8s.io"  # the CRI plugin's containerd namespace
PAUSE_REPO = "k8stars/pause"
PAUSE_TAG = "busybox"
RUNC = "/usr/sbin/runc"
# The sysctls kubelet sets to these values at start-up (pkg/kubelet/cm: setupKernelTunables); a file holding the
# wanted value is bind-mounted over each one that differs, inside kubelet's own mount namespace only.
KUBELET_SYSCTLS = {
    "vm/overcommit_memory": "1",
    "vm/panic_on_oom": "0",
    "kernel/panic": "10",
    "kernel/panic_on_oops": "1",
    "kernel/keys/root_maxkeys": "1000000",
    "kernel/keys/root_maxbytes": "25000000",
}
# kubelet links every container's log here whatever podLogsDir says (hard-coded); down removes the links it left.
CONTAINER_LOG_LINKS = Path("/var/log/containers")


class NodeError(RuntimeError):
    """The real node could not be set up."""


@dataclass
class NodeState:
    """Everything `down` needs to remove the node again, persisted in the cluster's state.json."""

    name: str
    dir: str  # the node's directory: containerd root/state, configs, CNI leases, pod logs
    bridge: str
    subnet: str
    host_ip: str
    registry: str  # host:port of the local registry
    cgroup_name: str  # /<cgroup_name> in every cgroup hierarchy
    kubelet_port: int
    healthz_port: int
    pause_image: str
    # containerd's sockets and kubelet's root (it holds sockets too): a short directory of their own, as a unix
    # socket path has at most 104 bytes and a pytest temp dir is longer than that; removed at down.
    run_dir: str
    # Host paths that did not exist before the node and that containerd or kubelet may create (removed if empty).
    new_host_dirs: list[str] = field(default_factory=list)
    ready_seconds: float = 0.0

    @property
    def path(self) -> Path:
        return Path(self.dir)

    @property
    def containerd_socket(self) -> Path:
        return Path(self.run_dir) / "containerd.sock"

    @property
    def kubelet_root(self) -> Path:
        return Path(self.run_dir) / "kubelet"

    @property
    def pod_logs(self) -> Path:
        return self.path / "pod-logs"


def missing_requirements() -> list[str]:
    """What this machine lacks for a real node (empty: good to go)."""
    missing = []
    for exe in ("containerd", "containerd-shim-runc-v2", "ctr", "unshare", "mount", "umount", "ip"):
        if shutil.which(exe) is None:
            missing.append(exe)
    if not Path(RUNC).is_file():
        missing.append(RUNC)
    missing += [f"{network.CNI_BIN_DIR}/{p}" for p in network.missing_plugins()]
    if not cgroup_hierarchies():
        missing.append("cgroup hierarchies under /sys/fs/cgroup")
    if not Path("/proc/filesystems").read_text().count("overlay"):
        missing.append("overlay file system")
    return missing


def unable_to_run() -> str | None:
    """Why a real node cannot run on this machine (None: it can)."""
    if os.geteuid() != 0:
        return "not root (containerd, kubelet, mounts, cgroups and a bridge need root)"
    if lacking := [name for bit, name in _CAPS.items() if not _effective_caps() >> bit & 1]:
        return f"root without {lacking} (a container that does not grant them)"
    if lacking := missing_requirements() + ([] if registry.binary() else [registry.BINARY]):
        return f"missing {lacking} (Debian: containerd runc containernetworking-plugins docker-registry)"
    return None


_CAPS = {12: "CAP_NET_ADMIN", 21: "CAP_SYS_ADMIN"}  # bridges and veths; mounts, namespaces, cgroups


def _effective_caps() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return int(line.split()[1], 16)
    return 0


def cgroup_hierarchies() -> list[Path]:
    """Mount points of every cgroup (v1) and cgroup2 hierarchy."""
    out = []
    for line in Path("/proc/mounts").read_text().splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[2] in ("cgroup", "cgroup2"):
            out.append(Path(parts[1]))
    return out


# Host directories containerd 1.6 or kubelet create whatever they are told: shim sockets (/run/containerd/s), CNI
# result cache (/var/lib/cni/results), the device-plugin socket directory, kubelet's /var/log/containers links.
# Each one that did not exist before is removed at down, deepest first, once empty again.
CNI_RESULTS = "/var/lib/cni/results"  # libcni's cache of each sandbox's ADD result: <network>-<container>-<ifname>
_MAYBE_CREATED = (
    "/run/containerd",
    "/run/containerd/s",
    "/var/lib/cni",
    CNI_RESULTS,
    "/var/lib/kubelet",
    "/var/lib/kubelet/device-plugins",
    "/var/log/pods",
    str(CONTAINER_LOG_LINKS),
)


def plan(workdir: Path, *, registry: str, ports: tuple[int, int]) -> NodeState:
    """Names, ports and paths, and the node's directories; nothing on the host changes yet. The state is recorded
    before `apply`, so that a start that fails half-way is undone as well (_node_teardown.cleanup is idempotent)."""
    node_dir = workdir / "node"
    for sub in ("containerd", "pod-logs", "volume-plugins", "cni/net.d", "cni/ipam", "sysctl"):
        (node_dir / sub).mkdir(parents=True, exist_ok=True)
    return NodeState(
        name="k8stars-real-node",
        dir=str(node_dir),
        bridge=network.new_bridge_name(),
        subnet="",  # chosen by apply (under a lock: two clusters starting at once must not pick the same)
        host_ip="",
        registry=registry,
        cgroup_name=f"k8stars-{secrets.token_hex(3)}",
        kubelet_port=ports[0],
        healthz_port=ports[1],
        pause_image=f"{registry}/{PAUSE_REPO}:{PAUSE_TAG}",
        run_dir=tempfile.mkdtemp(prefix="k8stars-run-", dir="/run" if os.access("/run", os.W_OK) else None),
        new_host_dirs=[d for d in _MAYBE_CREATED if not Path(d).exists()],
    )


def apply(state: NodeState, pki: Path) -> None:
    """Bridge, cgroup root, configs, the shared kubelet root: everything on the host before the first process."""
    state.kubelet_root.mkdir(exist_ok=True)
    net = network.create(state.bridge)
    state.subnet, state.host_ip = net.subnet, net.host_ip
    _make_cgroup_root(state.cgroup_name)
    network.write_conflist(
        net, state.path / "cni" / "net.d", state.path / "cni" / "ipam"
    )  # network named as the bridge
    _write_containerd_config(state)
    _write_kubelet_config(state, pki)
    for key, wanted in KUBELET_SYSCTLS.items():
        (state.path / "sysctl" / key.replace("/", ".")).write_text(wanted + "\n")
    _share_kubelet_root(state.kubelet_root)


def _make_cgroup_root(name: str) -> None:
    """kubelet wants its cgroupRoot to exist in every hierarchy. A new cpuset cgroup starts with no CPUs and no
    memory nodes, so copy its parent's (as kubelet does for the cgroups below it)."""
    for hierarchy in cgroup_hierarchies():
        path = hierarchy / name
        path.mkdir(exist_ok=True)
        for knob in ("cpuset.cpus", "cpuset.mems"):
            if (path / knob).exists() and not (path / knob).read_text().strip():
                (path / knob).write_text((hierarchy / knob).read_text())


def _share_kubelet_root(root: Path) -> None:
    """A shared bind mount of kubelet's root on itself: kubelet mounts volumes there from its own mount namespace,
    and they must propagate back to the host's, where containerd bind-mounts them into containers."""
    subprocess.run(["mount", "--bind", str(root), str(root)], check=True, timeout=10)
    subprocess.run(["mount", "--make-shared", str(root)], check=True, timeout=10)


def _write_containerd_config(state: NodeState) -> None:
    d = state.path / "containerd"
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    (d / "certs.d" / state.registry).mkdir(parents=True, exist_ok=True)
    # Plain-HTTP pulls (and pushes) from the local registry.
    (d / "certs.d" / state.registry / "hosts.toml").write_text(
        f'server = "http://{state.registry}"\n\n'
        f'[host."http://{state.registry}"]\n  capabilities = ["pull", "resolve", "push"]\n'
    )
    q = json.dumps  # TOML basic strings are JSON strings for the paths used here
    (d / "config.toml").write_text(
        f"""version = 2
root = {q(str(d / "root"))}
state = {q(str(d / "state"))}
# Snapshotters this machine has no use for (they only log errors); tracing needs a collector.
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = {q(str(state.containerd_socket))}

[plugins."io.containerd.internal.v1.opt"]
  path = {q(str(d / "opt"))}

[{cri}]
  sandbox_image = {q(state.pause_image)}
  # Without CAP_SYS_RESOURCE nothing may lower oom_score_adj; the sandbox asks for -998 and runc would fail.
  restrict_oom_score_adj = true
  # Pod network namespaces under our state directory instead of /run/netns.
  netns_mounts_under_state_dir = true
  disable_apparmor = true
  enable_selinux = false
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_cdi = false

[{cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[{cri}.containerd.runtimes.runc.options]
  BinaryName = {q(RUNC)}
  Root = {q(str(d / "runc"))}
  SystemdCgroup = false

[{cri}.cni]
  bin_dir = {q(str(network.CNI_BIN_DIR))}
  conf_dir = {q(str(state.path / "cni" / "net.d"))}
  max_conf_num = 1

[{cri}.registry]
  config_path = {q(str(d / "certs.d"))}
"""
    )


def _write_kubelet_config(state: NodeState, pki: Path) -> None:
    ca = certs.CertAuthority.load(pki / "ca.crt", pki / "ca.key")
    serving = ca.issue(f"system:node:{state.name}", server=True, dns_names=[state.name], ips=[state.host_ip])
    crt, key = certs.write_leaf(state.path, "kubelet-serving", serving)
    config = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": state.host_ip,
        "port": state.kubelet_port,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": state.healthz_port,
        "tlsCertFile": str(crt),
        "tlsPrivateKeyFile": str(key),
        # The apiserver's kubelet client certificate is signed by the cluster CA and in system:masters.
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(pki / "ca.crt")},
        },
        "authorization": {"mode": "Webhook"},
        "containerRuntimeEndpoint": f"unix://{state.containerd_socket}",
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": f"/{state.cgroup_name}",
        # 1.36 refuses cgroup v1 unless told; this machine kind has v1 controllers (plus a cgroup2 for hugetlb).
        "failCgroupV1": False,
        "failSwapOn": False,
        # Else kubelet adds a host-wide KUBE-FIREWALL rule (drops 127/8 from other sources) and canary chains.
        "makeIPTablesUtilChains": False,
        "oomScoreAdj": 0,
        "podLogsDir": str(state.pod_logs),
        "volumePluginDir": str(state.path / "volume-plugins"),
        "serializeImagePulls": False,
        "registerNode": True,
        # A shared 2-core test machine: evict only when really out of memory or disk.
        "evictionHard": {"memory.available": "50Mi", "nodefs.available": "1%", "imagefs.available": "1%"},
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "shutdownGracePeriod": "0s",
        "resolvConf": "/etc/resolv.conf",
        "nodeStatusUpdateFrequency": "2s",
        "syncFrequency": "10s",
        "runtimeRequestTimeout": "60s",
        "streamingConnectionIdleTimeout": "5m",
        "logging": {"format": "text"},
    }
    (state.path / "kubelet-config.json").write_text(json.dumps(config, indent=2))


def apiserver_args(pki: Path) -> list[str]:
    """kube-apiserver flags for logs/exec/port-forward: a client certificate to call kubelets with, and the node's
    InternalIP (the bridge address) to call them at; Services called by the apiserver (webhooks) at their endpoints.
    Harmless without a real node (nothing is called then)."""
    client = pki / "kubelet-client.crt"
    if not client.exists():
        ca = certs.CertAuthority.load(pki / "ca.crt", pki / "ca.key")
        certs.write_leaf(
            pki, "kubelet-client", ca.issue("kube-apiserver-kubelet-client", organization="system:masters", client=True)
        )
    return [
        f"--kubelet-client-certificate={client}",
        f"--kubelet-client-key={pki / 'kubelet-client.key'}",
        f"--kubelet-certificate-authority={pki / 'ca.crt'}",
        "--kubelet-preferred-address-types=InternalIP",
        # Webhooks and aggregated APIs called at a Service go to its endpoints' pod IPs (on the bridge, reachable
        # from the host), not its ClusterIP: there is no kube-proxy here to route a ClusterIP.
        "--enable-aggregator-routing=true",
    ]


def containerd_argv(state: NodeState) -> list[str]:
    return [shutil.which("containerd") or "containerd", "--config", str(state.path / "containerd" / "config.toml")]


def _sysctl_files(state: NodeState) -> list[tuple[Path, Path]]:
    """(/proc/sys file, file holding kubelet's wanted value) for each sysctl this kernel has."""
    return [
        (Path("/proc/sys") / key, state.path / "sysctl" / key.replace("/", "."))
        for key in KUBELET_SYSCTLS
        if (Path("/proc/sys") / key).exists()
    ]


def kubelet_argv(state: NodeState, kubelet: Path, kubeconfig: Path) -> list[str]:
    """kubelet wrapped in `unshare -m`: the sysctl files it would rewrite are replaced, in its namespace only, by
    files holding the values it wants, so it finds nothing to change. /proc is made private there first, so the
    bind mounts cannot propagate to the host's /proc."""
    binds = [f"mount --bind {fake} {proc}" for proc, fake in _sysctl_files(state)]
    script = "set -e; mount --make-rprivate /proc; " + "; ".join([*binds, 'exec "$@"'])
    return [
        "unshare",
        "--mount",
        "--propagation",
        "unchanged",
        "sh",
        "-c",
        script,
        "kubelet",
        str(kubelet),
        f"--config={state.path / 'kubelet-config.json'}",
        # The admin kubeconfig: without the Node authorizer a node identity would need RBAC bindings of its own.
        f"--kubeconfig={kubeconfig}",
        f"--root-dir={state.kubelet_root}",
        f"--cert-dir={state.kubelet_root / 'pki'}",
        f"--node-ip={state.host_ip}",
        f"--hostname-override={state.name}",
        f"--node-labels={NODE_LABEL}=true",
        "--v=1",
    ]


async def ctr(state: NodeState, *args: str, timeout: float = 10.0) -> str:
    """Run containerd's own client against this node's containerd (the CRI namespace); stdout."""
    proc = await asyncio.create_subprocess_exec(
        "ctr",
        "--address",
        str(state.containerd_socket),
        "--namespace",
        CONTAINERD_NAMESPACE,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    if proc.returncode != 0:
        raise NodeError(f"ctr {' '.join(args)}: {err.decode(errors='replace').strip()}")
    return out.decode()


async def containerd_ready(state: NodeState) -> bool:
    if not state.containerd_socket.exists():
        return False
    try:
        await ctr(state, "version", timeout=3)
    except NodeError:
        return False
    return True


async def push_pause_image(state: NodeState) -> str:
    """The sandbox image: busybox sleeping forever, from our own image builder, into the local registry."""
    from k8stars.image import push_busybox_image  # aiohttp: imported only for a real node

    return await push_busybox_image(state.registry, PAUSE_REPO, PAUSE_TAG, cmd=["/bin/sleep", "infinity"])
