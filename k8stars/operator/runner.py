"""Running the operator as a process: connect, serve the admission webhooks, install the CRDs, take the leader
Lease, reconcile until cancelled (``run_operator``, what ``k8stars operator`` runs)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from k8stars.kube.client import Kube

from .controller import Operator

log = logging.getLogger("k8stars.operator")


@dataclass
class WebhookOptions:
    """Serve the admission webhooks on host:port with cert/key; register them (caBundle from `ca_file`, default the
    certificate) when `url` (what the apiserver calls, https://...) is given."""

    port: int
    cert_file: str
    key_file: str
    host: str = "127.0.0.1"
    url: str | None = None
    ca_file: str | None = None
    tconfig_guard: float = 48.0  # seconds an activated TConfig cannot be deleted after its activation
    operator_account: str | None = None  # the ServiceAccount the webhooks trust (see webhook.operator_identity)


@dataclass
class LeaderOptions:
    """Elect a leader among replicas on the Lease `namespace/name`; only the leader reconciles."""

    namespace: str
    identity: str
    name: str = "k8stars-operator"
    duration: float = 15.0
    renew_deadline: float = 0.0  # 0: two thirds of the duration; a leader that cannot renew by then stops writing


async def run_operator(
    kubeconfig: str | None = None,
    *,
    namespace: str | None = None,
    workers: int = 4,
    install_crds: bool = True,
    resync: float = 300.0,
    webhook: WebhookOptions | None = None,
    leader: LeaderOptions | None = None,
    metrics_port: int = 0,
    metrics_host: str = "127.0.0.1",
    on_ready: Callable[[Operator], Awaitable[None]] | None = None,
) -> None:
    """Connect, serve the webhooks (optional; every replica), install the CRDs (optional), wait for leadership
    (optional) and reconcile until cancelled. Raises LeadershipLost when the lease is lost (exit and restart)."""
    from k8stars.kube.install import install_crds as install

    from . import health
    from .leader import LeaderElector

    current: list[Operator] = []
    metrics = None
    if metrics_port:
        metrics = await health.serve(lambda: current[0] if current else None, metrics_host, metrics_port)
    async with contextlib.AsyncExitStack() as stack:
        if metrics is not None:
            stack.push_async_callback(metrics.cleanup)
        kube = await stack.enter_async_context(await Kube.connect(kubeconfig))
        runner = None
        if webhook is not None:  # from here on the operator acts as the account its webhooks trust
            kube, runner = await _start_webhooks(kube, webhook, namespace)
        elector = None
        try:
            if install_crds:
                t0 = time.monotonic()
                url = f"{webhook.url.rstrip('/')}/convert" if webhook is not None and webhook.url else None
                ca = _ca_bundle(webhook) if webhook is not None and url else ""
                names = await install(kube, conversion_url=url, ca_bundle=ca)
                log.info("CRDs installed (%d) in %.2f s", len(names), time.monotonic() - t0)
            if leader is not None:
                elector = LeaderElector(
                    kube, leader.namespace, leader.identity, leader.name, leader.duration, renew=leader.duration / 5,
                    renew_deadline=leader.renew_deadline,
                )  # fmt: skip
                log.info("%s waiting for the lease %s/%s", leader.identity, leader.namespace, leader.name)
                await elector.acquire()
            # The operator's writes go through the fence: none leaves after the renew deadline.
            operator_kube = kube.fenced(elector.check) if elector is not None else kube
            operator = Operator(operator_kube, namespace=namespace, workers=workers, resync=resync)
            current.append(operator)
            async with asyncio.TaskGroup() as group:
                group.create_task(operator.run(), name="operator")
                if elector is not None:
                    group.create_task(elector.hold(), name="lease")
                if on_ready is not None:
                    await operator.ready.wait()
                    await on_ready(operator)
        except BaseExceptionGroup as group_error:
            raise group_error.exceptions[0] from None
        finally:
            if elector is not None:
                with contextlib.suppress(Exception):
                    await asyncio.shield(elector.release())
            if runner is not None:
                await runner.cleanup()


def _ca_bundle(options: WebhookOptions) -> str:
    return base64.b64encode(Path(options.ca_file or options.cert_file).read_bytes()).decode()


async def _start_webhooks(kube: Kube, options: WebhookOptions, namespace: str | None = None) -> tuple[Kube, Any]:
    from . import webhook

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(options.cert_file, options.key_file)
    # Only the operator's ServiceAccount (and Kubernetes) may do what users may not: never the person running it.
    kube, owners = await webhook.operator_identity(kube, options.operator_account)
    # a one-namespace operator may read no other namespace: its webhook caches watch that one only
    admission = webhook.Admission(kube, owners=owners, tconfig_guard=options.tconfig_guard, namespace=namespace)
    runner = await webhook.serve(admission, options.host, options.port, context)
    log.info("admission webhooks on https://%s:%d", options.host, options.port)
    if options.url:
        names = await webhook.register(kube, options.url.rstrip("/"), _ca_bundle(options))
        log.info("registered %s", ", ".join(names))
    return kube, runner
