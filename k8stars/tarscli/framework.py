"""tarscli's calls: the registry (onStartup/keepAlive/onPrestop), tarsnotify, and the service's own AdminObj.

Framework servants are found through the locator and cached in ``data/cache_<obj>`` (K8STARS's format: a proxy
string). A cache younger than 10 s is used as is; when the registry cannot be asked, an older cache is still used
(K8STARS gave up there). Every call has a short timeout: retrying is the caller's business, so that a registry that
is down can never stretch a pod's shutdown past its grace period.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TypeVar

from k8stars.tars.endpoint import Endpoint
from k8stars.tars.errors import TarsError
from k8stars.tars.protocol.adminf import AdminFProxy
from k8stars.tars.protocol.notifyf import NOTIFYLEVEL, NotifyProxy, ReportInfo, ReportType
from k8stars.tars.protocol.queryf import QueryFProxy
from k8stars.tars.protocol.tarsregistry import (
    AdapterConf,
    keepAliveReq,
    onPrestopReq,
    onStartupReq,
    tarsregistryProxy,
)
from k8stars.tars.rpc import Communicator, ServantProxy
from k8stars.tarscli.env import read_text, write_atomic
from k8stars.tarscli.meta import ServerInfo

log = logging.getLogger("tarscli")

REGISTRY_OBJ = "tars.tarsregistry.Registry"
CACHE_FRESH = 10.0  # seconds a resolved proxy is used without asking the registry again (K8STARS's value)
LOOKUP_TIMEOUT_MS = 1000
CALL_TIMEOUT_MS = 2000

P = TypeVar("P", bound=ServantProxy)


class FrameworkError(RuntimeError):
    """A framework call failed (servant not found, registry unreachable, call error)."""


class Framework:
    """The framework as seen from one pod, described by its server_info."""

    def __init__(self, info: ServerInfo, data_dir: Path, timeout_ms: int = CALL_TIMEOUT_MS) -> None:
        self.info = info
        self.data_dir = data_dir
        self.timeout_ms = timeout_ms
        self.comm = Communicator(node_name=info.local_ip, connect_timeout=timeout_ms)

    async def close(self) -> None:
        await self.comm.close()

    # -- resolution ---------------------------------------------------------------------------------------------
    def _cache(self, obj: str) -> Path:
        return self.data_dir / f"cache_{obj}"

    def forget(self, obj: str) -> None:
        """Drop the cached proxy of ``obj``: the next resolve asks the registry."""
        self._cache(obj).unlink(missing_ok=True)

    async def resolve(self, obj: str) -> str:
        """``obj@endpoints`` for a servant name (a string with ``@`` is already a proxy)."""
        if "@" in obj:
            return obj
        path = self._cache(obj)
        cached = (read_text(path) or "").strip()
        try:
            age = time.time() - path.stat().st_mtime if cached else 0.0
        except FileNotFoundError:
            cached, age = "", 0.0
        if cached and age < CACHE_FRESH:
            return cached
        try:
            locator = self.comm.string_to_proxy(QueryFProxy, self.info.conf.locator)
            res = await locator.tars_options(timeout_ms=LOOKUP_TIMEOUT_MS).findObjectByIdInSameGroup(obj)
        except (TarsError, ValueError, OSError) as e:
            if cached:
                log.info("registry lookup of %s failed (%s): using the cached %s (%.0f s old)", obj, e, cached, age)
                return cached
            raise FrameworkError(f"cannot resolve {obj}: {e}") from None
        eps = [Endpoint.from_endpointf(ep) for ep in res.activeEp]
        if not eps:
            raise FrameworkError(f"the registry has no active endpoint for {obj}")
        text = f"{obj}@" + ":".join(str(ep) for ep in eps)
        try:
            write_atomic(self._cache(obj), text + "\n")
        except OSError as e:
            log.debug("cannot write the cache of %s: %s", obj, e)
        return text

    async def proxy(self, cls: type[P], obj: str, timeout_ms: int | None = None) -> P:
        text = await self.resolve(obj)
        try:
            p = self.comm.string_to_proxy(cls, text)
        except ValueError as e:
            raise FrameworkError(f"bad proxy {text!r}: {e}") from None
        return p.tars_options(timeout_ms=timeout_ms or self.timeout_ms)

    # -- registry -------------------------------------------------------------------------------------------------
    async def on_startup(self, state: str, version: str, disable_flow: bool) -> None:
        c = self.info.conf
        adapters = [
            AdapterConf(
                servant=c.servant(a),
                endpoint=a.endpoint,
                protocol=a.protocol,
                maxConns=a.maxconns,
                threadNum=a.threads,
                queueCap=a.queuecap,
                queueTimeout=a.queuetimeout,
            )
            for a in c.adapters
        ]
        req = onStartupReq(
            nodeName=self.info.local_ip,
            application=c.application,
            server=c.server,
            setID=c.set_id,
            adapters=adapters,
            disableFlow=disable_flow,
            State=state,
            Version=version,
        )
        await self._call_registry("onStartup", req)

    async def keep_alive(self, state: str) -> None:
        c = self.info.conf
        await self._call_registry("keepAlive", keepAliveReq(self.info.local_ip, state, c.application, c.server))

    async def on_prestop(self, node_ip: str | None = None) -> None:
        c = self.info.conf
        await self._call_registry("onPrestop", onPrestopReq(node_ip or self.info.local_ip, c.application, c.server))

    async def _call_registry(self, func: str, req: object) -> None:
        try:
            registry = await self.proxy(tarsregistryProxy, REGISTRY_OBJ)
            await getattr(registry, func)(req)
        except (TarsError, OSError) as e:
            raise FrameworkError(f"registry {func}: {e}") from None

    # -- notify and admin -----------------------------------------------------------------------------------------
    async def report(self, message: str, level: NOTIFYLEVEL = NOTIFYLEVEL.NOTIFYNORMAL) -> None:
        c = self.info.conf
        info = ReportInfo(
            eType=ReportType.REPORT,
            sApp=c.application,
            sSet=c.set_id,
            sServer=c.server,
            sMessage=message,
            eLevel=level,
            sNodeName=self.info.local_ip,
        )
        try:
            notify = await self.proxy(NotifyProxy, c.notifyObj)
            await notify.reportNotifyInfo(info)
        except (TarsError, OSError) as e:
            raise FrameworkError(f"notify {c.notifyObj}: {e}") from None

    def admin(self, timeout_ms: int) -> AdminFProxy:
        proxy = self.comm.string_to_proxy(AdminFProxy, f"AdminObj@{self.info.conf.local}")
        return proxy.tars_options(timeout_ms=timeout_ms)
