"""Commands to a server's pods: ``tars.viewstatus``, ``tars.setloglevel``, ``tars.loadconfig`` or any command, to
one pod or to every pod, each pod's reply shown. They go the way TarsWeb's do: ``AdminReg.notifyServer`` of
``tars.tarsAdminRegistry.AdminRegObj`` found through the registry (``--locator``), which forwards each to the node
servant of the pod and so to the server's AdminObj. Sending needs the operator role on the server."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiohttp import web

from k8stars.kube.client import Obj
from k8stars.kube.pods import pod_ips
from k8stars.kube.resources import POD
from k8stars.tars.protocol.adminreg import AdminRegProxy
from k8stars.tars.rpc import Communicator

from ..keys import MONITOR
from ..render import page
from .common import form, kube_of, server_of, user_of
from .server import selector

ADMINREG_OBJ = "tars.tarsAdminRegistry.AdminRegObj"
TIMEOUT_MS = 65000  # AdminReg gives a node servant 60 s
LOG_LEVELS = ("DEBUG", "INFO", "WARN", "ERROR", "NONE")
MAX_COMMAND = 1024


class AdminRegClient:
    """AdminRegObj through the console's registry, its Communicator made at the first command."""

    def __init__(self) -> None:
        self.comm: Communicator | None = None

    def proxy(self, locator: str) -> AdminRegProxy:
        if self.comm is None:
            self.comm = Communicator(locator=locator)
        return self.comm.string_to_proxy(AdminRegProxy, ADMINREG_OBJ).tars_options(timeout_ms=TIMEOUT_MS)

    async def close(self, _app: web.Application) -> None:
        if self.comm is not None:
            await self.comm.close()


CLIENT = web.AppKey("commands_adminreg", AdminRegClient)


@dataclass
class Reply:
    pod: str
    ret: int
    result: str


def command_of(values: dict[str, str]) -> str:
    """The AdminObj command the form names; ValueError says what is wrong."""
    kind = values.get("command", "")
    if kind == "tars.viewstatus":
        return kind
    if kind == "tars.setloglevel":
        level = values.get("level", "")
        if level not in LOG_LEVELS:
            raise ValueError(f"log level: one of {', '.join(LOG_LEVELS)}")
        return f"tars.setloglevel {level}"
    if kind == "tars.loadconfig":
        file = values.get("file", "").strip()
        if not file or "/" in file or any(c.isspace() for c in file):
            raise ValueError("tars.loadconfig needs a config file name (no path, no spaces)")
        return f"tars.loadconfig {file}"
    if kind == "custom":
        text = values.get("custom", "").strip()
        if not text or len(text) > MAX_COMMAND or any(c in text for c in "\r\n\0"):
            raise ValueError(f"a custom command is one line of at most {MAX_COMMAND} characters")
        return text
    raise ValueError("choose a command")


def adminreg(app: web.Application) -> AdminRegProxy | None:
    """AdminRegObj through the console's registry; None without ``--locator``."""
    locator = app[MONITOR].locator
    return app[CLIENT].proxy(locator) if locator else None


async def _pods(request: web.Request, app: str, server: str) -> list[str]:
    kube, ns = kube_of(request)
    items: list[Obj] = (await kube.list(POD, ns, selector=selector(app, server))).get("items") or []
    return sorted(str(p["metadata"]["name"]) for p in items if pod_ips(p))


async def _send(proxy: AdminRegProxy, app: str, server: str, pod: str, command: str) -> Reply:
    try:
        ret, result = await proxy.notifyServer(app, server, pod, command)
    except Exception as e:  # AdminReg not registered, unreachable, timed out: the row says so
        return Reply(pod, -1, f"the admin registry did not answer: {e}")
    return Reply(pod, ret, result)


async def commands_page(request: web.Request) -> web.Response:
    tserver, app, server = await server_of(request, "view")
    return await _render(request, tserver, app, server, [], {})


async def _render(request: web.Request, tserver: Obj, app: str, server: str, replies: list[Reply],
                  values: dict[str, str], status: int = 200, error: str = "") -> web.Response:  # fmt: skip
    pods = await _pods(request, app, server)
    return page(request, "commands.html", status=status, title=f"{app}.{server} commands", app=app, server=server,
                name=tserver["metadata"]["name"], pods=pods, replies=replies, values=values, error=error,
                levels=LOG_LEVELS, can_send=user_of(request).can("command", app, server),
                connected=request.app[MONITOR].locator != "")  # fmt: skip


async def send(request: web.Request) -> web.Response:
    tserver, app, server = await server_of(request, "command")
    values = await form(request)
    try:
        command = command_of(values)
    except ValueError as e:
        return await _render(request, tserver, app, server, [], values, 400, str(e))
    proxy = adminreg(request.app)
    if proxy is None:
        missing = "the console was started without --locator: it cannot find the admin registry"
        return await _render(request, tserver, app, server, [], values, 503, missing)
    pods = await _pods(request, app, server)
    target = values.get("pod", "")
    if target and target not in pods:
        return await _render(request, tserver, app, server, [], values, 400, f"{target} is not a pod of {app}.{server}")
    chosen = [target] if target else pods
    replies = await asyncio.gather(*(_send(proxy, app, server, pod, command) for pod in chosen))
    return await _render(request, tserver, app, server, list(replies), values)


def setup(app: web.Application) -> None:
    app.router.add_get("/servers/{name}/commands", commands_page)
    app.router.add_post("/servers/{name}/commands", send)
    app[CLIENT] = AdminRegClient()
    app.on_cleanup.append(app[CLIENT].close)
