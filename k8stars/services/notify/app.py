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
from dataclasses import dataclass
from typing import ClassVar

from k8stars import __version__
from k8stars.services.base import (
    APPLICATION,
    Registrations,
    StoreServiceOptions,
    node_address,
    run_service,
    setup_logging,
)
from k8stars.services.notify.kubestore import KubernetesNotifyStore
from k8stars.services.notify.queue import DEFAULT_CAPACITY, NotifyImp, NotifyQueue, NotifySink
from k8stars.services.notify.sqlstore import SqlNotifyStore
from k8stars.tars.endpoint import Endpoint
from k8stars.tars.rpc import AdapterConfig, Application
from k8stars.tars.rpc.application import AdminServant, ServerSettings

log = logging.getLogger("k8stars.services.notify")

SERVER = "tarsnotify"
NOTIFY_OBJ = "tars.tarsnotify.NotifyObj"
DEFAULT_ENDPOINT = "tcp -h 127.0.0.1 -p 10002 -t 60000"  # NotifyObj's port in a classic TARS install
STOP_FLUSH_TIMEOUT = 3.0  # seconds to write what is still queued at stop


class NotifyServiceError(ValueError):
    """An option that cannot work; the message names it."""


@dataclass
class NotifyServiceOptions(StoreServiceOptions):
    endpoint: str = DEFAULT_ENDPOINT
    queue_size: int = DEFAULT_CAPACITY

    error: ClassVar[type[ValueError]] = NotifyServiceError
    namespace_env: ClassVar[str] = "K8STARS_NOTIFY_NAMESPACE"

    def check(self) -> None:
        super().check()
        if self.queue_size < 1:
            raise NotifyServiceError(f"--queue-size {self.queue_size}: must be at least 1")


def open_store(options: NotifyServiceOptions) -> NotifySink:
    """The (unopened) store the options name."""
    if options.store_kind == "kubernetes":
        return KubernetesNotifyStore(options.namespace, options.kubeconfig)
    return SqlNotifyStore(options.store_kind, data_dir=options.data_dir, dsn=options.dsn)


class NotifyService:
    """Store, queue, NotifyObj + AdminObj listener and self-registration, started and stopped as one."""

    def __init__(self, options: NotifyServiceOptions, store: NotifySink | None = None) -> None:
        options.check()
        self.options = options
        self.store = store or open_store(options)
        self.queue = NotifyQueue(self.store, options.queue_size)
        adapter = AdapterConfig(NOTIFY_OBJ + "Adapter", options.parsed_endpoint(), NOTIFY_OBJ, max_conns=100000)
        settings = ServerSettings(app=APPLICATION, server=SERVER, log_level=options.log_level, adapters=[adapter])
        self.app = Application(settings)
        self.app.register_admin_command("tars.notifystat", self._stat, "the notify service's counters")
        self.stopping = self.app.stopping  # AdminObj.shutdown ends run() too
        self._registrations: Registrations | None = None

    def _stat(self, _command: str, _params: str) -> str:
        return f"{self.store.kind} store {self.store.where}: {self.queue.counters}, queued {self.queue.pending}"

    @property
    def endpoint(self) -> Endpoint:
        return self.app.adapter_endpoint(NOTIFY_OBJ)

    @property
    def node(self) -> str:
        return node_address(self.options.node_name, self.endpoint)

    async def start(self) -> None:
        await self.store.open()
        try:
            self.queue.start()
            adapter = self.app.server.adapters[NOTIFY_OBJ + "Adapter"]
            adapter.add_servant(NOTIFY_OBJ, NotifyImp(self.queue))
            adapter.add_servant("AdminObj", AdminServant(self.app))
            await self.app.start()
            if self.options.locator:
                self._registrations = Registrations(self.options.locator)
                self._registrations.add(SERVER, NOTIFY_OBJ, self.node, self.endpoint)
        except BaseException:
            await self.stop()
            raise
        registered = f", registering as {self.node} through {self.options.locator}" if self.options.locator else ""
        log.info("notify %s: %s@%s, %s store %s%s", __version__, NOTIFY_OBJ, self.endpoint, self.store.kind,
                 self.store.where, registered)  # fmt: skip

    async def stop(self) -> None:
        if self._registrations is not None:
            await self._registrations.close()
            self._registrations = None
        await self.app.stop()
        await self.queue.stop(STOP_FLUSH_TIMEOUT)
        log.info("notify: %s", self.queue.counters)
        await self.store.close()

    async def run(self) -> None:
        """Serve until SIGTERM, SIGINT or AdminObj.shutdown, then stop (deregistering)."""
        await run_service(self)


async def serve(
    *,
    namespace: str | None,
    endpoint: str = DEFAULT_ENDPOINT,
    locator: str | None = None,
    node_name: str | None = None,
    kubeconfig: str | None = None,
    log_level: str = "INFO",
    store: str | None = None,
    data_dir: str | None = None,
    dsn: str | None = None,
    queue_size: int = DEFAULT_CAPACITY,
) -> None:
    """Run the notify service until stopped (what ``k8stars notify`` does). NotifyServiceError for bad options."""
    setup_logging(log_level)
    options = NotifyServiceOptions.from_cli(
        namespace=namespace,
        endpoint=endpoint,
        locator=locator,
        node_name=node_name,
        kubeconfig=kubeconfig,
        log_level=log_level,
        store=store,
        data_dir=data_dir,
        dsn=dsn,
        queue_size=queue_size,
    )
    await NotifyService(options).run()
