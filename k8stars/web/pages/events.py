"""Events and pod history of a server: the Kubernetes Events of its TServer, workload and pods, and the pods that
have exited (its TExitedRecord)."""

from __future__ import annotations

import re

from aiohttp import web

from k8stars.kube.client import Obj, Resource
from k8stars.kube.resources import TEXITEDRECORD

from ..render import page
from .common import kube_of, server_of

EVENT = Resource("", "v1", "events", "Event")
MAX_EVENTS = 200


def of_server(events: list[Obj], name: str) -> list[Obj]:
    """Events about the TServer ``name``, its StatefulSet or DaemonSet, Service and pods (``name-<ordinal>`` or a
    DaemonSet's ``name-<hash>``), newest first."""
    pods = re.compile(rf"^{re.escape(name)}-[0-9a-z]+$")
    mine = [e for e in events if (n := str((e.get("involvedObject") or {}).get("name", ""))) == name or pods.match(n)]

    def when(e: Obj) -> str:
        return str(e.get("lastTimestamp") or e.get("eventTime") or (e.get("metadata") or {}).get("creationTimestamp"))

    return sorted(mine, key=when, reverse=True)[:MAX_EVENTS]


async def events(request: web.Request) -> web.Response:
    tserver, app, server = await server_of(request, "view")
    kube, ns = kube_of(request)
    name = tserver["metadata"]["name"]
    items = of_server((await kube.list(EVENT, ns)).get("items") or [], name)
    record = await kube.get(TEXITEDRECORD, ns, name)
    exited = sorted((record or {}).get("pods") or [], key=lambda p: str(p.get("deleteTime", "")), reverse=True)
    return page(request, "events.html", title=f"{app}.{server} events", app=app, server=server, name=name,
                events=items, exited=exited)  # fmt: skip


def setup(app: web.Application) -> None:
    app.router.add_get("/servers/{name}/events", events)
