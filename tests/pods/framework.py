"""The host side of a K8SFramework-model test: the framework images pushed and registered (`k8stars image bases`), a
user's release built (`k8stars image build`), and the operator and the registry (`k8stars registry --store
kubernetes`, on the bridge address so that the pods reach it) as processes of their own."""

from __future__ import annotations

import asyncio
import contextlib
import io
import subprocess
import sys
import tarfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from k8stars.testing.cluster import Cluster
from k8stars.testing.procs import free_port, stop_process, wait_port

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "k8s"


def k8stars(*args: str, timeout: float = 600) -> str:
    """`python -m k8stars ARGS`: its stdout; fails with its stderr."""
    proc = subprocess.run([sys.executable, "-m", "k8stars", *args], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, check=False)  # fmt: skip
    assert proc.returncode == 0, f"k8stars {' '.join(args)} exited {proc.returncode}: {proc.stderr[-3000:]}"
    return proc.stdout


def images(cluster: Cluster, namespace: str, *kinds: str) -> dict[str, str]:
    """`k8stars image bases`: kind -> image (host/tars/<name>:<tag>), recorded on the TImages of ``namespace``."""
    assert cluster.real_node is not None
    argv = ["image", "bases", cluster.real_node.registry, "-n", namespace, "--kubeconfig", str(cluster.kubeconfig)]
    out = k8stars(*argv, *(a for k in kinds for a in ("--kind", k)))
    return dict(line.split(" ", 1) for line in out.splitlines() if line.strip())


def framework_image(cluster: Cluster) -> str:
    """`k8stars image framework`: the k8stars services' image (what the Helm charts run) in the cluster's registry."""
    assert cluster.real_node is not None
    return k8stars("image", "framework", cluster.real_node.registry).strip()


def tgz(files: dict[str, bytes | Path]) -> bytes:
    """A release package as a K8SFramework user makes one: `tar czf Server.tgz Server/` (executables 0755)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, content in sorted(files.items()):
            data = content.read_bytes() if isinstance(content, Path) else content
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def build_release(cluster: Cluster, package: Path, base: str, server_type: str, image: str) -> str:
    """`k8stars image build`: the package on the base image, pushed as ``image`` (returned as given: a TServer's
    release names an image by tag)."""
    k8stars("image", "build", str(package), "--base", base, "--image", image, "--server-type", server_type)
    return image


def load(name: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all((EXAMPLES / name).read_text()) if doc]


@dataclass
class Host:
    """The operator and the registry, started for one namespace."""

    locator: str
    registry_host: str
    registry_port: int


@contextlib.contextmanager
def _process(argv: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            yield proc
        finally:
            stop_process(proc)


@contextlib.asynccontextmanager
async def framework_on_host(cluster: Cluster, namespace: str, logs: Path) -> AsyncIterator[Host]:
    """The operator and `k8stars registry --store kubernetes` for ``namespace``, the registry on the node IP (the
    bridge's address: the only one the pods can reach)."""
    assert cluster.real_node is not None
    host_ip = cluster.real_node.host_ip
    logs.mkdir(parents=True, exist_ok=True)
    port = free_port(host_ip)
    kubeconfig = str(cluster.kubeconfig)
    registry = [sys.executable, "-m", "k8stars", "registry", "--store", "kubernetes", "--kubeconfig", kubeconfig,
                "--namespace", namespace, "--host", host_ip, "--port", str(port), "--http-port", "0",
                "--data-dir", str(logs / "registry")]  # fmt: skip
    operator = [sys.executable, "-m", "k8stars", "operator", "--kubeconfig", kubeconfig, "-n", namespace,
                "--workers", "2", "--no-install-crds"]  # fmt: skip
    with _process(registry, logs / "registry.log") as reg, _process(operator, logs / "operator.log"):
        await asyncio.to_thread(wait_port, port, reg, host_ip)
        yield Host(f"tars.tarsregistry.QueryObj@tcp -h {host_ip} -p {port}", host_ip, port)


async def until(probe: Callable[[], Awaitable[Any]], *, timeout: float, what: str) -> Any:
    """Poll ``probe`` until it returns something truthy; bounded in time."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = await probe()
        except AssertionError:
            raise
        except Exception as e:  # the thing is not there yet: say what went wrong last
            last = e
        else:
            if last:
                return last
        await asyncio.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout:.0f} s (last: {last!r})")
