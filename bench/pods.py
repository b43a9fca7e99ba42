"""Real pods in K8SFramework's model (docs/image.md): pod create -> first successful TARS call, and the agent's RSS.

    sudo python -m bench.pods [--samples 5] [--pods 20] [--json]

Starts a control plane with a real node (containerd + kubelet, `k8stars.testing.cluster`, root only), pushes the
node image and the cppbase (`k8stars.image.bases`), builds a TarsGo echo server release on it (`k8stars image
build`), and runs the operator and `k8stars registry --store kubernetes` (on the bridge address) as processes. Then:

* 1 pod: a TServer with one replica is created; the time from the create call to the first successful TARS call to
  the pod's endpoint, and to the registry listing it (QueryF); `--samples` times, each TServer deleted after;
* N pods: a TServer scaled 0 -> N at once; the same two times per pod, p50/p95;
* RSS of the agent (`tarscli supervisor`, PID 1 of each server container) and of the TarsGo server, from /proc;
* RSS of each framework pod after `helm install` of both charts with `k8stars image framework`'s image
  (k8stars.testing.cluster.charts; `--no-charts` skips it);
* the kwok contrast (bench/pods_kwok.py, `--no-kwok` skips it): the same TServers on fake nodes, the control plane's
  share of the figures. Printed as one table, real pods beside kwok.

Traffic goes to 127.0.0.1 and to pod IPs on the launcher's bridge only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped,unused-ignore]

from k8stars.kube.client import Kube, Obj, Resource
from k8stars.kube.install import install_crds
from k8stars.kube.resources import POD, TSERVER, TTEMPLATE
from k8stars.tars.idl.compiler import load_runtime
from k8stars.tars.protocol.queryf import QueryFProxy
from k8stars.tars.rpc import Communicator, ServantProxy
from k8stars.testing import peers
from k8stars.testing.procs import free_port, stop_process, wait_port

NS = Resource("", "v1", "namespaces", "Namespace", namespaced=False)
NODES = Resource("", "v1", "nodes", "Node", namespaced=False)
EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "k8s"
SERVANT = "Test.EchoServer.EchoObj"
PORT = 10000
LAUNCHER = b'#!/bin/sh\nexec /usr/local/server/bin/tarspeer echo-server "$@"\n'
AGENT_CMDLINE = b"/usr/local/app/tars/tarsnode/bin/tarscli\x00supervisor"
POLL_S = 0.05


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _summary(values: list[float]) -> dict[str, Any]:
    return {"n": len(values), "p50": round(statistics.median(values), 3), "p95": round(_pct(values, 0.95), 3),
            "max": round(max(values), 3)}  # fmt: skip


def _package(binary: Path, servers: list[str]) -> bytes:
    """The TarsGo peer and a launcher named like each server (the agent starts bin/<ServerName>)."""
    buf = io.BytesIO()
    files = [(f"EchoServer/{name}", LAUNCHER) for name in servers] + [("EchoServer/tarspeer", binary.read_bytes())]
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _tserver(name: str, image: str, node_image: str, locator: str, replicas: int) -> Obj:
    doc: Obj = yaml.safe_load((EXAMPLES / "tserver.yaml").read_text())
    spec = doc["spec"]
    doc["metadata"] = {"name": f"test-{name.lower()}"}
    spec["server"] = name
    spec["tars"]["servants"] = [{"name": "EchoObj", "port": PORT, "isTars": True, "isTcp": True, "timeout": 60000,
                                 "thread": 2, "capacity": 1000, "connection": 1000}]  # fmt: skip
    env = [{"name": "TARS_LOCATOR", "value": locator}, {"name": "TARS_PRESTOP_WAITTIME", "value": "1s"}]
    spec["k8s"].update(replicas=replicas, mounts=[], resources={}, env=env)
    spec["release"] = {"id": "v1", "image": image, "nodeImage": node_image}
    return doc


@contextlib.contextmanager
def _process(argv: list[str], log: Path) -> Any:
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            yield proc
        finally:
            stop_process(proc)


class Watch:
    """Per pod IP: when a direct TARS call first succeeded and when QueryF first listed it."""

    def __init__(self, comm: Communicator, locator: str, server: str) -> None:
        self.comm, self.server = comm, server
        self.servant = f"Test.{server}.EchoObj"
        self.query = comm.string_to_proxy(QueryFProxy, locator)
        self.echo = load_runtime([peers.GO_SRC / "echo.tars"]).interfaces()["Test::Echo"]

    async def until(
        self, kube: Kube, namespace: str, count: int, start: float, timeout: float
    ) -> tuple[list[float], list[float]]:
        called: dict[str, float] = {}
        listed: dict[str, float] = {}
        deadline = time.monotonic() + timeout
        selector = f"tars.io/ServerName={self.server}"
        while (len(called) < count or len(listed) < count) and time.monotonic() < deadline:
            items = (await kube.list(POD, namespace, selector=selector))["items"]
            ips = [p["status"]["podIP"] for p in items if (p.get("status") or {}).get("podIP")]
            await asyncio.gather(*(self._call(ip, called) for ip in ips if ip not in called))
            with contextlib.suppress(Exception):
                for e in await self.query.findObjectById(self.servant):
                    listed.setdefault(e.host, time.monotonic())
            await asyncio.sleep(POLL_S)
        if len(called) < count or len(listed) < count:
            items = (await kube.list(POD, namespace, selector=selector))["items"]
            why = []
            for p in items:
                ip = (p.get("status") or {}).get("podIP")
                if ip in listed:
                    continue
                conditions = {c["type"]: (c["status"], c.get("reason")) for c in p["status"].get("conditions") or []}
                name = p["metadata"]["name"]
                log = await kube.request("GET", POD.path(namespace, name, "log"),
                                         query={"container": p["spec"]["containers"][0]["name"]})  # fmt: skip
                why.append(f"{name} {ip} {conditions}\n{str(log)[-1500:]}")
            raise RuntimeError(
                f"{count} pods: {len(called)} answered, {len(listed)} listed in {timeout:.0f} s\n" + "\n".join(why[:3])
            )
        return [t - start for t in called.values()], [t - start for t in listed.values()]

    async def _call(self, ip: str, called: dict[str, float]) -> None:
        proxy = self.comm.string_to_proxy(ServantProxy, f"{self.servant}@tcp -h {ip} -p {PORT} -t 1000",
                                          interface=self.echo)  # fmt: skip
        with contextlib.suppress(Exception):
            if tuple(await asyncio.wait_for(proxy.tars_invoke("echo", ("x",)), 1.0)) == (0, "x"):
                called.setdefault(ip, time.monotonic())


def _rss_mib(cmdline: bytes) -> list[float]:
    """VmRSS of every host process whose command line starts with ``cmdline``."""
    out = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if (proc / "cmdline").read_bytes().startswith(cmdline):
                rss = next(ln for ln in (proc / "status").read_text().splitlines() if ln.startswith("VmRSS:"))
                out.append(round(int(rss.split()[1]) / 1024, 1))
    return out


@contextlib.asynccontextmanager
async def _setup(work: Path, servers: list[str]) -> AsyncIterator[tuple[Any, Kube, str, dict[str, str], str]]:
    from k8stars.image.bases import push_base, register
    from k8stars.testing.cluster import ClusterOptions, ensure_binaries, start_cluster

    layout = await ensure_binaries()
    cluster = await start_cluster(ClusterOptions(workdir=work / "cluster", nodes=0, kubelet=True,
                                                 die_with_parent=True), layout)  # fmt: skip
    try:
        assert cluster.real_node is not None
        registry = cluster.real_node.registry
        async with await Kube.connect(str(cluster.kubeconfig)) as kube:
            await install_crds(kube)
            namespace = f"bench-{uuid.uuid4().hex[:8]}"
            await kube.create(NS, None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
            (node,) = (await kube.list(NODES, None, selector="k8stars.io/real-node=true"))["items"]
            await kube.merge_patch(NODES, None, node["metadata"]["name"],
                                   {"metadata": {"labels": {f"tars.io/node.{namespace}": ""}}})  # fmt: skip
            for template in yaml.safe_load_all((EXAMPLES / "ttemplate.yaml").read_text()):
                await kube.create(TTEMPLATE, namespace, template)
            built = {kind: await push_base(kind, registry) for kind in ("node", "cpp")}
            for kind, ref in built.items():
                await register(kube, namespace, kind, ref)
            package = work / "EchoServer.tgz"
            package.write_bytes(_package(await asyncio.to_thread(peers.go_binary), servers))
            image = f"{registry}/test/test.echoserver:v1"
            subprocess.run([sys.executable, "-m", "k8stars", "image", "build", str(package), "--base", built["cpp"],
                            "--image", image, "--server-type", "go"], check=True, capture_output=True)  # fmt: skip
            yield cluster, kube, namespace, built, image
    finally:
        await cluster.stop()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-pods-") as tmp:
        work = Path(tmp)
        servers = [f"One{i}" for i in range(args.samples)] + ["Many"]
        async with _setup(work, servers) as (cluster, kube, namespace, built, image):
            host_ip = cluster.real_node.host_ip
            port = free_port(host_ip)
            kubeconfig = str(cluster.kubeconfig)
            registry = [sys.executable, "-m", "k8stars", "registry", "--store", "kubernetes", "--kubeconfig",
                        kubeconfig, "--namespace", namespace, "--host", host_ip, "--port", str(port),
                        "--http-port", "0", "--data-dir", str(work / "registry")]  # fmt: skip
            operator = [sys.executable, "-m", "k8stars", "operator", "--kubeconfig", kubeconfig, "-n", namespace,
                        "--no-install-crds"]  # fmt: skip
            locator = f"tars.tarsregistry.QueryObj@tcp -h {host_ip} -p {port}"
            with _process(registry, work / "registry.log") as reg, _process(operator, work / "operator.log"):
                await asyncio.to_thread(wait_port, port, reg, host_ip)
                async with Communicator(locator=locator) as comm:
                    one_call: list[float] = []
                    one_listed: list[float] = []
                    for i in range(args.samples):
                        name = f"One{i}"
                        start = time.monotonic()
                        await kube.create(TSERVER, namespace, _tserver(name, image, built["node"], locator, 1))
                        called, listed = await Watch(comm, locator, name).until(kube, namespace, 1, start, 120)
                        one_call += called
                        one_listed += listed
                        await kube.delete(TSERVER, namespace, f"test-{name.lower()}")
                    name = "Many"
                    start = time.monotonic()
                    await kube.create(TSERVER, namespace, _tserver(name, image, built["node"], locator, args.pods))
                    many_call, many_listed = await Watch(comm, locator, name).until(kube, namespace, args.pods,
                                                                                    start, 300)  # fmt: skip
                    await asyncio.sleep(3)  # settled: the agents' steady state
                    agent = _rss_mib(AGENT_CMDLINE)
                    server = _rss_mib(b"/usr/local/server/bin/tarspeer\x00echo-server")
                    await kube.delete(NS, None, namespace)
            charts = await _charts_rss(cluster) if args.charts else {}
    return {
        "charts_rss_mib": charts,
        "one_pod": {"create_to_first_call_s": _summary(one_call), "create_to_listed_s": _summary(one_listed)},
        f"{args.pods}_pods": {
            "create_to_first_call_s": _summary(many_call),
            "create_to_listed_s": _summary(many_listed),
        },
        "rss_mib": {"agent": _summary(agent) if agent else None, "tarsgo_server": _summary(server) if server else None},
    }


async def _charts_rss(cluster: Any) -> dict[str, float]:
    """`helm install` of both charts (k8stars.testing.cluster.charts) with the framework image; once every
    Deployment is Ready and 10 s settled, each framework pod's RSS (its processes, found by the pod's cgroup)."""
    from k8stars.image.bases import push_base
    from k8stars.image.framework import push_framework
    from k8stars.testing.cluster.charts import install_charts, pod_rss_mib

    registry = cluster.real_node.registry
    image, node = await push_framework(registry), await push_base("node", registry)
    namespace = f"charts-{uuid.uuid4().hex[:8]}"
    async with install_charts(cluster, namespace, image, node) as installed, \
            await Kube.connect(str(cluster.kubeconfig)) as kube:  # fmt: skip
        await asyncio.sleep(10)
        pods = (await kube.list(POD, installed.namespace))["items"]
        rss = pod_rss_mib([p["metadata"]["uid"] for p in pods])
        names = {p["metadata"]["uid"]: p["metadata"]["name"].rsplit("-", 2)[0] for p in pods}  # the Deployment
        return {("operator" if n.endswith("k8stars-controller") else n): rss[uid] for uid, n in names.items()}


def _table(result: dict[str, Any], kwok: dict[str, Any] | None, pods: int) -> str:
    """Real pods beside kwok, one row per figure (p50 / p95, seconds from the TServer's create call)."""

    def cell(d: dict[str, Any] | None) -> str:
        return f"{d['p50']:.2f} / {d['p95']:.2f}" if d else "-"

    rows = ["| what (p50 / p95 s) | real pods | kwok |", "|---|---|---|"]
    for key, label in (("one_pod", "1 pod"), (f"{pods}_pods", f"{pods} pods at once")):
        real, fake = result[key], (kwok or {}).get(key) or {}
        rows.append(f"| {label}: create → Running (kwok) / first TARS call (real) | "
                    f"{cell(real['create_to_first_call_s'])} | {cell(fake.get('running'))} |")  # fmt: skip
        rows.append(f"| {label}: create → TEndpoint Active | - | {cell(fake.get('tendpoint'))} |")
        rows.append(f"| {label}: create → listed by the registry | {cell(real['create_to_listed_s'])} | "
                    f"{cell(fake.get('listed'))} |")  # fmt: skip
    rss = result["rss_mib"]
    for name, value in (("agent (tarscli supervisor)", rss["agent"]), ("TarsGo server", rss["tarsgo_server"])):
        rows.append(f"| RSS MiB, {name}, p50 / max | {value['p50']} / {value['max']} | - |" if value else "")
    for name, mib in sorted(result.get("charts_rss_mib", {}).items()):
        rows.append(f"| RSS MiB, framework pod {name} (helm install) | {mib} | - |")
    return "\n".join(r for r in rows if r)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=5, help="1-pod TServers, one after another")
    parser.add_argument("--pods", type=int, default=20, help="replicas of the TServer created at once")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--no-kwok", dest="kwok", action="store_false", help="skip the kwok contrast")
    parser.add_argument("--no-charts", dest="charts", action="store_false", help="skip the charts' RSS")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    if args.kwok:
        from bench.pods_kwok import run_kwok

        with tempfile.TemporaryDirectory(prefix="bench-kwok-") as tmp:
            result["kwok"] = asyncio.run(run_kwok(args.samples, args.pods, Path(tmp)))
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(_table(result, result.get("kwok"), args.pods))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
