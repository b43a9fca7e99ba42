"""``tars.tarsregistry.Registry``: K8STARS's registration interface, unchanged on the wire, over RegistryService."""

from __future__ import annotations

from k8stars.registry.callers import DEFAULT_TRUSTED, CallerPolicy, parse_networks
from k8stars.registry.service import RegistryService
from k8stars.tars.protocol.tarsregistry import (
    GetMetricsAdaptersReq,
    RegisterMetricsReq,
    keepAliveReq,
    onPrestopReq,
    onStartupReq,
    tarsregistry_getMetricsAdapters_result,
    tarsregistryServant,
)
from k8stars.tars.rpc.current import current


class RegistryServant(tarsregistryServant):
    """Failures answer with a business iRet (model.ERR_*, callers.ERR_FORBIDDEN) and a text that says what to fix.
    Every write names a node: ``policy`` lets only that node (or a trusted network) make it."""

    def __init__(self, service: RegistryService, policy: CallerPolicy | None = None) -> None:
        self.service = service
        self.policy = policy or CallerPolicy(parse_networks(DEFAULT_TRUSTED))

    def _allowed(self, method: str, node: str) -> None:
        self.policy.check(method, current().peer_host, node)

    async def onStartup(self, req: onStartupReq) -> None:
        self._allowed("onStartup", req.nodeName)
        await self.service.on_startup(req)

    async def onPrestop(self, req: onPrestopReq) -> None:
        self._allowed("onPrestop", req.nodeName)
        await self.service.on_prestop(req)

    async def keepAlive(self, req: keepAliveReq) -> None:
        self._allowed("keepAlive", req.nodeName)
        await self.service.keep_alive(req)

    async def registerMetrics(self, req: RegisterMetricsReq) -> None:
        self._allowed("registerMetrics", req.nodeName)
        await self.service.register_metrics(req.nodeName, req.application, req.server, req.metricsPort)

    async def getMetricsAdapters(self, req: GetMetricsAdaptersReq) -> tarsregistry_getMetricsAdapters_result:
        return tarsregistry_getMetricsAdapters_result(self.service.metrics_adapters(req.filter))
