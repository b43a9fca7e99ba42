"""A service's HTTP side (aiohttp): ``/metrics`` and ``/healthz`` for any service, and serving an app as one of the
service's parts."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AsyncExitStack

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest


def metrics_app(registry: CollectorRegistry, health: Callable[[], str], *, client_max_size: int = 1024**2
                ) -> web.Application:  # fmt: skip
    """``/metrics``: ``registry`` in Prometheus's text format; ``/healthz``: ``ok <health()>``. Add routes to it.
    ``client_max_size``: the largest request body read (aiohttp's default 1 MiB)."""

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text=f"ok {health()}\n")

    app = web.Application(client_max_size=client_max_size)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    return app


async def serve_http(parts: AsyncExitStack, app: web.Application, host: str, port: int,
                     option: str = "--http-port") -> int:  # fmt: skip
    """Serve ``app`` on host:port (0: any free port) until ``parts`` close; returns the bound port. A port in use
    is an OSError naming ``option`` (the CLI exits 1)."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    parts.push_async_callback(runner.cleanup)
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as e:
        raise OSError(e.errno, f"{option} {port}: {e.strerror or e}") from None
    bound = port
    for addr in runner.addresses:
        if isinstance(addr, tuple):
            bound = int(addr[1])
    return bound
