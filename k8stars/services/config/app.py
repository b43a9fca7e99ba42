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

from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import ClassVar

from k8stars.service.options import ServiceError, StoreServiceOptions
from k8stars.service.tars import TarsService, tars_adapter
from k8stars.services.config.classic import ClassicConfigImp
from k8stars.services.config.servant import ConfigImp
from k8stars.services.config.sqlstore import SqlConfigStore
from k8stars.services.config.store import KubernetesConfigStore
from k8stars.tars.endpoint import Endpoint
from k8stars.tars.rpc import AdapterConfig

SERVER = "tarsconfig"
CONFIG_OBJ = "tars.tarsconfig.ConfigObj"
DEFAULT_ENDPOINT = "tcp -h 127.0.0.1 -p 10001 -t 60000"  # ConfigObj's port in a classic TARS install


class ConfigServiceError(ServiceError):
    """An option that cannot work; the message names it."""


@dataclass(kw_only=True)
class ConfigServiceOptions(StoreServiceOptions):
    endpoint: str = DEFAULT_ENDPOINT

    error: ClassVar[type[ServiceError]] = ConfigServiceError
    namespace_env: ClassVar[str] = "K8STARS_CONFIG_NAMESPACE"


class ConfigService(TarsService[ConfigServiceOptions]):
    """Store, ConfigObj + AdminObj listener and self-registration, started and stopped as one."""

    name, server = "config", SERVER

    def __init__(
        self, options: ConfigServiceOptions, store: KubernetesConfigStore | SqlConfigStore | None = None
    ) -> None:
        super().__init__(options)
        self.store = store or open_store(options)

    def adapters(self) -> list[AdapterConfig]:
        return [tars_adapter(CONFIG_OBJ, self.options.parsed_endpoint())]

    @property
    def endpoint(self) -> Endpoint:
        return self.app.adapter_endpoint(CONFIG_OBJ)

    async def open(self, parts: AsyncExitStack) -> None:
        await self.store.open()
        parts.push_async_callback(self.store.close)
        servant = ClassicConfigImp(self.store) if isinstance(self.store, SqlConfigStore) else ConfigImp(self.store)
        self.adapter(CONFIG_OBJ).add_servant(CONFIG_OBJ, servant)
        await self.start_tars(parts)
        self.register(parts, self.options.locator, (SERVER, CONFIG_OBJ))

    def describe(self) -> str:
        if isinstance(self.store, SqlConfigStore):
            return f"{CONFIG_OBJ}@{self.endpoint}, {self.store.kind} store {self.store.where}"
        return f"{CONFIG_OBJ}@{self.endpoint}, namespace {self.options.namespace}"


def open_store(options: ConfigServiceOptions) -> KubernetesConfigStore | SqlConfigStore:
    """The (unopened) store the options name."""
    if options.store_kind == "kubernetes":
        return KubernetesConfigStore(options.namespace, options.kubeconfig)
    return SqlConfigStore(options.store_kind, data_dir=options.data_dir, dsn=options.dsn)
