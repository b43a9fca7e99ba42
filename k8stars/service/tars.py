"""The TARS side of a service: one Application (its adapters, AdminObj with the ``tars.*`` commands) whose
AdminObj.shutdown stops the service, and the registration of its servants with the registry.

AdminObj listens on the loopback ``--admin-endpoint`` only (TARS's ``local`` adapter), never on a public port:
whoever reaches a service's servants must not be able to stop it (issue 16, item 2)."""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack

from k8stars.service.lifecycle import OptionsT, Service
from k8stars.service.registration import APPLICATION, Registrations, node_address
from k8stars.tars.endpoint import Endpoint
from k8stars.tars.rpc import AdapterConfig, Application
from k8stars.tars.rpc.application import ServerSettings
from k8stars.tars.rpc.server import Adapter

log = logging.getLogger("k8stars.services")

ADMIN_OBJ = "AdminObj"  # served by the Application on ServerSettings.local
MAX_CONNS = 100000  # a framework service is called by every server


def tars_adapter(servant: str, endpoint: Endpoint, max_conns: int = MAX_CONNS) -> AdapterConfig:
    """The adapter ``<servant>Adapter`` serving ``servant`` on ``endpoint``."""
    return AdapterConfig(servant + "Adapter", endpoint, servant, max_conns=max_conns)


class TarsService(Service[OptionsT]):
    """A service of TARS servants, server ``tars.<server>``. A subclass lists its adapters (:meth:`adapters`, from
    the checked options), adds its servants to them in ``open`` and calls :meth:`start_tars`, then
    :meth:`register`. AdminObj is on ``options.admin_endpoint`` (loopback)."""

    server = ""

    def __init__(self, options: OptionsT) -> None:
        super().__init__(options)
        self.app = Application(self.server_settings())
        self.stopping = self.app.stopping  # AdminObj.shutdown stops the service too

    def adapters(self) -> list[AdapterConfig]:
        raise NotImplementedError

    def server_settings(self) -> ServerSettings:
        if self.options.processes < 1:
            raise self.options.error(f"--processes {self.options.processes}: give a number >= 1, or max")
        return ServerSettings(app=APPLICATION, server=self.server, log_level=self.options.log_level,
                              local=str(self.options.parsed_admin_endpoint()), adapters=self.adapters(),
                              processes=self.options.processes)  # fmt: skip

    @property
    def is_copy(self) -> bool:
        """One of the other processes of a service run with ``--processes``: it serves the adapters only (no
        AdminObj, registration or HTTP listener: those are the first process's)."""
        return self.app.server.is_copy

    def adapter(self, servant: str) -> Adapter:
        return self.app.server.adapters[servant + "Adapter"]

    @property
    def admin_endpoint(self) -> Endpoint:
        """Where AdminObj listens (its port once started)."""
        return self.app.adapter_endpoint(ADMIN_OBJ)

    async def start_tars(self, parts: AsyncExitStack) -> None:
        """Listen until ``parts`` close."""
        parts.push_async_callback(self.app.stop)  # before start: a second adapter failing closes the first
        await self.app.start()
        if not self.is_copy:
            log.info("AdminObj on %s (loopback only)", self.admin_endpoint)

    def register(self, parts: AsyncExitStack, locator: str, *servers: tuple[str, str]) -> None:
        """With a locator, each (server, servant) registered with the registry until ``parts`` close (deregistered
        first: the listeners it advertises close after it)."""
        if not locator or self.is_copy:
            return
        registrations = Registrations(locator)
        parts.push_async_callback(registrations.close)
        for server, servant in servers:
            ep = self.app.adapter_endpoint(servant)
            node = node_address(self.options.node_name, ep.host)
            registrations.add(server, servant, node, ep)
            log.info("registering %s as %s through %s", servant, node, locator)
