"""The registry's HTTP side: ``/metrics`` (Prometheus), ``/http_sd`` (getMetricsAdapters as Prometheus http_sd
target groups; query parameters application, server, set filter them) and ``/healthz``."""

from __future__ import annotations

from aiohttp import web

from k8stars.registry.model import RegistryError
from k8stars.registry.service import RegistryService
from k8stars.service.http import metrics_app


def http_app(service: RegistryService) -> web.Application:
    async def http_sd(request: web.Request) -> web.Response:
        try:
            groups = service.metrics_adapters(dict(request.query))
        except RegistryError as e:
            return web.json_response({"error": e.message}, status=400)
        return web.json_response([{"targets": g.targets, "labels": g.labels} for g in groups])

    app = metrics_app(service.metrics.registry, lambda: f"seq={service.seen}")
    app.router.add_get("/http_sd", http_sd)
    return app
