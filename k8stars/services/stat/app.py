"""``k8stars stat``: the stat and property services as one process.

Two listeners: ``--stat-endpoint`` serves ``tars.tarsstat.StatObj`` (and ``AdminObj``), ``--property-endpoint``
serves ``tars.tarsproperty.PropertyObj``; ``--http-port`` serves ``/metrics`` (Prometheus) and ``/healthz``. With
``--locator`` each servant is registered with the registry as the server TARS expects it under (``tars.tarsstat``,
``tars.tarsproperty``: K8STARS ``onStartup``, then ``keepAlive`` every 10 s, ``onPrestop`` when stopping), so every
server's ``stat=tars.tarsstat.StatObj`` and ``property=tars.tarsproperty.PropertyObj`` resolve by name.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from k8stars import __version__
from k8stars.services.base import APPLICATION, Registrations, node_address, run_service, setup_logging
from k8stars.services.stat.metrics import DEFAULT_MAX_SERIES, StatMetrics, StatOptions
from k8stars.services.stat.servant import PropertyImp, StatImp
from k8stars.tars.endpoint import Endpoint
from k8stars.tars.rpc import AdapterConfig, Application
from k8stars.tars.rpc.application import AdminServant, ServerSettings

log = logging.getLogger("k8stars.services.stat")

STAT_SERVER, PROPERTY_SERVER = "tarsstat", "tarsproperty"
STAT_OBJ, PROPERTY_OBJ = "tars.tarsstat.StatObj", "tars.tarsproperty.PropertyObj"
DEFAULT_STAT_ENDPOINT = "tcp -h 127.0.0.1 -p 10003 -t 60000"  # StatObj's port in a classic TARS install
DEFAULT_PROPERTY_ENDPOINT = "tcp -h 127.0.0.1 -p 10004 -t 60000"  # PropertyObj's
DEFAULT_HTTP_PORT = 9326  # the registry's is 9325


class StatServiceError(ValueError):
    """An option that cannot work; the message names it."""


@dataclass
class StatServiceOptions:
    stat_endpoint: str = DEFAULT_STAT_ENDPOINT
    property_endpoint: str = DEFAULT_PROPERTY_ENDPOINT
    http_host: str = "127.0.0.1"
    http_port: int = DEFAULT_HTTP_PORT  # 0: any free port (tests); -1: no HTTP listener
    locator: str = ""  # the registry's QueryObj proxy; empty: no self-registration
    node_name: str = ""  # the address registered (default: the endpoint's host)
    log_level: str = "INFO"
    metrics: StatOptions = field(default_factory=StatOptions)

    def parsed(self, option: str, text: str) -> Endpoint:
        try:
            ep = Endpoint.parse(text)
        except ValueError as e:
            raise StatServiceError(f"{option}: {e}") from None
        if ep.protocol != "tcp":  # reporters call StatF/PropertyF over TCP; a UDP adapter would never be reached
            raise StatServiceError(f"{option}: {text!r} must be a tcp endpoint")
        return ep

    def check(self) -> None:
        stat = self.parsed("--stat-endpoint", self.stat_endpoint)
        prop = self.parsed("--property-endpoint", self.property_endpoint)
        if stat.port and (stat.host, stat.port) == (prop.host, prop.port):
            raise StatServiceError("--stat-endpoint and --property-endpoint must differ (one adapter each)")
        if self.metrics.max_series < 1:
            raise StatServiceError(f"--max-series {self.metrics.max_series}: must be at least 1")
        if not -1 <= self.http_port <= 65535:
            raise StatServiceError(f"--http-port {self.http_port}: expected 0..65535 (or -1 for none)")
        if self.locator and "@" not in self.locator:
            raise StatServiceError(
                f"--locator {self.locator!r}: expected tars.tarsregistry.QueryObj@tcp -h HOST -p PORT"
            )


def http_app(metrics: StatMetrics) -> web.Application:
    async def scrape(_: web.Request) -> web.Response:
        return web.Response(body=generate_latest(metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text=f"ok series={metrics.series_count}\n")

    app = web.Application()
    app.router.add_get("/metrics", scrape)
    app.router.add_get("/healthz", healthz)
    return app


class StatService:
    """Both servants + AdminObj, the HTTP listener and the registrations, started and stopped as one."""

    def __init__(self, options: StatServiceOptions) -> None:
        options.check()
        self.options = options
        self.metrics = StatMetrics(options.metrics)
        adapters = [
            AdapterConfig(STAT_OBJ + "Adapter", options.parsed("", options.stat_endpoint), STAT_OBJ, max_conns=100000),
            AdapterConfig(PROPERTY_OBJ + "Adapter", options.parsed("", options.property_endpoint), PROPERTY_OBJ,
                          max_conns=100000),
        ]  # fmt: skip
        settings = ServerSettings(app=APPLICATION, server=STAT_SERVER, log_level=options.log_level, adapters=adapters)
        self.app = Application(settings)
        self.stopping = self.app.stopping  # AdminObj.shutdown ends run() too
        self.http_port = 0
        self._runner: web.AppRunner | None = None
        self._registrations: Registrations | None = None

    def endpoint(self, servant: str) -> Endpoint:
        return self.app.adapter_endpoint(servant)

    def node(self, servant: str) -> str:
        return node_address(self.options.node_name, self.endpoint(servant))

    async def start(self) -> None:
        try:
            stat_adapter = self.app.server.adapters[STAT_OBJ + "Adapter"]
            stat_adapter.add_servant(STAT_OBJ, StatImp(self.metrics))
            stat_adapter.add_servant("AdminObj", AdminServant(self.app))
            self.app.server.adapters[PROPERTY_OBJ + "Adapter"].add_servant(PROPERTY_OBJ, PropertyImp(self.metrics))
            await self.app.start()
            if self.options.http_port >= 0:
                await self._start_http()
            if self.options.locator:
                self._register()
        except BaseException:
            await self.stop()
            raise
        where = f", /metrics on {self.options.http_host}:{self.http_port}" if self._runner else ""
        log.info("stat %s: %s@%s, %s@%s%s", __version__, STAT_OBJ, self.endpoint(STAT_OBJ), PROPERTY_OBJ,
                 self.endpoint(PROPERTY_OBJ), where)  # fmt: skip

    async def _start_http(self) -> None:
        self._runner = web.AppRunner(http_app(self.metrics), access_log=None)
        await self._runner.setup()
        try:
            await web.TCPSite(self._runner, self.options.http_host, self.options.http_port).start()
        except OSError as e:  # in use: not a bad option, the CLI exits 1 as for the servants' ports
            raise OSError(e.errno, f"--http-port {self.options.http_port}: {e.strerror or e}") from None
        for addr in self._runner.addresses:
            if isinstance(addr, tuple):
                self.http_port = int(addr[1])

    def _register(self) -> None:
        # TARS knows StatObj and PropertyObj as two servers: one registration each
        self._registrations = Registrations(self.options.locator)
        for server, servant in ((STAT_SERVER, STAT_OBJ), (PROPERTY_SERVER, PROPERTY_OBJ)):
            self._registrations.add(server, servant, self.node(servant), self.endpoint(servant))

    async def stop(self) -> None:
        if self._registrations is not None:
            await self._registrations.close()
            self._registrations = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.app.stop()

    async def run(self) -> None:
        """Serve until SIGTERM, SIGINT or AdminObj.shutdown, then stop (deregistering)."""
        await run_service(self)


async def serve(
    *,
    stat_endpoint: str = DEFAULT_STAT_ENDPOINT,
    property_endpoint: str = DEFAULT_PROPERTY_ENDPOINT,
    http_host: str = "127.0.0.1",
    http_port: int = DEFAULT_HTTP_PORT,
    locator: str | None = None,
    node_name: str | None = None,
    max_series: int = DEFAULT_MAX_SERIES,
    ip_labels: bool = False,
    ret_label: bool = False,
    log_level: str = "INFO",
) -> None:
    """Run the stat service until stopped (what ``k8stars stat`` does). StatServiceError for bad options."""
    setup_logging(log_level)
    options = StatServiceOptions(
        stat_endpoint=stat_endpoint, property_endpoint=property_endpoint, http_host=http_host, http_port=http_port,
        locator=locator or "", node_name=node_name or "", log_level=log_level,
        metrics=StatOptions(max_series=max_series, ip_labels=ip_labels, ret_label=ret_label),
    )  # fmt: skip
    await StatService(options).run()
