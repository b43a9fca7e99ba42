"""Start and stop a real control plane on 127.0.0.1: etcd, kube-apiserver, kube-controller-manager,
kube-scheduler, kwok (fake nodes whose pods get 127.64.N.x IPs) and the pod reaper (podreaper.py); with
`kubelet=True` also a real node (node.py: containerd, kubelet, a pod bridge) and a local OCI registry (registry.py).

Every listener binds 127.0.0.1 and every address the cluster hands out is inside 127.0.0.0/8,
because tests may send traffic to loopback only.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import os
import shutil
import socket
import ssl
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import _components, _http, _node_start, _node_teardown, _proc, certs, node
from ._paths import Layout, resolve_layout
from ._stages import STAGES

STATE_FILE = "state.json"
Log = Callable[[str], None]


class ClusterError(RuntimeError):
    """The control plane could not be built, started or reached."""


@dataclass
class ClusterOptions:
    nodes: int = 2
    # None: a fresh temporary directory, removed again by stop().
    workdir: Path | None = None
    timeout: float = 90.0
    extra_apiserver_args: Sequence[str] = ()
    extra_kcm_args: Sequence[str] = ()
    # Components get SIGKILL when the thread that started them dies (see _proc.spawn).
    die_with_parent: bool = False
    # A real node (containerd + kubelet, pods on a bridge) and a local registry, beside `nodes` kwok nodes.
    kubelet: bool = False


@dataclass
class Ports:
    etcd_client: int
    etcd_peer: int
    apiserver: int
    kcm: int
    scheduler: int
    # Real-node mode only (0 otherwise).
    registry: int = 0
    kubelet: int = 0
    kubelet_healthz: int = 0


@dataclass
class Cluster:
    """A running control plane: what tests need to reach it, and the PIDs to stop it by."""

    workdir: Path
    api_url: str
    kubeconfig: Path
    ca_file: Path
    client_cert_file: Path
    client_key_file: Path
    ports: Ports
    procs: list[_proc.Proc] = field(default_factory=list)
    node_names: list[str] = field(default_factory=list)
    owns_workdir: bool = False
    startup_seconds: float = 0.0
    real_node: node.NodeState | None = None

    # ---- reaching it -------------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        env = {"KUBECONFIG": str(self.kubeconfig), "K8STARS_API_URL": self.api_url}
        if self.real_node:
            env["K8STARS_IMAGE_REGISTRY"] = self.real_node.registry
        return env

    def ssl_context(self) -> ssl.SSLContext:
        """Client TLS as the cluster admin (group system:masters)."""
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        ctx.load_cert_chain(self.client_cert_file, self.client_key_file)
        return ctx

    async def api(self, method: str, path: str, body: Any = None, *, ok: Sequence[int] = ()) -> Any:
        """One admin call to the apiserver; JSON in and out. Raises unless 2xx (or in `ok`)."""
        response = await _http.request(method, self.api_url + path, ssl_context=self.ssl_context(), body=body)
        if not (200 <= response.status < 300 or response.status in ok):
            raise _http.HTTPError(method, path, response)
        return response.json() if response.body else None

    def webhook_tls(self, name: str = "webhook", hosts: Sequence[str] = ("127.0.0.1", "localhost")) -> certs.WebhookTLS:
        """Serving TLS for a webhook on 127.0.0.1, signed by the cluster CA (caBundle = that CA)."""
        ca = certs.CertAuthority.load(self.workdir / "pki" / "ca.crt", self.workdir / "pki" / "ca.key")
        return certs.make_webhook_tls(self.workdir / "webhooks", ca=ca, name=name, hosts=hosts)

    # ---- health and size ---------------------------------------------------------------------

    def alive(self) -> list[str]:
        return [p.name for p in self.procs if _proc.is_ours(p)]

    def rss_bytes(self) -> dict[str, int]:
        return {p.name: _proc.rss_bytes(p.pid) for p in self.procs if _proc.is_ours(p)}

    # ---- stopping ----------------------------------------------------------------------------

    async def stop(self, *, remove_workdir: bool | None = None, log: Log | None = None) -> None:
        """Stop in reverse start order (clients before the apiserver before etcd).

        A real node first loses its pods (nothing may replace them: controllers and scheduler stop first), then
        kubelet, whatever tasks survived, the rest; then its mounts, cgroups and bridge go (_node_teardown).
        """
        if self.real_node:
            await self._stop_named("kube-controller-manager", "kube-scheduler", "kwok")
            await _node_teardown.drain(self, self.real_node)
            await self._stop_named("kubelet")
            await _node_teardown.remove_tasks(self.real_node)
        for proc in reversed(self.procs):
            await _proc.stop_async(proc)
        if self.real_node:
            for problem in await asyncio.to_thread(_node_teardown.cleanup, self.real_node):
                (log or _stderr)(f"cluster: teardown: {problem}")
        remove = self.owns_workdir if remove_workdir is None else remove_workdir
        if remove:
            await asyncio.to_thread(shutil.rmtree, self.workdir, True)

    async def _stop_named(self, *names: str) -> None:
        await asyncio.gather(*(_proc.stop_async(p) for p in self.procs if p.name in names))

    # ---- persisting (for `up` in one process and `down` in another) --------------------------

    def save(self) -> Path:
        path = self.workdir / STATE_FILE
        data = asdict(self)
        path.write_text(json.dumps(data, default=str, indent=2))
        return path

    @classmethod
    def load(cls, workdir: Path) -> Cluster:
        try:
            return cls._from_json(json.loads((workdir / STATE_FILE).read_text()))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ClusterError(f"unreadable cluster state {workdir / STATE_FILE}: {exc!r}") from exc

    @classmethod
    def _from_json(cls, data: dict[str, Any]) -> Cluster:
        return cls(
            workdir=Path(data["workdir"]),
            api_url=data["api_url"],
            kubeconfig=Path(data["kubeconfig"]),
            ca_file=Path(data["ca_file"]),
            client_cert_file=Path(data["client_cert_file"]),
            client_key_file=Path(data["client_key_file"]),
            ports=Ports(**data["ports"]),
            procs=[_proc.Proc(**p) for p in data["procs"]],
            node_names=list(data["node_names"]),
            owns_workdir=bool(data["owns_workdir"]),
            startup_seconds=float(data["startup_seconds"]),
            real_node=node.NodeState(**data["real_node"]) if data.get("real_node") else None,
        )


# ---- building --------------------------------------------------------------------------------


async def ensure_binaries(layout: Layout | None = None, log: Log | None = None) -> Layout:
    """Run tools/k8s/build.sh (a no-op on a warm cache) or check that the binaries exist."""
    layout = layout or resolve_layout()
    if layout.tools is None:
        if missing := layout.missing_binaries():
            raise ClusterError(
                f"binaries {missing} missing in {layout.bin_dir} and no tools/k8s/build.sh found "
                "(run from the source tree or set K8STARS_K8S_TOOLS / K8STARS_K8S_BIN)"
            )
        return layout
    if "K8STARS_K8S_BIN" in os.environ:
        if missing := layout.missing_binaries():
            raise ClusterError(f"K8STARS_K8S_BIN={layout.bin_dir} lacks {missing}")
        return layout
    await _run_build(layout.tools / "build.sh", log or _stderr)
    if missing := layout.missing_binaries():
        raise ClusterError(f"build.sh finished but {missing} are missing in {layout.bin_dir}")
    return layout


async def _run_build(script: Path, log: Log) -> None:
    proc = await asyncio.create_subprocess_exec(
        "bash", str(script), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    assert proc.stdout is not None
    tail: list[str] = []
    async for raw in proc.stdout:
        line = raw.decode(errors="replace").rstrip()
        tail = [*tail[-40:], line]
        log(line)
    if await proc.wait() != 0:
        raise ClusterError(f"{script} failed (exit {proc.returncode}):\n" + "\n".join(tail))


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


# ---- starting --------------------------------------------------------------------------------


async def start_cluster(
    options: ClusterOptions | None = None, layout: Layout | None = None, log: Log | None = None
) -> Cluster:
    """Start etcd -> kube-apiserver -> KCM + scheduler + kwok, create fake nodes, wait for Ready.

    On any failure everything already started is stopped again and ClusterError says which
    component failed, with the end of its log.
    """
    options = options or ClusterOptions()
    layout = layout or resolve_layout()
    say = log or _stderr
    if missing := layout.missing_binaries() + (["kubelet"] * (options.kubelet and not layout.has("kubelet"))):
        raise ClusterError(f"missing binaries {missing} in {layout.bin_dir}: run tools/k8s/build.sh")
    if options.kubelet and (reason := node.unable_to_run()):
        raise ClusterError(f"no real node possible here: {reason}")
    t0 = time.monotonic()
    cluster = _prepare(options, layout)
    try:
        await asyncio.wait_for(_bring_up(cluster, layout, options, say, t0), options.timeout)
    except BaseException as exc:
        await cluster.stop(remove_workdir=False, log=say)
        if isinstance(exc, TimeoutError):
            raise ClusterError(
                f"control plane not ready within {options.timeout:.0f} s; logs in {cluster.workdir}/logs"
            ) from exc
        raise
    cluster.startup_seconds = round(time.monotonic() - t0, 2)
    cluster.save()
    say(f"cluster: ready in {cluster.startup_seconds:.1f} s at {cluster.api_url} ({cluster.workdir})")
    return cluster


def _prepare(options: ClusterOptions, layout: Layout) -> Cluster:
    """Directories, ports, certificates, kubeconfig: everything before the first process."""
    owns = options.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="k8stars-cluster-")) if owns else Path(options.workdir or "")
    for sub in ("pki", "logs", "etcd"):
        (workdir / sub).mkdir(parents=True, exist_ok=True)
    ports = Ports(*_free_ports(5 + 3 * options.kubelet))
    pki = workdir / "pki"
    ca = certs.CertAuthority.create("k8stars-test-ca")
    ca.write(pki / "ca.crt", pki / "ca.key")
    certs.write_leaf(
        pki,
        "apiserver",
        ca.issue(
            "kube-apiserver",
            server=True,
            dns_names=["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"],
            # 127.96.0.1: the `kubernetes` Service ClusterIP, for clients that use it.
            ips=["127.0.0.1", "127.96.0.1"],
        ),
    )
    admin_crt, admin_key = certs.write_leaf(
        pki, "admin", ca.issue("k8stars-admin", organization="system:masters", client=True)
    )
    certs.write_service_account_keys(pki)
    api_url = f"https://127.0.0.1:{ports.apiserver}"
    kubeconfig = workdir / "kubeconfig"
    _write_kubeconfig(kubeconfig, api_url, ca.pem, admin_crt, admin_key)
    if options.kubelet:
        # With real pods KCM acts as system:kube-controller-manager, as in a real cluster: admission webhooks that let
        # Kubernetes' own controllers through (the garbage collector deleting a TServer's StatefulSet) see it so.
        kcm = ca.issue("system:kube-controller-manager", organization="system:masters", client=True)
        kcm_crt, kcm_key = certs.write_leaf(pki, "kcm", kcm)
        _write_kubeconfig(workdir / "kcm.kubeconfig", api_url, ca.pem, kcm_crt, kcm_key)
    (workdir / "kwok-stages.yaml").write_text(STAGES)
    return Cluster(
        workdir=workdir,
        api_url=api_url,
        kubeconfig=kubeconfig,
        ca_file=pki / "ca.crt",
        client_cert_file=admin_crt,
        client_key_file=admin_key,
        ports=ports,
        owns_workdir=owns,
    )


def _free_ports(count: int) -> list[int]:
    """Ports the kernel considers free on 127.0.0.1; all held open until all are picked."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _write_kubeconfig(path: Path, server: str, ca_pem: bytes, crt: Path, key: Path) -> None:
    """Self-contained (data inlined) so it can be copied or mounted elsewhere. JSON is valid YAML."""

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode("ascii")

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "k8stars", "cluster": {"server": server, "certificate-authority-data": b64(ca_pem)}}],
        "users": [
            {
                "name": "k8stars-admin",
                "user": {
                    "client-certificate-data": b64(crt.read_bytes()),
                    "client-key-data": b64(key.read_bytes()),
                },
            }
        ],
        "contexts": [{"name": "k8stars", "context": {"cluster": "k8stars", "user": "k8stars-admin"}}],
        "current-context": "k8stars",
    }
    path.write_text(json.dumps(config, indent=2))
    path.chmod(0o600)


async def _bring_up(cluster: Cluster, layout: Layout, options: ClusterOptions, say: Log, t0: float) -> None:
    logs = cluster.workdir / "logs"
    pdeath = options.die_with_parent
    etcd = _start(cluster, "etcd", _components.etcd_argv(cluster, layout), logs, pdeath)
    await _wait_for(cluster, etcd, lambda: _etcd_healthy(cluster), "etcd /health")
    apiserver = _start(cluster, "kube-apiserver", _components.apiserver_argv(cluster, layout, options), logs, pdeath)
    await _wait_for(cluster, apiserver, lambda: _api_ok(cluster, "/readyz"), "kube-apiserver /readyz")
    say(f"cluster: etcd and kube-apiserver ready after {time.monotonic() - t0:.1f} s")
    # The rest only need the apiserver, so they start together and are awaited together.
    kcm = _start(cluster, "kube-controller-manager", _components.kcm_argv(cluster, layout, options), logs, pdeath)
    sched = _start(cluster, "kube-scheduler", _components.scheduler_argv(cluster, layout), logs, pdeath)
    waits = [
        _wait_for(cluster, kcm, lambda: _component_healthy(cluster.ports.kcm), "kube-controller-manager /healthz"),
        _wait_for(cluster, sched, lambda: _component_healthy(cluster.ports.scheduler), "kube-scheduler /healthz"),
        _wait_for(cluster, kcm, lambda: _default_service_account(cluster), "default ServiceAccount"),
    ]
    if options.nodes:
        kwok = _start(cluster, "kwok", _components.kwok_argv(cluster, layout), logs, pdeath)
        _start(cluster, "pod-reaper", _components.pod_reaper_argv(cluster), logs, pdeath)
        cluster.node_names = await _create_nodes(cluster, options.nodes)
        waits.append(_wait_for(cluster, kwok, lambda: _nodes_ready(cluster), f"{options.nodes} fake nodes Ready"))
    if options.kubelet:
        spawn = functools.partial(_start, cluster, logs=logs, die_with_parent=pdeath)
        wait = functools.partial(_wait_for, cluster)
        waits.append(_node_start.bring_up(cluster, layout.binary("kubelet"), spawn, wait, say, t0))
    await asyncio.gather(*waits)


def _start(cluster: Cluster, name: str, argv: list[str], logs: Path, die_with_parent: bool) -> _proc.Proc:
    proc = _proc.spawn(name, argv, logs, die_with_parent=die_with_parent)
    cluster.procs.append(proc)
    # Saved after every start so `down` (or a human) can find the PIDs even if we die here.
    cluster.save()
    return proc


async def _wait_for(cluster: Cluster, proc: _proc.Proc, check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Poll `check` until True; fail at once (with its log) if `proc` exits meanwhile.

    Bounded by the caller's overall timeout (asyncio.wait_for around the whole start-up).
    """
    delay = 0.05
    while True:
        code = _proc.exit_status(proc)
        if code is not None or not _proc.is_ours(proc):
            raise ClusterError(
                f"{proc.name} (pid {proc.pid}) exited with {code} while waiting for {what}; "
                f"end of {proc.log}:\n{_proc.log_tail(proc)}"
            )
        try:
            if await check():
                return
        except (OSError, ssl.SSLError, TimeoutError, ValueError, _http.HTTPError):
            pass  # not listening or not ready yet
        await asyncio.sleep(delay)
        delay = min(delay * 1.5, 0.5)


async def _etcd_healthy(cluster: Cluster) -> bool:
    response = await _http.request("GET", f"http://127.0.0.1:{cluster.ports.etcd_client}/health", timeout=2)
    return response.status == 200 and '"true"' in response.text


async def _api_ok(cluster: Cluster, path: str) -> bool:
    response = await _http.request("GET", cluster.api_url + path, ssl_context=cluster.ssl_context(), timeout=3)
    return response.status == 200


async def _component_healthy(port: int) -> bool:
    # KCM and the scheduler serve /healthz with a self-signed certificate they make in memory;
    # there is nothing to verify it against, and the address is our own loopback port.
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    response = await _http.request("GET", f"https://127.0.0.1:{port}/healthz", ssl_context=ctx, timeout=2)
    return response.status == 200


async def _default_service_account(cluster: Cluster) -> bool:
    """KCM's controllers really run once they made the default SA and the root CA ConfigMap."""
    sa = await cluster.api("GET", "/api/v1/namespaces/default/serviceaccounts/default", ok=(404,))
    cm = await cluster.api("GET", "/api/v1/namespaces/default/configmaps/kube-root-ca.crt", ok=(404,))
    return bool(sa and sa.get("kind") == "ServiceAccount" and cm and cm.get("kind") == "ConfigMap")


async def _nodes_ready(cluster: Cluster) -> bool:
    nodes = await cluster.api("GET", f"/api/v1/nodes?labelSelector={_components.FAKE_NODE_LABEL}%3Dtrue")
    ready = [n for n in nodes["items"] if _condition(n, "Ready") == "True"]
    return len(ready) >= len(cluster.node_names)


def _condition(obj: dict[str, Any], kind: str) -> str | None:
    for cond in obj.get("status", {}).get("conditions") or []:
        if cond.get("type") == kind:
            return str(cond.get("status"))
    return None


async def _create_nodes(cluster: Cluster, count: int) -> list[str]:
    if not 0 <= count <= 254:
        raise ClusterError(f"nodes must be 0..254, not {count}")
    names = []
    for index in range(1, count + 1):
        manifest = _components.node_manifest(index)
        await cluster.api("POST", "/api/v1/nodes", manifest, ok=(409,))
        names.append(manifest["metadata"]["name"])
    return names
