"""What the pages share: the namespace's client, the server a URL names, the form of a POST."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from k8stars.kube.client import Kube, Obj
from k8stars.kube.resources import TSERVER

from ..keys import KUBE, NAMESPACE, SESSION, USER
from ..roles import NotFound, User


def kube_of(request: web.Request) -> tuple[Kube, str]:
    return request.app[KUBE], request.app[NAMESPACE]


def user_of(request: web.Request) -> User:
    user: User = request[USER]
    return user


def names(tserver: Obj) -> tuple[str, str]:
    spec = tserver.get("spec") or {}
    return str(spec.get("app", "")), str(spec.get("server", ""))


async def server_of(request: web.Request, action: str) -> tuple[Obj, str, str]:
    """The TServer the URL names, after checking the user may do ``action`` on it (404 when it does not exist; a
    user without any role there gets the same 404, so names are not disclosed)."""
    kube, ns = kube_of(request)
    tserver = await kube.get(TSERVER, ns, request.match_info["name"])
    user = user_of(request)
    if tserver is None or not user.can("view", *names(tserver)):
        raise NotFound(f"no server {request.match_info['name']}")
    app, server = names(tserver)
    user.need(action, app, server)
    return tserver, app, server


async def form(request: web.Request) -> dict[str, str]:
    data = await request.post()
    return {k: str(v) for k, v in data.items() if isinstance(v, str)}


def back(request: web.Request, kind: str, text: str, to: str) -> web.HTTPSeeOther:
    """Redirect after a POST, with a message for the next page."""
    request[SESSION].say(kind, text)
    return web.HTTPSeeOther(to)


def age(obj: Obj) -> Any:
    return (obj.get("metadata") or {}).get("creationTimestamp", "")
