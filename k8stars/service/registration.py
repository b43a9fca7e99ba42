"""Registering a service's TARS servants with the registry as the servers they stand for: K8STARS ``onStartup``
(retried until the registry answers: it may start after us), then ``keepAlive`` every 10 s (``onStartup`` again when
the registry has forgotten us), ``onPrestop`` when stopping."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from k8stars import __version__
from k8stars.service.lifecycle import cancel
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


def node_address(node_name: str, host: str) -> str:
    """The address registered for a listener on ``host``: the given node name, else the host, else (a wildcard)
    this machine's."""
    return node_name or (local_ip() if host in WILDCARDS else host)


class Registration:
    """The servants of server ``tars.<server>`` on one node, registered together (an onStartup names every adapter
    of the server: one per servant would replace the others)."""

    def __init__(self, registry: tarsregistryProxy, server: str, servant: str, node: str, ep: Endpoint) -> None:
        self.registry, self.server, self.node = registry, server, node
        self.servants: list[tuple[str, Endpoint]] = [(servant, ep)]
        self.task: asyncio.Task[None] | None = None
        self.changed = False  # a servant added after the onStartup: send it again

    @property
    def servant(self) -> str:
        return ", ".join(name for name, _ in self.servants)

    def add(self, servant: str, ep: Endpoint) -> None:
        self.servants.append((servant, ep))
        self.changed = True

    def start(self) -> None:
        self.task = asyncio.create_task(self._loop(), name=f"{self.server}-registration")

    def _startup(self) -> onStartupReq:
        adapters = [AdapterConf(name, f"tcp -h {self.node} -p {ep.port} -t {ep.timeout or 60000}", "tars", 100000, 1,
                                10000, 60000) for name, ep in self.servants]  # fmt: skip
        return onStartupReq(self.node, APPLICATION, self.server, adapters=adapters, State="active",
                            Version=__version__)  # fmt: skip

    async def _loop(self) -> None:
        registered = False
        while True:
            try:
                if not registered or self.changed:
                    self.changed = False
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
            await cancel(self.task)
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
        for reg in self.items:
            if reg.server == server and reg.node == node:
                reg.add(servant, ep)
                return
        reg = Registration(self.registry, server, servant, node, ep)
        reg.start()
        self.items.append(reg)

    async def close(self) -> None:
        await asyncio.gather(*(r.stop() for r in self.items))
        self.items = []
        await self.comm.close()
