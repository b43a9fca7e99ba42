"""``k8stars stat``: the stat and property services as one process.

Two listeners: ``--stat-endpoint`` serves ``tars.tarsstat.StatObj`` (and ``AdminObj``), ``--property-endpoint``
serves ``tars.tarsproperty.PropertyObj``; ``--http-port`` serves ``/metrics`` (Prometheus) and ``/healthz``. With
``--locator`` each servant is registered with the registry as the server TARS expects it under (``tars.tarsstat``,
``tars.tarsproperty``: K8STARS ``onStartup``, then ``keepAlive`` every 10 s, ``onPrestop`` when stopping), so every
server's ``stat=tars.tarsstat.StatObj`` and ``property=tars.tarsproperty.PropertyObj`` resolve by name. With
``--history sqlite|mysql`` the reports are also kept per minute (history.py) for the query services
(k8stars.services.monitor).
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

from k8stars.service.http import metrics_app, serve_http
from k8stars.service.options import ServiceError, TarsServiceOptions
from k8stars.service.tars import TarsService, tars_adapter
from k8stars.services.stat.history import History, HistoryOptions
from k8stars.services.stat.metrics import DEFAULT_MAX_SERIES, StatMetrics, StatOptions
from k8stars.services.stat.servant import PropertyImp, StatImp
from k8stars.services.stat.store import HistoryStore
from k8stars.sql import parse_dsn
from k8stars.tars.endpoint import Endpoint
from k8stars.tars.rpc import AdapterConfig

STAT_SERVER, PROPERTY_SERVER = "tarsstat", "tarsproperty"
STAT_OBJ, PROPERTY_OBJ = "tars.tarsstat.StatObj", "tars.tarsproperty.PropertyObj"
DEFAULT_STAT_ENDPOINT = "tcp -h 127.0.0.1 -p 10003 -t 60000"  # StatObj's port in a classic TARS install
DEFAULT_PROPERTY_ENDPOINT = "tcp -h 127.0.0.1 -p 10004 -t 60000"  # PropertyObj's
DEFAULT_HTTP_PORT = 9326  # the registry's is 9325


class StatServiceError(ServiceError):
    """An option that cannot work; the message names it."""


@dataclass(kw_only=True)
class StatServiceOptions(TarsServiceOptions):
    stat_endpoint: str = DEFAULT_STAT_ENDPOINT
    property_endpoint: str = DEFAULT_PROPERTY_ENDPOINT
    http_host: str = "127.0.0.1"
    http_port: int = DEFAULT_HTTP_PORT  # 0: any free port (tests); -1: no HTTP listener
    metrics: StatOptions = field(default_factory=StatOptions)
    history: str = "none"  # none, sqlite or mysql (the CLI's default: sqlite)
    data_dir: str | None = None  # sqlite: the directory of monitor.db
    dsn: str | None = None  # mysql: mysql://user:pass@host:port/db_tars
    history_options: HistoryOptions = field(default_factory=HistoryOptions)

    error: ClassVar[type[ServiceError]] = StatServiceError

    @classmethod
    def from_cli(cls, *, max_series: int = DEFAULT_MAX_SERIES, ip_labels: bool = False, ret_label: bool = False,
                 history_days: int | None = None, history_series: int | None = None,
                 history_flush: float | None = None, **given: Any) -> Self:  # fmt: skip
        metrics = StatOptions(max_series=max_series, ip_labels=ip_labels, ret_label=ret_label)
        history = HistoryOptions()
        history.retention_days = history.retention_days if history_days is None else history_days
        history.max_series = history.max_series if history_series is None else history_series
        history.flush_interval = history.flush_interval if history_flush is None else history_flush
        return super().from_cli(metrics=metrics, history_options=history, **given)

    def parsed(self, option: str, text: str) -> Endpoint:
        # reporters call StatF/PropertyF over TCP; a UDP adapter would never be reached
        return self.parse_endpoint(option, text, tcp=True)

    def check(self) -> None:
        stat = self.parsed("--stat-endpoint", self.stat_endpoint)
        prop = self.parsed("--property-endpoint", self.property_endpoint)
        if stat.port and (stat.host, stat.port) == (prop.host, prop.port):
            raise StatServiceError("--stat-endpoint and --property-endpoint must differ (one adapter each)")
        if self.metrics.max_series < 1:
            raise StatServiceError(f"--max-series {self.metrics.max_series}: must be at least 1")
        self.check_history()
        if not -1 <= self.http_port <= 65535:
            raise StatServiceError(f"--http-port {self.http_port}: expected 0..65535 (or -1 for none)")
        super().check()

    def check_history(self) -> None:
        h = self.history_options
        if self.history not in ("none", "sqlite", "mysql"):
            raise StatServiceError(f"--history {self.history!r}: expected none, sqlite or mysql")
        if self.history == "mysql":
            if not self.dsn:
                raise StatServiceError("--history mysql needs --dsn mysql://user:pass@host:port/db_tars")
            try:
                parse_dsn(self.dsn)
            except ValueError as e:
                raise StatServiceError(f"--dsn: {e}") from None
        if h.retention_days < 1:
            raise StatServiceError(f"--history-days {h.retention_days}: must be at least 1")
        if h.max_series < 1:
            raise StatServiceError(f"--history-series {h.max_series}: must be at least 1")
        if not 0 < h.flush_interval <= 60:
            raise StatServiceError(f"--history-flush {h.flush_interval}: expected more than 0, at most 60 seconds")

    def open_history_store(self) -> HistoryStore:
        try:
            return HistoryStore(self.history, data_dir=self.data_dir, dsn=self.dsn)
        except ValueError as e:
            raise StatServiceError(f"--dsn: {e}") from None


class StatService(TarsService[StatServiceOptions]):
    """Both servants + AdminObj, the HTTP listener and the registrations, started and stopped as one."""

    name, server = "stat", STAT_SERVER

    def __init__(self, options: StatServiceOptions) -> None:
        super().__init__(options)
        self.metrics = StatMetrics(options.metrics)
        self.http_port = 0
        self.history: History | None = None

    def adapters(self) -> list[AdapterConfig]:
        o = self.options
        return [tars_adapter(STAT_OBJ, o.parsed("", o.stat_endpoint)),
                tars_adapter(PROPERTY_OBJ, o.parsed("", o.property_endpoint))]  # fmt: skip

    def endpoint(self, servant: str) -> Endpoint:
        return self.app.adapter_endpoint(servant)

    async def open(self, parts: AsyncExitStack) -> None:
        if self.options.history != "none":
            store = self.options.open_history_store()
            await store.open()
            parts.push_async_callback(store.close)
            self.history = History(store, self.options.history_options, self.metrics.registry)
            self.history.start()
            parts.push_async_callback(self.history.close)  # after the listeners close: the last reports are written
        self.adapter(STAT_OBJ).add_servant(STAT_OBJ, StatImp(self.metrics, self.history))
        self.adapter(PROPERTY_OBJ).add_servant(PROPERTY_OBJ, PropertyImp(self.metrics, self.history))
        await self.start_tars(parts)
        if self.options.http_port >= 0:
            app = metrics_app(self.metrics.registry, lambda: f"series={self.metrics.series_count}")
            self.http_port = await serve_http(parts, app, self.options.http_host, self.options.http_port)
        # TARS knows StatObj and PropertyObj as two servers: one registration each
        self.register(parts, self.options.locator, (STAT_SERVER, STAT_OBJ), (PROPERTY_SERVER, PROPERTY_OBJ))

    def describe(self) -> str:
        http = f", /metrics on {self.options.http_host}:{self.http_port}" if self.options.http_port >= 0 else ""
        history = f", history in {self.history.store.where}" if self.history is not None else ""
        return f"{STAT_OBJ}@{self.endpoint(STAT_OBJ)}, {PROPERTY_OBJ}@{self.endpoint(PROPERTY_OBJ)}{http}{history}"
