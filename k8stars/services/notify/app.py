"""``k8stars notify``: the notify service as a process.

One listener (``--endpoint``) serves ``tars.tarsnotify.NotifyObj`` and ``AdminObj`` (the usual ``tars.*`` commands,
plus ``tars.notifystat``: the counters). The store is ``kubernetes`` (Events on the reporting pods of
``--namespace``) or ``sqlite`` / ``mysql`` (the classic ``db_tars.t_server_notifys``); without ``--store`` it is
``kubernetes`` when a namespace is given, else ``sqlite``. With ``--locator`` the service registers itself as
application ``tars``, server ``tarsnotify`` (K8STARS ``onStartup``, ``keepAlive`` every 10 s, ``onPrestop`` at
stop), so every server's ``notify=tars.tarsnotify.NotifyObj`` resolves by name.
"""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import ClassVar

from k8stars.service.options import ServiceError, StoreServiceOptions
from k8stars.service.tars import TarsService, tars_adapter
from k8stars.services.notify.filters import FilterError, NotifyFilter
from k8stars.services.notify.kubestore import KubernetesNotifyStore
from k8stars.services.notify.queue import DEFAULT_CAPACITY, NotifyImp, NotifyQueue, NotifySink
from k8stars.services.notify.sqlstore import SqlNotifyStore
from k8stars.tars.endpoint import Endpoint
from k8stars.tars.rpc import AdapterConfig

log = logging.getLogger("k8stars.services.notify")

SERVER = "tarsnotify"
NOTIFY_OBJ = "tars.tarsnotify.NotifyObj"
DEFAULT_ENDPOINT = "tcp -h 127.0.0.1 -p 10002 -t 60000"  # NotifyObj's port in a classic TARS install
STOP_FLUSH_TIMEOUT = 3.0  # seconds to write what is still queued at stop


class NotifyServiceError(ServiceError):
    """An option that cannot work; the message names it."""


@dataclass(kw_only=True)
class NotifyServiceOptions(StoreServiceOptions):
    endpoint: str = DEFAULT_ENDPOINT
    queue_size: int = DEFAULT_CAPACITY
    filter: tuple[str, ...] = ()  # TarsFramework's <tars><filter>: App.Server=TEXT;TEXT, default=TEXT

    @property
    def filters(self) -> NotifyFilter:
        try:
            return NotifyFilter.parse(self.filter)
        except FilterError as e:
            raise NotifyServiceError(str(e)) from None

    error: ClassVar[type[ServiceError]] = NotifyServiceError
    namespace_env: ClassVar[str] = "K8STARS_NOTIFY_NAMESPACE"

    def check(self) -> None:
        super().check()
        if self.queue_size < 1:
            raise NotifyServiceError(f"--queue-size {self.queue_size}: must be at least 1")
        self.filters  # noqa: B018 (raises for a bad --filter)


def open_store(options: NotifyServiceOptions) -> NotifySink:
    """The (unopened) store the options name."""
    if options.store_kind == "kubernetes":
        return KubernetesNotifyStore(options.namespace, options.kubeconfig)
    return SqlNotifyStore(options.store_kind, data_dir=options.data_dir, dsn=options.dsn)


class NotifyService(TarsService[NotifyServiceOptions]):
    """Store, queue, NotifyObj + AdminObj listener and self-registration, started and stopped as one."""

    name, server = "notify", SERVER

    def __init__(self, options: NotifyServiceOptions, store: NotifySink | None = None) -> None:
        super().__init__(options)
        self.store = store or open_store(options)
        self.queue = NotifyQueue(self.store, options.queue_size)
        self.app.register_admin_command("tars.notifystat", self._stat, "the notify service's counters")

    def adapters(self) -> list[AdapterConfig]:
        return [tars_adapter(NOTIFY_OBJ, self.options.parsed_endpoint())]

    def _stat(self, _command: str, _params: str) -> str:
        return f"{self.store.kind} store {self.store.where}: {self.queue.counters}, queued {self.queue.pending}"

    @property
    def endpoint(self) -> Endpoint:
        return self.app.adapter_endpoint(NOTIFY_OBJ)

    async def open(self, parts: AsyncExitStack) -> None:
        await self.store.open()
        parts.push_async_callback(self.store.close)
        self.queue.start()
        parts.push_async_callback(self._drain)
        self.adapter(NOTIFY_OBJ).add_servant(NOTIFY_OBJ, NotifyImp(self.queue, self.options.filters))
        await self.start_tars(parts)
        self.register(parts, self.options.locator, (SERVER, NOTIFY_OBJ))

    async def _drain(self) -> None:
        """After the listener: what its last calls queued is written too."""
        await self.queue.stop(STOP_FLUSH_TIMEOUT)
        log.info("notify: %s", self.queue.counters)

    def describe(self) -> str:
        filters = self.options.filters
        text = f"{NOTIFY_OBJ}@{self.endpoint}, {self.store.kind} store {self.store.where}"
        return f"{text}, filters {filters.describe()}" if filters else text
