"""The registry's HTTP side: ``/metrics`` (Prometheus), ``/http_sd`` (getMetricsAdapters as Prometheus http_sd
target groups; query parameters application, server, set filter them) and ``/healthz``."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from k8stars.registry.model import RegistryError
from k8stars.registry.service import RegistryService


def http_app(service: RegistryService) -> web.Application:
    async def metrics(_: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(service.metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def http_sd(request: web.Request) -> web.Response:
        try:
            groups = service.metrics_adapters(dict(request.query))
        except RegistryError as e:
            return web.json_response({"error": e.message}, status=400)
        return web.json_response([{"targets": g.targets, "labels": g.labels} for g in groups])

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text=f"ok seq={service.seen}\n")

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/http_sd", http_sd)
    app.router.add_get("/healthz", healthz)
    return app


async def start_http(service: RegistryService, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Serve on host:port (0 = any free port); returns the runner (to clean up) and the bound port."""
    runner = web.AppRunner(http_app(service), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = port
    for addr in runner.addresses:
        if isinstance(addr, tuple):
            bound = int(addr[1])
    return runner, bound
