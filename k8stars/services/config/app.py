"""``k8stars config``: the config service as a process.

The store is ``kubernetes`` (TConfigs of ``--namespace``, K8SFramework's semantics, ``servant``) or ``sqlite`` /
``mysql`` (the classic ``db_tars`` config tables, TarsFramework's semantics, ``classic``). Without ``--store`` it is
``kubernetes`` when a namespace is given (as every invocation before the SQL store had one) and ``sqlite`` otherwise.
One listener (``--endpoint``) serves ``tars.tarsconfig.ConfigObj`` and ``AdminObj`` (the usual ``tars.*``
commands). With ``--locator`` the service registers itself with the registry as application ``tars``, server
``tarsconfig`` (K8STARS ``onStartup`` to ``tars.tarsregistry.Registry``, found through the locator, then
``keepAlive`` every 10 s and ``onPrestop`` when it stops), so that every server's ``config=tars.tarsconfig.ConfigObj``
resolves by name through QueryF.
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
from k8stars.services.config.classic import ClassicConfigImp
from k8stars.services.config.servant import ConfigImp
from k8stars.services.config.sqlstore import SqlConfigStore
from k8stars.services.config.store import KubernetesConfigStore
from k8stars.tars.endpoint import Endpoint
from k8stars.tars.rpc import AdapterConfig, Application
from k8stars.tars.rpc.application import AdminServant, ServerSettings

log = logging.getLogger("k8stars.services.config")

SERVER = "tarsconfig"
CONFIG_OBJ = "tars.tarsconfig.ConfigObj"
DEFAULT_ENDPOINT = "tcp -h 127.0.0.1 -p 10001 -t 60000"  # ConfigObj's port in a classic TARS install


class ConfigServiceError(ValueError):
    """An option that cannot work; the message names it."""


@dataclass
class ConfigServiceOptions(StoreServiceOptions):
    endpoint: str = DEFAULT_ENDPOINT

    error: ClassVar[type[ValueError]] = ConfigServiceError
    namespace_env: ClassVar[str] = "K8STARS_CONFIG_NAMESPACE"


class ConfigService:
    """Store, ConfigObj + AdminObj listener and self-registration, started and stopped as one."""

    def __init__(
        self, options: ConfigServiceOptions, store: KubernetesConfigStore | SqlConfigStore | None = None
    ) -> None:
        options.check()
        self.options = options
        self.store = store or open_store(options)
        ep = options.parsed_endpoint()
        adapter = AdapterConfig(CONFIG_OBJ + "Adapter", ep, CONFIG_OBJ, max_conns=100000)
        settings = ServerSettings(app=APPLICATION, server=SERVER, log_level=options.log_level, adapters=[adapter])
        self.app = Application(settings)
        self.stopping = self.app.stopping  # AdminObj.shutdown ends run() too
        self._registrations: Registrations | None = None

    @property
    def endpoint(self) -> Endpoint:
        return self.app.adapter_endpoint(CONFIG_OBJ)

    @property
    def node(self) -> str:
        return node_address(self.options.node_name, self.endpoint)

    async def start(self) -> None:
        await self.store.open()
        try:
            adapter = self.app.server.adapters[CONFIG_OBJ + "Adapter"]
            servant = ClassicConfigImp(self.store) if isinstance(self.store, SqlConfigStore) else ConfigImp(self.store)
            adapter.add_servant(CONFIG_OBJ, servant)
            adapter.add_servant("AdminObj", AdminServant(self.app))
            await self.app.start()
            if self.options.locator:
                self._registrations = Registrations(self.options.locator)
                self._registrations.add(SERVER, CONFIG_OBJ, self.node, self.endpoint)
        except BaseException:
            await self.stop()
            raise
        registered = f", registering as {self.node} through {self.options.locator}" if self.options.locator else ""
        log.info("config %s: %s@%s, %s%s", __version__, CONFIG_OBJ, self.endpoint, self.source, registered)

    @property
    def source(self) -> str:
        if isinstance(self.store, SqlConfigStore):
            return f"{self.store.kind} store {self.store.where}"
        return f"namespace {self.options.namespace}"

    async def stop(self) -> None:
        if self._registrations is not None:
            await self._registrations.close()
            self._registrations = None
        await self.app.stop()
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
) -> None:
    """Run the config service until stopped (what ``k8stars config`` does). ConfigServiceError for bad options."""
    setup_logging(log_level)
    options = ConfigServiceOptions.from_cli(
        namespace=namespace,
        endpoint=endpoint,
        locator=locator,
        node_name=node_name,
        kubeconfig=kubeconfig,
        log_level=log_level,
        store=store,
        data_dir=data_dir,
        dsn=dsn,
    )
    await ConfigService(options).run()


def open_store(options: ConfigServiceOptions) -> KubernetesConfigStore | SqlConfigStore:
    """The (unopened) store the options name."""
    if options.store_kind == "kubernetes":
        return KubernetesConfigStore(options.namespace, options.kubeconfig)
    return SqlConfigStore(options.store_kind, data_dir=options.data_dir, dsn=options.dsn)
