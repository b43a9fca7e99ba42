"""``k8stars adminreg``: the admin registry as a process.

One listener (``--endpoint``) serves ``tars.tarsAdminRegistry.AdminRegObj`` and ``AdminObj``. With ``--namespace``
it finds pods and TAccounts there through the Kubernetes API (``--kubeconfig``, else in-cluster); without it (``k8stars
up``) nodeName is a pod IP and the auth checks answer -1. With ``--locator`` it registers itself as application
``tars``, server ``tarsAdminRegistry``: consoles find it by name, and the pods' node servants trust the hosts the
registry lists for it.
"""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import ClassVar

from k8stars.kube.client import Kube
from k8stars.kube.meta import NODE_SERVANT_PORT
from k8stars.service.options import ServiceError, TarsServiceOptions
from k8stars.service.tars import TarsService, tars_adapter
from k8stars.services.adminreg.auth import Accounts
from k8stars.services.adminreg.pods import PodDirectory
from k8stars.services.adminreg.servant import AdminRegImp
from k8stars.tars.endpoint import Endpoint
from k8stars.tars.networks import Network, parse_networks
from k8stars.tars.rpc import AdapterConfig, Communicator

log = logging.getLogger("k8stars.services.adminreg")

SERVER = "tarsAdminRegistry"
ADMINREG_OBJ = "tars.tarsAdminRegistry.AdminRegObj"
DEFAULT_ENDPOINT = "tcp -h 127.0.0.1 -p 12000 -t 60000"  # AdminRegObj's port in a classic TARS install


class AdminRegServiceError(ServiceError):
    """An option that cannot work; the message names it."""


@dataclass(kw_only=True)
class AdminRegServiceOptions(TarsServiceOptions):
    endpoint: str = DEFAULT_ENDPOINT
    namespace: str = ""  # "": no Kubernetes (nodeName is a pod IP; no accounts)
    kubeconfig: str | None = None
    node_port: int = NODE_SERVANT_PORT
    trusted_peers: str = ""  # "": every caller (as K8SFramework); else the networks that may call AdminReg

    error: ClassVar[type[ServiceError]] = AdminRegServiceError

    def parsed_endpoint(self) -> Endpoint:
        return self.parse_endpoint("--endpoint", self.endpoint, tcp=True)

    def trusted(self) -> list[Network] | None:
        if not self.trusted_peers:
            return None
        try:
            return parse_networks(self.trusted_peers)
        except ValueError as e:
            raise self.error(f"--trusted-peers: {e}") from None

    def check(self) -> None:
        self.parsed_endpoint()
        self.trusted()
        self.check_port("--node-port", self.node_port, lowest=1)
        super().check()


class AdminRegService(TarsService[AdminRegServiceOptions]):
    """Kubernetes client, AdminRegObj + AdminObj listener and self-registration, started and stopped as one."""

    name, server = "adminreg", SERVER

    def __init__(self, options: AdminRegServiceOptions) -> None:
        super().__init__(options)
        self.kube: Kube | None = None

    def adapters(self) -> list[AdapterConfig]:
        return [tars_adapter(ADMINREG_OBJ, self.options.parsed_endpoint())]

    @property
    def endpoint(self) -> Endpoint:
        return self.app.adapter_endpoint(ADMINREG_OBJ)

    async def open(self, parts: AsyncExitStack) -> None:
        ns = self.options.namespace
        if ns:
            self.kube = await Kube.connect(self.options.kubeconfig, field_manager="k8stars-adminreg")
            parts.push_async_callback(self.kube.close)
        comm = Communicator()
        parts.push_async_callback(comm.close)
        servant = AdminRegImp(PodDirectory(self.kube, ns), Accounts(self.kube, ns), comm, self.options.node_port,
                              self.kube, ns, self.options.trusted())  # fmt: skip
        self.adapter(ADMINREG_OBJ).add_servant(ADMINREG_OBJ, servant)
        await self.start_tars(parts)
        self.register(parts, self.options.locator, (SERVER, ADMINREG_OBJ))

    def describe(self) -> str:
        where = f"pods and TAccounts of namespace {self.options.namespace}" if self.options.namespace else "pod IPs"
        return f"{ADMINREG_OBJ}@{self.endpoint}, {where}, node servants on port {self.options.node_port}"
