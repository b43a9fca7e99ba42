"""``AdminReg``: server commands forwarded to the pods' node servants, K8SFramework's auth checks, plugins.

Return values are ``tarsErrCode``: 1007 for a bad parameter, 1001 when no pod of the server matches nodeName, 1002
when the node servant did not answer in time, 1012 when it cannot be reached, otherwise what the node servant answered
(0, or -1 with its reason; 1006 when it does not trust us). With several pods (nodeName empty) every pod gets the
command at once; the result has a line per pod (``<pod>: <result>``) and the return value is the first failure's.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable

from k8stars.kube.client import Kube, Obj
from k8stars.kube.resources import TPLUGIN
from k8stars.services.adminreg.auth import DEVELOPER_ROLES, OPERATOR_ROLES, Accounts, holds, is_admin
from k8stars.services.adminreg.pods import PodDirectory, Target
from k8stars.tars import untrusted
from k8stars.tars.errors import TARSINVOKETIMEOUT, TarsError, TarsRpcError
from k8stars.tars.networks import Network, in_networks
from k8stars.tars.protocol.adminreg import (
    AdminReg_checkTicket_result,
    AdminReg_hasAdminAuth_result,
    AdminReg_hasDevAuth_result,
    AdminReg_hasOpeAuth_result,
    AdminReg_notifyServer_result,
    AdminReg_pingNode_result,
    AdminReg_restartServer_result,
    AdminReg_startServer_result,
    AdminReg_stopServer_result,
    AdminRegServant,
    PluginConf,
    tarsErrCode,
)
from k8stars.tars.protocol.node import NodeProxy
from k8stars.tars.rpc import Communicator, current

log = logging.getLogger("k8stars.services.adminreg")

NODE_OBJ = "tars.tarsnode.NodeObj"
NODE_TIMEOUT_MS = 60000  # a stop waits for the server's shutdown (its deactivating timeout and a kill)
MAX_COMMAND = 64 * 1024
MAX_NODE = 253
Err = tarsErrCode
NodeCall = Callable[[NodeProxy], Awaitable[tuple[int, str]]]


class BadParameter(ValueError):
    """A parameter AdminReg refuses with 1007."""


def _names(app: str, server: str) -> None:
    try:
        untrusted.check_name("application", app, untrusted.MAX_APPLICATION)
        untrusted.check_name("serverName", server, untrusted.MAX_SERVER)
    except untrusted.BadName as e:
        raise BadParameter(str(e)) from None
    if not app or not server:
        raise BadParameter("application and serverName are required")


def plugin_object_name(conf: PluginConf) -> str:
    """The TPlugin's name: its obj (else name_en), lower case, other characters as '-'."""
    name = re.sub(r"[^a-z0-9.-]+", "-", (conf.obj or conf.name_en).lower()).strip("-.")
    return name[:253]


class AdminRegImp(AdminRegServant):
    def __init__(self, pods: PodDirectory, accounts: Accounts, comm: Communicator, node_port: int,
                 kube: Kube | None = None, namespace: str = "",
                 trusted: list[Network] | None = None) -> None:  # fmt: skip
        self.trusted = trusted  # None: every caller (K8SFramework's AdminReg trusts all)
        self.pods = pods
        self.accounts = accounts
        self.comm = comm
        self.node_port = node_port
        self.kube = kube
        self.namespace = namespace

    def _refused(self, what: str) -> str:
        """Why the caller may not call ``what`` (``--trusted-peers``), or ''."""
        peer = current().peer_host
        if self.trusted is None or not peer or in_networks(peer, self.trusted):
            return ""
        log.warning("%s from %s refused (not in --trusted-peers)", what, peer)
        return f"{what} refused: {peer} is not a trusted caller of the admin registry"

    # -- server commands ----------------------------------------------------------------------------------------------
    def _node(self, ip: str) -> NodeProxy:
        proxy = self.comm.string_to_proxy(NodeProxy, f"{NODE_OBJ}@tcp -h {ip} -p {self.node_port} -t 60000")
        return proxy.tars_options(timeout_ms=NODE_TIMEOUT_MS)

    async def _call_one(self, target: Target, call: NodeCall) -> tuple[int, str]:
        try:
            return await call(self._node(target.ip))
        except TarsRpcError as e:
            if e.code == TARSINVOKETIMEOUT:
                return Err.EM_TARS_CALL_NODE_TIMEOUT_ERR, f"the node servant of {target.name} did not answer: {e}"
            return Err.EM_TARS_NODE_NO_CONNECTION, f"cannot reach the node servant of {target.name}: {e}"
        except (TarsError, OSError) as e:
            return Err.EM_TARS_NODE_NO_CONNECTION, f"cannot reach the node servant of {target.name}: {e}"

    async def _command(self, what: str, app: str, server: str, node: str, call: NodeCall) -> tuple[int, str]:
        if refused := self._refused(what):
            return Err.EM_TARS_INVALID_IP_ERR, refused
        try:
            _names(app, server)
            if len(node) > MAX_NODE:
                raise BadParameter(f"nodeName longer than {MAX_NODE} characters")
        except BadParameter as e:
            return Err.EM_TARS_PARAMETER_ERR, str(e)
        log.info("%s %s.%s on %s from %s", what, app, server, untrusted.printable(node) or "every pod",
                 current().peer_host)  # fmt: skip
        try:
            targets = await self.pods.targets(app, server, node)
        except Exception as e:  # the Kubernetes API failing: the console gets why
            log.warning("%s: cannot list the pods of %s.%s: %s", what, app, server, e)
            return Err.EM_TARS_UNKNOWN_ERR, f"cannot list the pods of {app}.{server}: {e}"
        if not targets:
            where = f"pod {node!r}" if node else "pod with an IP"
            return Err.EM_TARS_NODE_NOT_REGISTRY_ERR, f"{app}.{server} has no {where}"
        if node:
            return await self._call_one(targets[0], call)
        results = await asyncio.gather(*(self._call_one(t, call) for t in targets))
        failed = [ret for ret, _ in results if ret != 0]
        text = "\n".join(f"{t.name}: {result}" for t, (_, result) in zip(targets, results, strict=True))
        return (failed[0] if failed else 0), text

    async def startServer(self, application: str, serverName: str, nodeName: str) -> AdminReg_startServer_result:
        ret, result = await self._command("startServer", application, serverName, nodeName,
                                          lambda n: n.startServer(application, serverName))  # fmt: skip
        return AdminReg_startServer_result(ret, result)

    async def stopServer(self, application: str, serverName: str, nodeName: str) -> AdminReg_stopServer_result:
        ret, result = await self._command("stopServer", application, serverName, nodeName,
                                          lambda n: n.stopServer(application, serverName))  # fmt: skip
        return AdminReg_stopServer_result(ret, result)

    async def restartServer(self, application: str, serverName: str, nodeName: str) -> AdminReg_restartServer_result:
        ret, result = await self._command("restartServer", application, serverName, nodeName,
                                          lambda n: n.restartServer(application, serverName))  # fmt: skip
        return AdminReg_restartServer_result(ret, result)

    async def notifyServer(self, application: str, serverName: str, nodeName: str, command: str
                           ) -> AdminReg_notifyServer_result:  # fmt: skip
        if not command.strip() or len(command) > MAX_COMMAND:
            return AdminReg_notifyServer_result(Err.EM_TARS_PARAMETER_ERR, "command is empty or too long")
        return AdminReg_notifyServer_result(*await self._command(
            "notifyServer", application, serverName, nodeName,
            lambda n: n.notifyServer(application, serverName, command)))  # fmt: skip

    async def pingNode(self, name: str) -> AdminReg_pingNode_result:
        if refused := self._refused("pingNode"):
            return AdminReg_pingNode_result(False, refused)
        try:
            target = await self.pods.ping_target(name)
        except Exception as e:
            return AdminReg_pingNode_result(False, f"pingNode {name!r}: {e}")
        if target is None:
            return AdminReg_pingNode_result(False, f"pingNode {name!r}: no such pod")
        try:
            await self._node(target.ip).tars_options(timeout_ms=3000).tars_ping()
        except (TarsError, OSError) as e:
            return AdminReg_pingNode_result(False, f"pingNode {name!r} exception: {e}")
        return AdminReg_pingNode_result(True, "ping succ")

    # -- authorization ------------------------------------------------------------------------------------------------
    async def _grants(self, uid: str) -> list[tuple[str, str]] | None:
        if self.accounts.kube is None or self._refused("an auth check"):
            return None
        try:
            return await self.accounts.grants(uid)
        except Exception as e:
            log.warning("cannot read the TAccount of %r: %s", untrusted.printable(uid), e)
            return None

    async def hasDevAuth(self, application: str, serverName: str, uid: str) -> AdminReg_hasDevAuth_result:
        granted = await self._grants(uid)
        if granted is None:
            return AdminReg_hasDevAuth_result(Err.EM_TARS_UNKNOWN_ERR, False)
        return AdminReg_hasDevAuth_result(0, holds(granted, DEVELOPER_ROLES, application, serverName))

    async def hasOpeAuth(self, application: str, serverName: str, uid: str) -> AdminReg_hasOpeAuth_result:
        granted = await self._grants(uid)
        if granted is None:
            return AdminReg_hasOpeAuth_result(Err.EM_TARS_UNKNOWN_ERR, False)
        return AdminReg_hasOpeAuth_result(0, holds(granted, OPERATOR_ROLES, application, serverName))

    async def hasAdminAuth(self, uid: str) -> AdminReg_hasAdminAuth_result:
        granted = await self._grants(uid)
        if granted is None:
            return AdminReg_hasAdminAuth_result(Err.EM_TARS_UNKNOWN_ERR, False)
        return AdminReg_hasAdminAuth_result(0, is_admin(granted))

    async def checkTicket(self, ticket: str) -> AdminReg_checkTicket_result:
        if self._refused("checkTicket"):
            return AdminReg_checkTicket_result(Err.EM_TARS_INVALID_IP_ERR, "")
        if self.accounts.kube is None:
            return AdminReg_checkTicket_result(Err.EM_TARS_UNKNOWN_ERR, "")
        try:
            return AdminReg_checkTicket_result(0, await self.accounts.ticket_user(ticket))
        except Exception as e:
            log.warning("checkTicket: %s", e)
            return AdminReg_checkTicket_result(Err.EM_TARS_UNKNOWN_ERR, "")

    # -- plugins ------------------------------------------------------------------------------------------------------
    async def registerPlugin(self, conf: PluginConf) -> int:
        """The plugin as a TPlugin (created, or updated when it exists), as the console lists plugins from them."""
        if self._refused("registerPlugin"):
            return int(Err.EM_TARS_INVALID_IP_ERR)
        name = plugin_object_name(conf)
        if not name or not conf.name:
            return int(Err.EM_TARS_PARAMETER_ERR)
        if self.kube is None:
            return int(Err.EM_TARS_UNKNOWN_ERR)
        body: Obj = {"apiVersion": TPLUGIN.api_version, "kind": "TPlugin", "metadata": {"name": name},
                     "spec": {"name": conf.name, "name_en": conf.name_en, "obj": conf.obj, "type": conf.type,
                              "path": conf.path, "extern": conf.fextern}}  # fmt: skip
        try:
            await self.kube.apply(TPLUGIN, self.namespace, body)
        except Exception as e:
            log.warning("registerPlugin %s: %s", name, e)
            return int(Err.EM_TARS_UNKNOWN_ERR)
        log.info("plugin %s registered as TPlugin %s", conf.name, name)
        return 0
