"""``k8stars monitor``: the query services as one process.

``--stat-endpoint`` serves ``tars.tarsquerystat.QueryObj`` (and ``AdminObj``), ``--property-endpoint``
``tars.tarsqueryproperty.QueryObj``: K8SFramework's ``MonitorQuery.query`` over the history the stat service writes
(``k8stars stat --history``), read from the same store (``monitor.db`` under ``--data-dir``, or ``--dsn``).
``--http-port`` serves the JSON view (``/api/query/stat``, ``/api/query/property``), ``/metrics`` and ``/healthz``.
With ``--locator`` each servant is registered as the server TARS knows it under (``tars.tarsquerystat``,
``tars.tarsqueryproperty``), so TarsWeb and ``k8stars call`` find them by name.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import ClassVar

from prometheus_client import CollectorRegistry

from k8stars.service.http import metrics_app, serve_http
from k8stars.service.options import ServiceError, TarsServiceOptions
from k8stars.service.tars import TarsService, tars_adapter
from k8stars.services.monitor.servant import QueryImp
from k8stars.services.monitor.web import add_routes
from k8stars.services.stat.store import PROPERTY, STAT, HistoryStore
from k8stars.sql import parse_dsn
from k8stars.tars.endpoint import Endpoint
from k8stars.tars.rpc import AdapterConfig

QUERYSTAT_SERVER, QUERYPROPERTY_SERVER = "tarsquerystat", "tarsqueryproperty"
QUERYSTAT_OBJ, QUERYPROPERTY_OBJ = "tars.tarsquerystat.QueryObj", "tars.tarsqueryproperty.QueryObj"
DEFAULT_STAT_ENDPOINT = "tcp -h 127.0.0.1 -p 18393 -t 60000"  # K8SFramework's ports
DEFAULT_PROPERTY_ENDPOINT = "tcp -h 127.0.0.1 -p 18693 -t 60000"
DEFAULT_HTTP_PORT = 9327  # the stat service's is 9326


class MonitorServiceError(ServiceError):
    """An option that cannot work; the message names it."""


@dataclass(kw_only=True)
class MonitorServiceOptions(TarsServiceOptions):
    stat_endpoint: str = DEFAULT_STAT_ENDPOINT
    property_endpoint: str = DEFAULT_PROPERTY_ENDPOINT
    http_host: str = "127.0.0.1"
    http_port: int = DEFAULT_HTTP_PORT  # 0: any free port; -1: none
    store: str = "sqlite"  # sqlite or mysql: where the stat service writes its history
    data_dir: str | None = None
    dsn: str | None = None

    error: ClassVar[type[ServiceError]] = MonitorServiceError

    def check(self) -> None:
        stat = self.parse_endpoint("--stat-endpoint", self.stat_endpoint)
        prop = self.parse_endpoint("--property-endpoint", self.property_endpoint)
        if stat.port and (stat.host, stat.port) == (prop.host, prop.port):
            raise MonitorServiceError("--stat-endpoint and --property-endpoint must differ (one adapter each)")
        if self.store not in ("sqlite", "mysql"):
            raise MonitorServiceError(f"--store {self.store!r}: expected sqlite or mysql")
        if self.store == "mysql":
            if not self.dsn:
                raise MonitorServiceError("--store mysql needs --dsn mysql://user:pass@host:port/db_tars")
            try:
                parse_dsn(self.dsn)
            except ValueError as e:
                raise MonitorServiceError(f"--dsn: {e}") from None
        if not -1 <= self.http_port <= 65535:
            raise MonitorServiceError(f"--http-port {self.http_port}: expected 0..65535 (or -1 for none)")
        super().check()


class MonitorService(TarsService[MonitorServiceOptions]):
    """The store, both QueryObj servants + AdminObj, the HTTP listener and the registrations, as one."""

    name, server = "monitor", QUERYSTAT_SERVER

    def __init__(self, options: MonitorServiceOptions) -> None:
        super().__init__(options)
        try:
            self.store = HistoryStore(options.store, data_dir=options.data_dir, dsn=options.dsn)
        except ValueError as e:
            raise MonitorServiceError(f"--dsn: {e}") from None
        self.registry = CollectorRegistry()
        self.http_port = 0

    def adapters(self) -> list[AdapterConfig]:
        o = self.options
        return [tars_adapter(QUERYSTAT_OBJ, o.parse_endpoint("", o.stat_endpoint)),
                tars_adapter(QUERYPROPERTY_OBJ, o.parse_endpoint("", o.property_endpoint))]  # fmt: skip

    def endpoint(self, servant: str) -> Endpoint:
        return self.app.adapter_endpoint(servant)

    async def open(self, parts: AsyncExitStack) -> None:
        await self.store.open()
        parts.push_async_callback(self.store.close)
        self.adapter(QUERYSTAT_OBJ).add_servant(QUERYSTAT_OBJ, QueryImp(self.store, STAT))
        self.adapter(QUERYPROPERTY_OBJ).add_servant(QUERYPROPERTY_OBJ, QueryImp(self.store, PROPERTY))
        await self.start_tars(parts)
        if self.options.http_port >= 0:
            app = metrics_app(self.registry, lambda: f"store={self.store.where}")
            add_routes(app, self.store)
            self.http_port = await serve_http(parts, app, self.options.http_host, self.options.http_port)
        self.register(parts, self.options.locator, (QUERYSTAT_SERVER, QUERYSTAT_OBJ),
                      (QUERYPROPERTY_SERVER, QUERYPROPERTY_OBJ))  # fmt: skip

    def describe(self) -> str:
        o = self.options
        http = f", JSON and /metrics on {o.http_host}:{self.http_port}" if o.http_port >= 0 else ""
        stat, prop = self.endpoint(QUERYSTAT_OBJ), self.endpoint(QUERYPROPERTY_OBJ)
        return f"{QUERYSTAT_OBJ}@{stat}, {QUERYPROPERTY_OBJ}@{prop}{http}, {self.store.kind} store {self.store.where}"
