"""``k8stars registry``: the naming service as a process.

Listeners: ``--port`` serves ``tars.tarsregistry.QueryObj``; ``tars.tarsregistry.Registry`` and ``AdminObj`` (the
``clean`` command and the usual ``tars.*`` admin commands) share it, or move together to ``--registry-port`` so
the writing and admin side can be kept off the network clients use. ``--http-port`` serves /metrics and /http_sd.

The registry registers itself (application ``tars``, server ``tarsregistry``, node ``--node-name``) through the same
code path as every server, heartbeats, and deregisters when it stops, so QueryObj and Registry resolve by name and
every replica over one MySQL store is listed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from k8stars import __version__
from k8stars.paths import data_home
from k8stars.registry.http import start_http
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
from k8stars.tars.endpoint import Endpoint, local_ip
from k8stars.tars.protocol.tarsregistry import keepAliveReq
from k8stars.tars.rpc import AdapterConfig, Application
from k8stars.tars.rpc.application import AdminServant, ServerSettings
from k8stars.tars.rpc.server import Adapter

log = logging.getLogger("k8stars.registry")

APPLICATION, SERVER = "tars", "tarsregistry"
QUERY_OBJ = "tars.tarsregistry.QueryObj"
REGISTRY_OBJ = "tars.tarsregistry.Registry"
ADMIN_OBJ = "AdminObj"
IDLE_TIMEOUT_MS = 60000
CLEAN_HELP = "clean [dryRun] [datetime]: remove the servers of nodes inactive since datetime (default: 24 h ago)"
_WILDCARD = {"0.0.0.0", "*", "::", ""}


class ConfigError(ValueError):
    """An option that cannot work; the message names it."""


class StoreUnavailable(RuntimeError):
    """The store could not be opened (database down, bad credentials, unwritable data directory)."""


@dataclass
class RegistryConfig:
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
    node_name: str | None = None  # the address other processes reach this registry at
    poll_interval: float = 0.25

    def check(self) -> None:
        if self.heartbeat_timeout <= 0:
            raise ConfigError(f"--heartbeat-timeout must be > 0 (got {self.heartbeat_timeout})")
        if self.retention < 0:
            raise ConfigError(f"--retention must be >= 0 (got {self.retention})")
        for opt, port in (
            ("--port", self.port),
            ("--registry-port", self.registry_port),
            ("--http-port", self.http_port),
        ):
            if port is not None and not 0 <= port < 65536:
                raise ConfigError(f"{opt} {port} is not a port")
        if self.registry_port is not None and self.registry_port == self.port and self.port != 0:
            raise ConfigError("--registry-port must differ from --port (leave it out to share the listener)")

    @property
    def advertised(self) -> str:
        if self.node_name:
            return self.node_name
        return local_ip() if self.host in _WILDCARD else self.host

    def data_path(self) -> Path:
        return Path(self.data_dir) if self.data_dir else data_home()


class RegistryServer:
    """Store, cache, TARS listeners, HTTP, self-registration; started and stopped as one."""

    def __init__(self, config: RegistryConfig, store: Store | None = None) -> None:
        config.check()
        self.config = config
        self.store = store or _open_store(config)
        self.metrics = RegistryMetrics()
        self.service = RegistryService(
            self.store,
            heartbeat_timeout=config.heartbeat_timeout,
            retention=config.retention,
            poll_interval=config.poll_interval,
            metrics=self.metrics,
        )
        self.app = Application(self._settings())
        self.stopping = self.app.stopping  # AdminObj.shutdown ends run() too
        self.http_port: int | None = None
        self._http: web.AppRunner | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._own: Registration | None = None

    def _settings(self) -> ServerSettings:
        c = self.config

        def endpoint(port: int) -> Endpoint:
            return Endpoint.parse(f"tcp -h {c.host} -p {port} -t {IDLE_TIMEOUT_MS}")

        adapters = [AdapterConfig(QUERY_OBJ + "Adapter", endpoint(c.port), QUERY_OBJ, max_conns=100000)]
        if c.registry_port is not None:
            adapters.append(AdapterConfig(REGISTRY_OBJ + "Adapter", endpoint(c.registry_port), REGISTRY_OBJ))
        return ServerSettings(app=APPLICATION, server=SERVER, localip=c.advertised, log_level="INFO", adapters=adapters)

    @property
    def query_adapter(self) -> Adapter:
        return self.app.server.adapters[QUERY_OBJ + "Adapter"]

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
        return ServerKey(APPLICATION, SERVER, self.config.advertised)

    async def start(self) -> None:
        try:
            await self.service.start()
        except Exception as e:  # driver errors (pymysql, sqlite3, OSError) share no useful base
            raise StoreUnavailable(f"cannot open the {self.store.kind} store: {type(e).__name__}: {e}") from e
        try:
            query = QueryServant(self.service.lookup, self.metrics.lookups)
            self.query_adapter.add_servant(QUERY_OBJ, query, QueryDispatcher(query))
            self.registry_adapter.add_servant(REGISTRY_OBJ, RegistryServant(self.service))
            self.registry_adapter.add_servant(ADMIN_OBJ, AdminServant(self.app))
            self.app.register_admin_command("clean", lambda _cmd, params: self.service.clean(params), CLEAN_HELP)
            await self.app.start()
            if self.config.http_port:
                self._http, self.http_port = await start_http(self.service, self.config.host, self.config.http_port)
            await self._register_self()
        except BaseException:
            await self._shutdown()
            raise
        log.info(
            "registry %s: QueryObj on %s, Registry and AdminObj on %s, store %s%s",
            __version__, self.query_endpoint, self.registry_endpoint, self.store.kind,
            f", http on :{self.http_port}" if self.http_port else "",
        )  # fmt: skip

    async def _register_self(self) -> None:
        node = self.config.advertised
        self._own = registration(
            node, APPLICATION, SERVER, state=ACTIVE, version=__version__,
            adapters=[
                AdapterSpec(QUERY_OBJ, f"tcp -h {node} -p {self.query_endpoint.port} -t {IDLE_TIMEOUT_MS}", "tars",
                            100000, 1, 10000, 60000),
                AdapterSpec(REGISTRY_OBJ, f"tcp -h {node} -p {self.registry_endpoint.port} -t {IDLE_TIMEOUT_MS}",
                            "tars", 100000, 1, 10000, 60000),
            ],
        )  # fmt: skip
        await self.service.register(self._own)
        self._heartbeat = asyncio.create_task(self._heartbeat_loop(), name="registry-self-heartbeat")

    async def _heartbeat_loop(self) -> None:
        interval = min(10.0, self.config.heartbeat_timeout / 3)
        while True:
            await asyncio.sleep(interval)
            try:
                await self.service.keep_alive(keepAliveReq(self.key.node, ACTIVE, APPLICATION, SERVER))
            except RegistryError as e:
                if e.code == ERR_NOT_REGISTERED and self._own is not None:  # cleaned while we were away
                    await _quietly(self.service.register(self._own))
            except Exception as e:
                log.warning("own heartbeat failed: %s", e)

    async def stop(self) -> None:
        if self._own is not None:
            await _quietly(self.service.store.deregister(self.key, self.service.clock()))
            self._own = None
        await self._shutdown()

    async def _shutdown(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        if self._http is not None:
            await self._http.cleanup()
            self._http = None
        await self.app.stop()
        await self.service.stop()

    async def run(self) -> None:
        """Serve until SIGTERM, SIGINT or AdminObj.shutdown, then stop (deregistering this replica)."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):  # before starting: a stop during start-up is still clean
            try:
                loop.add_signal_handler(sig, self.stopping.set)
            except (NotImplementedError, RuntimeError):
                pass
        await self.start()
        try:
            await self.stopping.wait()
        finally:
            await self.stop()


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


async def serve(
    *,
    host: str = "127.0.0.1",
    port: int = 17890,
    registry_port: int | None = None,
    store: str = "sqlite",
    data_dir: str | None = None,
    dsn: str | None = None,
    heartbeat_timeout: float = 60.0,
    retention: float = 3600.0,
    http_port: int = 9325,
    node_name: str | None = None,
    kubeconfig: str | None = None,
    namespace: str | None = None,
) -> None:
    """Run the registry until stopped (what ``k8stars registry`` does). ConfigError for unusable options."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = RegistryConfig(
        host=host, port=port, registry_port=registry_port, store=store, data_dir=data_dir, dsn=dsn,
        heartbeat_timeout=heartbeat_timeout, retention=retention, http_port=http_port,
        node_name=node_name or os.environ.get("POD_IP") or None,
        kubeconfig=kubeconfig.split(os.pathsep)[0] if kubeconfig else None, namespace=namespace,
    )  # fmt: skip
    await RegistryServer(config).run()
