"""``k8stars registry``: the naming service as a process.

Listeners: ``--port`` serves ``tars.tarsregistry.QueryObj``; ``tars.tarsregistry.Registry`` shares it, or moves to
``--registry-port`` so the writing side can be kept off the network clients use; ``AdminObj`` (the ``clean``
command and the usual ``tars.*`` admin commands) is on the loopback ``--admin-endpoint`` only. Registry writes are
accepted for the caller's own node, or from ``--trusted-peers`` (callers.py). ``--http-port`` serves /metrics and
/http_sd.

The registry registers itself (application ``tars``, server ``tarsregistry``, node ``--node-name``) through the same
code path as every server, heartbeats, and deregisters when it stops, so QueryObj and Registry resolve by name and
every replica over one MySQL store is listed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from contextlib import AsyncExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import ClassVar

from k8stars import __version__
from k8stars.paths import data_home
from k8stars.registry.callers import DEFAULT_TRUSTED, CallerPolicy, parse_networks
from k8stars.registry.http import http_app
from k8stars.registry.metrics import RegistryMetrics
from k8stars.registry.model import (
    ACTIVE,
    ERR_NOT_REGISTERED,
    AdapterSpec,
    Registration,
    RegistryError,
    ServerKey,
    registration,
)
from k8stars.registry.query import QueryDispatcher, QueryServant
from k8stars.registry.servants import RegistryServant
from k8stars.registry.service import RegistryService
from k8stars.registry.store import Store, open_store
from k8stars.service.http import serve_http
from k8stars.service.lifecycle import cancel
from k8stars.service.options import ServiceError, ServiceOptions
from k8stars.service.registration import APPLICATION, node_address
from k8stars.service.tars import TarsService, tars_adapter
from k8stars.tars.endpoint import Endpoint
from k8stars.tars.protocol.tarsregistry import keepAliveReq
from k8stars.tars.rpc import AdapterConfig
from k8stars.tars.rpc.application import ServerSettings
from k8stars.tars.rpc.server import Adapter

log = logging.getLogger("k8stars.registry")

SERVER = "tarsregistry"
QUERY_OBJ = "tars.tarsregistry.QueryObj"
REGISTRY_OBJ = "tars.tarsregistry.Registry"
IDLE_TIMEOUT_MS = 60000
CLEAN_HELP = "clean [dryRun] [datetime]: remove the servers of nodes inactive since datetime (default: 24 h ago)"


class ConfigError(ServiceError):
    """An option that cannot work; the message names it."""


class StoreUnavailable(RuntimeError):
    """The store could not be opened (database down, bad credentials, unwritable data directory)."""


@dataclass(kw_only=True)
class RegistryConfig(ServiceOptions):
    host: str = "127.0.0.1"
    port: int = 17890
    registry_port: int | None = None
    store: str = "sqlite"
    data_dir: str | None = None
    dsn: str | None = None
    kubeconfig: str | None = None  # --store kubernetes
    namespace: str | None = None  # --store kubernetes: one namespace (None: all)
    heartbeat_timeout: float = 60.0
    retention: float = 3600.0
    http_port: int = 9325  # 0: no HTTP listener
    poll_interval: float = 0.25
    trusted_peers: str = DEFAULT_TRUSTED  # may write for any node; others only for their own address

    error: ClassVar[type[ServiceError]] = ConfigError

    def check(self) -> None:
        if self.heartbeat_timeout <= 0:
            raise ConfigError(f"--heartbeat-timeout must be > 0 (got {self.heartbeat_timeout})")
        if self.retention < 0:
            raise ConfigError(f"--retention must be >= 0 (got {self.retention})")
        for opt, port in (("--port", self.port), ("--registry-port", self.registry_port),
                          ("--http-port", self.http_port)):  # fmt: skip
            self.check_port(opt, port)
        if self.registry_port is not None and self.registry_port == self.port and self.port != 0:
            raise ConfigError("--registry-port must differ from --port (leave it out to share the listener)")
        self.trusted()
        self.parsed_admin_endpoint()

    def trusted(self) -> CallerPolicy:
        try:
            return CallerPolicy(parse_networks(self.trusted_peers))
        except ValueError as e:
            raise ConfigError(f"--trusted-peers: {e}") from None

    @property
    def advertised(self) -> str:
        """The address other processes reach this registry at (``node_name`` is the address of a replica)."""
        return node_address(self.node_name, self.host)

    def data_path(self) -> Path:
        return Path(self.data_dir) if self.data_dir else data_home()


class RegistryServer(TarsService[RegistryConfig]):
    """Store, cache, TARS listeners, HTTP, self-registration; started and stopped as one."""

    name, server = "registry", SERVER

    def __init__(self, config: RegistryConfig, store: Store | None = None) -> None:
        super().__init__(config)
        self.store = store or _open_store(config)
        self.metrics = RegistryMetrics()
        self.service = RegistryService(
            self.store,
            heartbeat_timeout=config.heartbeat_timeout,
            retention=config.retention,
            poll_interval=config.poll_interval,
            metrics=self.metrics,
        )
        self.http_port: int | None = None

    def adapters(self) -> list[AdapterConfig]:
        c = self.options

        def endpoint(port: int) -> Endpoint:
            return c.parse_endpoint("--host", f"tcp -h {c.host} -p {port} -t {IDLE_TIMEOUT_MS}")

        adapters = [tars_adapter(QUERY_OBJ, endpoint(c.port))]
        if c.registry_port is not None:
            adapters.append(AdapterConfig(REGISTRY_OBJ + "Adapter", endpoint(c.registry_port), REGISTRY_OBJ))
        return adapters

    def server_settings(self) -> ServerSettings:
        return replace(super().server_settings(), localip=self.options.advertised)

    @property
    def query_adapter(self) -> Adapter:
        return self.adapter(QUERY_OBJ)

    @property
    def registry_adapter(self) -> Adapter:
        return self.app.server.adapters.get(REGISTRY_OBJ + "Adapter", self.query_adapter)

    @property
    def query_endpoint(self) -> Endpoint:
        return self.query_adapter.endpoint

    @property
    def registry_endpoint(self) -> Endpoint:
        return self.registry_adapter.endpoint

    @property
    def key(self) -> ServerKey:
        return ServerKey(APPLICATION, SERVER, self.options.advertised)

    async def open(self, parts: AsyncExitStack) -> None:
        try:
            await self.service.start()
        except Exception as e:  # driver errors (pymysql, sqlite3, OSError) share no useful base
            raise StoreUnavailable(f"cannot open the {self.store.kind} store: {type(e).__name__}: {e}") from e
        parts.push_async_callback(self.service.stop)
        query = QueryServant(self.service.lookup, self.metrics.lookups)
        self.query_adapter.add_servant(QUERY_OBJ, query, QueryDispatcher(query))
        self.registry_adapter.add_servant(REGISTRY_OBJ, RegistryServant(self.service, self.options.trusted()))
        self.app.register_admin_command("clean", lambda _cmd, params: self.service.clean(params), CLEAN_HELP)
        await self.start_tars(parts)
        if self.is_copy:  # another process of --processes: a replica on the same ports (HTTP and its own
            return  # registration are the first process's)
        if self.options.http_port:
            self.http_port = await serve_http(parts, http_app(self.service), self.options.host, self.options.http_port)
        await self._register_self(parts)

    def describe(self) -> str:
        return (f"QueryObj on {self.query_endpoint}, Registry on {self.registry_endpoint}, AdminObj on "
                f"{self.admin_endpoint}, store "
                f"{self.store.kind}" + (f", http on :{self.http_port}" if self.http_port else ""))  # fmt: skip

    async def _register_self(self, parts: AsyncExitStack) -> None:
        """Through the same code path as every server (the registry is not its own client), heartbeating, and
        deregistered when it stops."""
        node = self.options.advertised
        own = registration(
            node, APPLICATION, SERVER, state=ACTIVE, version=__version__,
            adapters=[
                AdapterSpec(QUERY_OBJ, f"tcp -h {node} -p {self.query_endpoint.port} -t {IDLE_TIMEOUT_MS}", "tars",
                            100000, 1, 10000, 60000),
                AdapterSpec(REGISTRY_OBJ, f"tcp -h {node} -p {self.registry_endpoint.port} -t {IDLE_TIMEOUT_MS}",
                            "tars", 100000, 1, 10000, 60000),
            ],
        )  # fmt: skip
        await self.service.register(own)
        parts.push_async_callback(lambda: _quietly(self.service.store.deregister(self.key, self.service.clock())))
        heartbeat = asyncio.create_task(self._heartbeat_loop(own), name="registry-self-heartbeat")
        parts.push_async_callback(cancel, heartbeat)

    async def _heartbeat_loop(self, own: Registration) -> None:
        interval = min(10.0, self.options.heartbeat_timeout / 3)
        while True:
            await asyncio.sleep(interval)
            try:
                await self.service.keep_alive(keepAliveReq(self.key.node, ACTIVE, APPLICATION, SERVER))
            except RegistryError as e:
                if e.code == ERR_NOT_REGISTERED:  # cleaned while we were away
                    await _quietly(self.service.register(own))
            except Exception as e:
                log.warning("own heartbeat failed: %s", e)


async def _quietly(aw: Awaitable[object]) -> None:
    try:
        await aw
    except Exception as e:
        log.warning("%s", e)


def _open_store(config: RegistryConfig) -> Store:
    try:
        return open_store(
            config.store, data_dir=config.data_path(), dsn=config.dsn, kubeconfig=config.kubeconfig,
            namespace=config.namespace,
        )  # fmt: skip
    except ValueError as e:
        raise ConfigError(str(e)) from None
