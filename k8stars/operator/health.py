"""The operator's own HTTP endpoints: /healthz (alive), /readyz (caches synced; 503 while waiting for the lease or
syncing) and /metrics (Prometheus text: reconciles, writes by kind, errors, queue depth, cached objects)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from .controller import Operator


class OperatorCollector(Collector):
    def __init__(self, current: Callable[[], Operator | None]) -> None:
        self.current = current

    def collect(self) -> Iterator[Metric]:
        op = self.current()
        leader = GaugeMetricFamily("k8stars_operator_leader", "1 while this replica reconciles (holds the lease)")
        leader.add_metric([], 1.0 if op is not None and op.ready.is_set() else 0.0)
        yield leader
        if op is None:
            return
        yield CounterMetricFamily("k8stars_operator_reconciles", "Reconciles run", value=op.stats.reconciles)
        yield CounterMetricFamily("k8stars_operator_errors", "Reconciles that failed (and were retried)",
                                  value=op.stats.errors)  # fmt: skip
        writes = CounterMetricFamily("k8stars_operator_writes", "Writes to the API by kind", labels=["kind"])
        for kind, count in sorted(op.stats.writes.items()):
            writes.add_metric([kind], count)
        yield writes
        yield GaugeMetricFamily("k8stars_operator_queue_depth", "TServers queued or being reconciled",
                                value=len(op.queue))  # fmt: skip
        cached = GaugeMetricFamily("k8stars_operator_cached_objects", "Objects in the informer caches",
                                   labels=["resource"])  # fmt: skip
        for informer in op.informers:
            cached.add_metric([informer.res.plural], len(informer.store))
        yield cached


def make_app(current: Callable[[], Operator | None]) -> web.Application:
    registry = CollectorRegistry()
    registry.register(OperatorCollector(current))

    async def healthz(request: web.Request) -> web.StreamResponse:
        return web.Response(text="ok")

    async def readyz(request: web.Request) -> web.StreamResponse:
        op = current()
        if op is None:
            return web.Response(status=503, text="waiting for the lease")
        if not op.ready.is_set():
            return web.Response(status=503, text="syncing caches")
        return web.Response(text="ok")

    async def metrics(request: web.Request) -> web.StreamResponse:
        body = generate_latest(registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    return app


async def serve(current: Callable[[], Operator | None], host: str, port: int) -> web.AppRunner:
    runner = web.AppRunner(make_app(current), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
