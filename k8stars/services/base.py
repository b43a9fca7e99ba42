"""What every framework service shares: registering its servants with the registry as the TARS server they stand
for (K8STARS ``onStartup``, then ``keepAlive`` every 10 s, ``onPrestop`` when stopping), the address it registers,
and serving until SIGTERM, SIGINT or ``AdminObj.shutdown``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, Self

from k8stars import __version__
from k8stars.sql import parse_dsn
from k8stars.tars.endpoint import Endpoint, local_ip
from k8stars.tars.errors import TarsRpcError
from k8stars.tars.protocol.tarsregistry import AdapterConf, keepAliveReq, onPrestopReq, onStartupReq, tarsregistryProxy
from k8stars.tars.rpc import Communicator

log = logging.getLogger("k8stars.services")

APPLICATION = "tars"  # framework servers are tars.<server>
REGISTRY_OBJ = "tars.tarsregistry.Registry"
KEEPALIVE_INTERVAL = 10.0
RETRY_INTERVAL = 2.0
ERR_NOT_REGISTERED = 1002  # the registry's answer to a keepAlive it has no row for
WILDCARDS = frozenset({"0.0.0.0", "*", "::", ""})
STORES = ("kubernetes", "sqlite", "mysql")


@dataclass
class StoreServiceOptions:
    """A service over a store: ``kubernetes`` (a namespace's objects), or ``sqlite`` / ``mysql`` (a classic
    db_tars). Subclasses set ``error`` (the ValueError their CLI turns into exit 2) and ``namespace_env``."""

    namespace: str = ""
    endpoint: str = ""
    locator: str = ""  # the registry's QueryObj proxy; empty: no self-registration
    node_name: str = ""  # the address clients reach this service at (default: the endpoint's host)
    kubeconfig: str | None = None
    log_level: str = "INFO"
    store: str = ""  # kubernetes, sqlite or mysql; "": kubernetes with a namespace, else sqlite
    data_dir: str | None = None  # sqlite: the directory of its database file
    dsn: str | None = None  # mysql: mysql://user:pass@host:port/db_tars

    error: ClassVar[type[ValueError]] = ValueError
    namespace_env: ClassVar[str] = ""

    @classmethod
    def from_cli(cls, **given: Any) -> Self:
        """From the CLI's values: None means not given; KUBECONFIG may be a path list (its first file)."""
        opts = {k: v for k, v in given.items() if v is not None}
        if opts.get("kubeconfig"):
            opts["kubeconfig"] = str(opts["kubeconfig"]).split(":")[0]
        return cls(**opts)

    @property
    def store_kind(self) -> str:
        return self.store or ("kubernetes" if self.namespace else "sqlite")

    def parsed_endpoint(self) -> Endpoint:
        try:
            return Endpoint.parse(self.endpoint)
        except ValueError as e:
            raise self.error(f"--endpoint: {e}") from None

    def check(self) -> None:
        if self.store_kind not in STORES:
            raise self.error(f"--store {self.store_kind!r}: expected one of {', '.join(STORES)}")
        if self.store_kind == "kubernetes" and not self.namespace:
            raise self.error(f"--namespace is required with --store kubernetes (env {self.namespace_env} or "
                             "POD_NAMESPACE)")  # fmt: skip
        if self.store_kind == "mysql":
            if not self.dsn:
                raise self.error("--store mysql needs --dsn mysql://user:pass@host:port/db_tars")
            try:
                parse_dsn(self.dsn)
            except ValueError as e:
                raise self.error(f"--dsn: {e}") from None
        self.parsed_endpoint()
        if self.locator and "@" not in self.locator:
            raise self.error(f"--locator {self.locator!r}: expected tars.tarsregistry.QueryObj@tcp -h HOST -p PORT")


def setup_logging(level: str) -> None:
    """The service's own log on stderr (stdout may carry data, as `k8stars log --stdout` does), unless the
    embedding program configured logging already."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                            stream=sys.stderr)  # fmt: skip


def node_address(node_name: str, endpoint: Endpoint) -> str:
    """The address registered for a listener: the given node name, else its host, else (a wildcard) this host's."""
    return node_name or (local_ip() if endpoint.host in WILDCARDS else endpoint.host)


class Registration:
    """One servant registered as server ``tars.<server>``: onStartup until it works (the registry may start after
    us), then keepAlive; onStartup again when the registry has forgotten us."""

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
            await asyncio.sleep(KEEPALIVE_INTERVAL if registered else RETRY_INTERVAL)

    async def stop(self) -> None:
        """Stop the keepAlives and deregister (best effort: the registry may be gone)."""
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            self.task = None
        with contextlib.suppress(Exception):
            await self.registry.tars_options(timeout_ms=1000).onPrestop(
                onPrestopReq(self.node, APPLICATION, self.server)
            )


class Registrations:
    """The registrations of one process, through one communicator to the locator."""

    def __init__(self, locator: str) -> None:
        self.comm = Communicator(locator=locator)
        self.registry = self.comm.string_to_proxy(tarsregistryProxy, REGISTRY_OBJ)
        self.items: list[Registration] = []

    def add(self, server: str, servant: str, node: str, ep: Endpoint) -> None:
        reg = Registration(self.registry, server, servant, node, ep)
        reg.start()
        self.items.append(reg)

    async def close(self) -> None:
        await asyncio.gather(*(r.stop() for r in self.items))
        self.items = []
        await self.comm.close()


class Service(Protocol):
    stopping: asyncio.Event

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


async def run_service(service: Service) -> None:
    """Start, serve until SIGTERM, SIGINT or AdminObj.shutdown (``stopping``), then stop (deregistering)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, service.stopping.set)
    await service.start()
    try:
        await service.stopping.wait()
    finally:
        await service.stop()
