"""Helpers shared by the operator tests (a module of its own: conftest modules are not importable by name)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped,unused-ignore]

from k8stars.kube.client import Kube, Resource
from k8stars.kube.resources import TARS_KINDS
from k8stars.operator import Operator
from k8stars.testing.cluster import Cluster

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "k8s"


def resource_of(kind: str) -> Resource:
    return next(r for r in TARS_KINDS if r.kind == kind)


def load_examples(name: str) -> list[dict[str, Any]]:
    with open(EXAMPLES / name) as f:
        return [doc for doc in yaml.safe_load_all(f) if doc]


async def until(probe: Any, *, timeout: float = 20.0, what: str = "condition") -> Any:
    """Poll `probe` (a coroutine function) until it returns something truthy; bounded."""
    import asyncio
    import time

    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = await probe()
        except AssertionError as exc:  # probes may assert to explain what is still missing
            last = exc
        else:
            if last:
                return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; last: {last!r}")
        await asyncio.sleep(0.1)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class OperatorRunner:
    """The operator in the test's event loop, watching one namespace; start/stop to simulate restarts."""

    def __init__(self, cluster: Cluster, namespace: str) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self.kube: Kube | None = None
        self.operator: Operator | None = None
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> Operator:
        assert self.task is None
        self.kube = await Kube.connect(str(self.cluster.kubeconfig))
        self.operator = Operator(self.kube, namespace=self.namespace, workers=2, resync=3600)
        self.task = asyncio.create_task(self.operator.run())
        await asyncio.wait_for(self.operator.ready.wait(), 20)
        return self.operator

    async def idle(self, settle: float = 0.5, timeout: float = 20.0) -> Operator:
        """Wait until the queue has stayed empty for `settle` seconds."""
        assert self.operator is not None
        deadline = time.monotonic() + timeout
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < settle:
            if len(self.operator.queue):
                quiet_since = time.monotonic()
            if time.monotonic() > deadline:
                raise AssertionError("operator queue never drained")
            await asyncio.sleep(0.05)
        return self.operator

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            self.task = None
        if self.kube is not None:
            await self.kube.close()
            self.kube = None


@contextlib.asynccontextmanager
async def serving_webhooks(
    cluster: Cluster, kube: Kube, namespace: str, admission: Any = None, **options: Any
) -> AsyncIterator[str]:
    """Our admission webhooks on a free loopback port, registered for `namespace` only; yields their base URL.
    `admission`: the webhook.Admission to serve (default: one on `kube`, trusting its identity, with `options`, e.g.
    tconfig_guard)."""
    from k8stars.operator import webhook

    tls = cluster.webhook_tls("k8stars-webhook")
    port = free_port()
    if admission is None:
        admission = webhook.Admission(kube, {await webhook.whoami(kube)}, **options)
    runner = await webhook.serve(admission, "127.0.0.1", port, tls.server_context())
    url = f"https://127.0.0.1:{port}"
    try:
        async with registered_webhooks(kube, url, tls.ca_bundle, namespace):
            yield url
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def registered_webhooks(kube: Kube, url: str, ca_bundle: str, namespace: str) -> AsyncIterator[None]:
    """The webhook configurations for the webhooks served at `url`, for `namespace` only, once in effect; removed
    afterwards."""
    from k8stars.kube.resources import MUTATING_WEBHOOK, VALIDATING_WEBHOOK
    from k8stars.operator import webhook

    names = await webhook.register(kube, url, ca_bundle, name=f"k8stars-{namespace}",
                                   namespace_selector={"matchLabels": {"k8stars.io/test": namespace}})  # fmt: skip
    try:
        await until(lambda: _webhooks_effective(kube, namespace), timeout=15, what="the webhooks to take effect")
        yield
    finally:
        await kube.delete(MUTATING_WEBHOOK, None, names[0])
        await kube.delete(VALIDATING_WEBHOOK, None, names[1])


async def _webhooks_effective(kube: Kube, namespace: str) -> bool:
    """The apiserver picks up webhook configurations asynchronously: a dry-run TTree under a name the validating
    webhook refuses tells when ours are called."""
    from k8stars.kube.client import ApiException
    from k8stars.kube.resources import TTREE

    probe = {
        "apiVersion": TTREE.api_version,
        "kind": "TTree",
        "metadata": {"name": "webhook-probe"},
        "apps": [],
        "businesses": [],
    }
    try:
        await kube.request("POST", TTREE.path(namespace), body=probe, query={"dryRun": "All"})
    except ApiException as e:
        return "denied the request" in str(e.body)
    return False
