"""Nodes and abilities, with K8SFramework's node labels: ``tars.io/node.<namespace>`` (the node serves this
namespace's servers) and ``tars.io/ability.<namespace>.<App>`` / ``tars.io/ability.<namespace>.<App>-<Server>``
(the node is in the app's or server's pool: ``spec.k8s.abilityAffinity`` AppRequired, ServerRequired,
AppOrServerPreferred). Admins (everywhere) add and remove them; an ability is only granted for an app or server that
has a TServer, so a label the console writes always names one."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from k8stars.kube import meta
from k8stars.kube.client import Obj
from k8stars.kube.resources import NODE, TSERVER

from ..render import page
from ..roles import NODES, NotFound
from .common import back, form, kube_of, names, user_of


@dataclass
class NodeRow:
    name: str
    address: str
    ready: bool
    framework: bool  # carries tars.io/node.<namespace>
    abilities: list[str]  # App or App-Server


def ability_prefix(namespace: str) -> str:
    return f"{meta.ABILITY_LABEL_PREFIX}{namespace}."


def node_row(node: Obj, namespace: str) -> NodeRow:
    labels = node["metadata"].get("labels") or {}
    status = node.get("status") or {}
    addresses = {a.get("type"): a.get("address") for a in status.get("addresses") or []}
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
    prefix = ability_prefix(namespace)
    return NodeRow(name=node["metadata"]["name"], address=str(addresses.get("InternalIP") or ""), ready=ready,
                   framework=meta.node_label(namespace) in labels,
                   abilities=sorted(k[len(prefix):] for k in labels if k.startswith(prefix)))  # fmt: skip


async def pools(request: web.Request) -> list[str]:
    """What an ability may name: each app with a TServer, and each ``App-Server``."""
    kube, ns = kube_of(request)
    found: set[str] = set()
    for ts in (await kube.list(TSERVER, ns)).get("items") or []:
        app, server = names(ts)
        if app and server:
            found |= {app, f"{app}-{server}"}
    return sorted(found)


async def nodes_page(request: web.Request) -> web.Response:
    user = user_of(request)
    if not user.grants:
        raise NotFound("nothing here")
    kube, ns = kube_of(request)
    rows = [node_row(n, ns) for n in (await kube.list(NODE)).get("items") or []]
    return page(request, "nodes.html", title="Nodes", nodes=sorted(rows, key=lambda r: r.name),
                can_edit=user.can(NODES), pools=await pools(request) if user.can(NODES) else [],
                node_label=meta.node_label(ns), ability_prefix=ability_prefix(ns))  # fmt: skip


async def label(request: web.Request) -> web.StreamResponse:
    """``what``: ``framework`` (tars.io/node.<ns>) or ``ability`` (with ``pool``); ``op``: ``add`` or ``remove``."""
    user_of(request).need(NODES)
    kube, ns = kube_of(request)
    name = request.match_info["node"]
    data = await form(request)
    what, op, pool = data.get("what", ""), data.get("op", ""), data.get("pool", "")
    if op not in ("add", "remove") or what not in ("framework", "ability"):
        raise back(request, "error", "expected what=framework|ability and op=add|remove", "/nodes")
    if await kube.get(NODE, None, name) is None:
        raise back(request, "error", f"no node {name}", "/nodes")
    if what == "framework":
        key = meta.node_label(ns)
    else:
        if op == "add" and pool not in await pools(request):  # removing an ability of a deleted server is fine
            raise back(request, "error", f"{pool!r} is not an app or App-Server with a TServer", "/nodes")
        key = ability_prefix(ns) + pool
        if not pool or len(key.split("/", 1)[1]) > 63:
            raise back(request, "error", f"{pool!r}: not an ability this namespace can name", "/nodes")
    await kube.merge_patch(NODE, None, name, {"metadata": {"labels": {key: "" if op == "add" else None}}})
    done = "added to" if op == "add" else "removed from"
    raise back(request, "ok", f"{key} {done} {name}", "/nodes")


def setup(app: web.Application) -> None:
    app.router.add_get("/nodes", nodes_page)
    app.router.add_post("/nodes/{node}/labels", label)
