"""``k8stars stat``: the stat and property services as one process.

Two listeners: ``--stat-endpoint`` serves ``tars.tarsstat.StatObj`` (and ``AdminObj``), ``--property-endpoint``
serves ``tars.tarsproperty.PropertyObj``; ``--http-port`` serves ``/metrics`` (Prometheus) and ``/healthz``. With
``--locator`` each servant is registered with the registry as the server TARS expects it under (``tars.tarsstat``,
``tars.tarsproperty``: K8STARS ``onStartup``, then ``keepAlive`` every 10 s, ``onPrestop`` when stopping), so every
server's ``stat=tars.tarsstat.StatObj`` and ``property=tars.tarsproperty.PropertyObj`` resolve by name.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from dataclasses import dataclass, field

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from k8stars import __version__
from k8stars.services.stat.metrics import DEFAULT_MAX_SERIES, StatMetrics, StatOptions
from k8stars.services.stat.servant import PropertyImp, StatImp
from k8stars.tars.endpoint import Endpoint, local_ip
from k8stars.tars.errors import TarsRpcError
from k8stars.tars.protocol.tarsregistry import AdapterConf, keepAliveReq, onPrestopReq, onStartupReq, tarsregistryProxy
from k8stars.tars.rpc import AdapterConfig, Application, Communicator
from k8stars.tars.rpc.application import AdminServant, ServerSettings

log = logging.getLogger("k8stars.services.stat")

APPLICATION = "tars"
STAT_SERVER, PROPERTY_SERVER = "tarsstat", "tarsproperty"
STAT_OBJ, PROPERTY_OBJ = "tars.tarsstat.StatObj", "tars.tarsproperty.PropertyObj"
REGISTRY_OBJ = "tars.tarsregistry.Registry"
DEFAULT_STAT_ENDPOINT = "tcp -h 127.0.0.1 -p 10003 -t 60000"  # StatObj's port in a classic TARS install
DEFAULT_PROPERTY_ENDPOINT = "tcp -h 127.0.0.1 -p 10004 -t 60000"  # PropertyObj's
DEFAULT_HTTP_PORT = 9326  # the registry's is 9325
KEEPALIVE_INTERVAL = 10.0
ERR_NOT_REGISTERED = 1002  # the registry's answer to a keepAlive it has no row for
_WILDCARD = {"0.0.0.0", "*", "::", ""}


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


class _Registration:
    """onStartup until it works (the registry may start after us), then keepAlive; again after the registry forgot
    us. One per servant: TARS knows StatObj and PropertyObj as two servers."""

    def __init__(self, registry: tarsregistryProxy, server: str, servant: str, node: str, ep: Endpoint) -> None:
        self.registry, self.server, self.servant, self.node, self.ep = registry, server, servant, node, ep
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self._loop(), name=f"{self.server}-registration")

    def _startup(self) -> onStartupReq:
        endpoint = f"tcp -h {self.node} -p {self.ep.port} -t {self.ep.timeout or 60000}"
        adapter = AdapterConf(self.servant, endpoint, "tars", 100000, 1, 10000, 60000)
        return onStartupReq(self.node, APPLICATION, self.server, adapters=[adapter], State="active",
                            Version=__version__)  # fmt: skip

    async def _loop(self) -> None:
        registered = False
        while True:
            try:
                if not registered:
                    await self.registry.onStartup(self._startup())
                    registered = True
                    log.info("registered %s with the registry", self.servant)
                else:
                    await self.registry.keepAlive(keepAliveReq(self.node, "active", APPLICATION, self.server))
            except TarsRpcError as e:
                registered = registered and e.code != ERR_NOT_REGISTERED
                log.warning("registry %s (%s): %s", "keepAlive" if registered else "onStartup", self.servant, e)
            except Exception as e:  # e.g. the locator cannot resolve the Registry servant yet
                log.warning("registry (%s): %s", self.servant, e)
            await asyncio.sleep(KEEPALIVE_INTERVAL if registered else 2.0)

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            self.task = None
        with contextlib.suppress(Exception):
            await self.registry.tars_options(timeout_ms=1000).onPrestop(
                onPrestopReq(self.node, APPLICATION, self.server)
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
        self._comm: Communicator | None = None
        self._registrations: list[_Registration] = []

    def endpoint(self, servant: str) -> Endpoint:
        return self.app.adapter_endpoint(servant)

    def node(self, servant: str) -> str:
        host = self.endpoint(servant).host
        return self.options.node_name or (local_ip() if host in _WILDCARD else host)

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
        self._comm = Communicator(locator=self.options.locator)
        registry = self._comm.string_to_proxy(tarsregistryProxy, REGISTRY_OBJ)
        for server, servant in ((STAT_SERVER, STAT_OBJ), (PROPERTY_SERVER, PROPERTY_OBJ)):
            reg = _Registration(registry, server, servant, self.node(servant), self.endpoint(servant))
            reg.start()
            self._registrations.append(reg)

    async def stop(self) -> None:
        await asyncio.gather(*(r.stop() for r in self._registrations))
        self._registrations = []
        if self._comm is not None:
            await self._comm.close()
            self._comm = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.app.stop()

    async def run(self) -> None:
        """Serve until SIGTERM, SIGINT or AdminObj.shutdown, then stop (deregistering)."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.stopping.set)
        await self.start()
        try:
            await self.stopping.wait()
        finally:
            await self.stop()


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
    if not logging.getLogger().handlers:
        logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    options = StatServiceOptions(
        stat_endpoint=stat_endpoint, property_endpoint=property_endpoint, http_host=http_host, http_port=http_port,
        locator=locator or "", node_name=node_name or "", log_level=log_level,
        metrics=StatOptions(max_series=max_series, ip_labels=ip_labels, ret_label=ret_label),
    )  # fmt: skip
    await StatService(options).run()
