"""K8SFramework's node servant, ``tars.tarsnode.NodeObj`` (interface ``Node``), served by the supervisor on the pod
IP at port 19385 (the port TServers may not use): the admin registry (``k8stars adminreg``) forwards server commands
to it, and it acts on the server this pod runs: start, stop, restart, AdminObj ``notify``, and ``addFile`` (a config
file fetched from the config service into the server's ``bin/``).

Only trusted callers may use it: ``TARS_NODE_TRUSTED_PEERS`` (loopback by default: the pod itself; the networks the
operator trusts), and the hosts the registry lists for ``tars.tarsAdminRegistry.AdminRegObj`` (an admin registry
registers from its own pod IP: the registry refuses a registration for another address). Others get 1006
(``EM_TARS_INVALID_IP_ERR``) and nothing is done. A stop holds the server stopped (no restart after its exit) until
a start or restart, as K8SFramework's node keeps its setting state.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Protocol

from k8stars.tars.endpoint import parse_proxy
from k8stars.tars.networks import LOOPBACK, Network, in_networks, parse_networks, peer_address
from k8stars.tars.protocol.adminreg import tarsErrCode
from k8stars.tars.protocol.configf import ConfigInfo
from k8stars.tars.protocol.node import (
    Node_addFile_result,
    Node_notifyServer_result,
    Node_restartServer_result,
    Node_startServer_result,
    Node_stopServer_result,
    NodeServant,
)
from k8stars.tars.rpc import current
from k8stars.tars.rpc.application import ConfigLoadError, fetch_config
from k8stars.tarscli.framework import Framework, FrameworkError

log = logging.getLogger("tarscli")

NODE_SERVANT_OBJ = "tars.tarsnode.NodeObj"
NODE_SERVANT_PORT = 19385  # K8SFramework's; the operator refuses it for a TServer's servants
TRUSTED_ENV = "TARS_NODE_TRUSTED_PEERS"
ADMINREG_OBJ = "tars.tarsAdminRegistry.AdminRegObj"
NOTIFY_TIMEOUT_MS = 30000  # K8SFramework's node gives AdminObj 30 s too
REFRESH_EVERY = 1.0  # an unknown caller makes the agent ask the registry again at most this often
FAILED = -1  # the node's own failures (K8SFramework's node answers -1 with a reason)


class Supervised(Protocol):
    """What the node servant needs of the supervisor."""

    fw: Framework | None

    def service_running(self) -> bool: ...
    def deactivating(self) -> bool: ...
    async def stop_service(self) -> None: ...
    def hold(self, restart: bool) -> None: ...
    def release(self) -> None: ...
    def config_target(self) -> tuple[ConfigInfo, str, Path]: ...


class CallerGate:
    """Whether a caller may command this pod's server: trusted networks, or an admin registry's registered host."""

    def __init__(self, trusted: list[Network], fw: Framework | None) -> None:
        self.trusted = trusted
        self.fw = fw
        self.asked = 0.0
        self.refused = 0

    async def allows(self, peer: str) -> bool:
        if not peer or in_networks(peer, self.trusted):
            return True
        if peer_address(peer) is None or self.fw is None:
            return False
        if peer_address(peer) in await self._admin_registries(False):
            return True
        if time.monotonic() - self.asked < REFRESH_EVERY:
            return False
        return peer_address(peer) in await self._admin_registries(True)

    async def _admin_registries(self, fresh: bool) -> set[object]:
        assert self.fw is not None
        if fresh:
            self.asked = time.monotonic()
            self.fw.forget(ADMINREG_OBJ)
        try:
            _, endpoints = parse_proxy(await self.fw.resolve(ADMINREG_OBJ))
        except (FrameworkError, ValueError) as e:
            log.debug("node servant: no admin registry known (%s)", e)
            return set()
        return {peer_address(ep.host) for ep in endpoints}


class NodeImp(NodeServant):
    """The ``Node`` interface over the supervisor; one command at a time."""

    def __init__(self, app: str, server: str, supervised: Supervised, gate: CallerGate) -> None:
        self.app = app
        self.server = server
        self.supervised = supervised
        self.gate = gate
        self.lock = asyncio.Lock()

    async def _refusal(self, func: str, app: str, server: str) -> tuple[int, str] | None:
        """Why this call is refused, as (tarsErrCode, result); None when it may go on."""
        peer = current().peer_host
        if not await self.gate.allows(peer):
            self.gate.refused += 1
            log.warning("node servant: %s from %s refused (not a trusted caller)", func, peer)
            return tarsErrCode.EM_TARS_INVALID_IP_ERR, f"{func} refused: {peer} is not a trusted caller of this node"
        if (app, server) != (self.app, self.server):
            return FAILED, f"server not exist: this node runs {self.app}.{self.server}, not {app}.{server}"
        if func != "notifyServer" and self.supervised.deactivating():
            return tarsErrCode.EM_TARS_SERVICE_STATE_ERR, "server is deactivating (the pod is stopping)"
        return None

    async def startServer(self, application: str, serverName: str) -> Node_startServer_result:
        if refused := await self._refusal("startServer", application, serverName):
            return Node_startServer_result(*refused)
        async with self.lock:
            if self.supervised.service_running():
                return Node_startServer_result(0, "server is already running")
            log.info("node servant: start requested")
            self.supervised.release()
            return Node_startServer_result(0, "server starting")

    async def stopServer(self, application: str, serverName: str) -> Node_stopServer_result:
        if refused := await self._refusal("stopServer", application, serverName):
            return Node_stopServer_result(*refused)
        async with self.lock:
            log.info("node servant: stop requested")
            self.supervised.hold(restart=False)
            if not self.supervised.service_running():
                return Node_stopServer_result(0, "server is not running; it stays stopped")
            await self.supervised.stop_service()
            return Node_stopServer_result(0, "server stopped")

    async def restartServer(self, application: str, serverName: str) -> Node_restartServer_result:
        if refused := await self._refusal("restartServer", application, serverName):
            return Node_restartServer_result(*refused)
        async with self.lock:
            log.info("node servant: restart requested")
            if self.supervised.service_running():
                self.supervised.hold(restart=True)
                await self.supervised.stop_service()
            else:
                self.supervised.release()
            return Node_restartServer_result(0, "server restarting")

    async def notifyServer(self, application: str, serverName: str, command: str) -> Node_notifyServer_result:
        if refused := await self._refusal("notifyServer", application, serverName):
            return Node_notifyServer_result(*refused)
        fw = self.supervised.fw
        if fw is None or not self.supervised.service_running():
            return Node_notifyServer_result(FAILED, "error: the server is not running")
        try:
            return Node_notifyServer_result(0, await fw.admin(NOTIFY_TIMEOUT_MS).notify(command))
        except Exception as e:  # no AdminObj, a timeout, an error reply: the caller gets the reason
            return Node_notifyServer_result(FAILED, f"error: AdminObj notify: {e}")

    async def addFile(self, application: str, serverName: str, file: str) -> Node_addFile_result:
        if refused := await self._refusal("addFile", application, serverName):
            return Node_addFile_result(*refused)
        if not file.strip():
            return Node_addFile_result(FAILED, "file is empty")
        info, config_obj, basepath = self.supervised.config_target()
        info.filename = Path(file.strip()).name if file.strip().startswith("/") else file.strip()
        fw = self.supervised.fw
        if fw is None:
            return Node_addFile_result(FAILED, "the node is not ready")
        try:
            proxy = await fw.resolve(config_obj)
            await fetch_config(fw.comm, proxy, info, basepath)
        except (FrameworkError, ConfigLoadError) as e:
            return Node_addFile_result(FAILED, str(e))
        return Node_addFile_result(0, f"{info.filename} written to {basepath}")


def trusted_networks(text: str) -> list[Network]:
    """``text`` (TARS_NODE_TRUSTED_PEERS: addresses or CIDRs, ``none``; empty: loopback); ValueError names a bad
    entry."""
    return parse_networks(text or LOOPBACK)
