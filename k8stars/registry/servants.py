"""``tars.tarsregistry.Registry``: K8STARS's registration interface, unchanged on the wire, over RegistryService."""

from __future__ import annotations

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


class RegistryServant(tarsregistryServant):
    """Failures answer with a business iRet (model.ERR_*) and a text that says what to fix."""

    def __init__(self, service: RegistryService) -> None:
        self.service = service

    async def onStartup(self, req: onStartupReq) -> None:
        await self.service.on_startup(req)

    async def onPrestop(self, req: onPrestopReq) -> None:
        await self.service.on_prestop(req)

    async def keepAlive(self, req: keepAliveReq) -> None:
        await self.service.keep_alive(req)

    async def registerMetrics(self, req: RegisterMetricsReq) -> None:
        await self.service.register_metrics(req.nodeName, req.application, req.server, req.metricsPort)

    async def getMetricsAdapters(self, req: GetMetricsAdaptersReq) -> tarsregistry_getMetricsAdapters_result:
        return tarsregistry_getMetricsAdapters_result(self.service.metrics_adapters(req.filter))
