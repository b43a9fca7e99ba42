"""The service tree: TTree's businesses and apps with the namespace's TServers under them; search by name."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from k8stars.kube.client import Obj
from k8stars.kube.resources import TSERVER, TTREE

from ..render import page
from .common import kube_of, names, user_of

TREE = "tars-tree"


@dataclass
class App:
    name: str
    servers: list[Obj] = field(default_factory=list)


@dataclass
class Business:
    name: str
    show: str
    apps: list[App] = field(default_factory=list)


def build_tree(ttree: Obj | None, tservers: list[Obj], query: str) -> list[Business]:
    """Businesses (TTree order by weight, then name; apps of no business last) with their apps and servers; only
    servers whose ``App.Server`` contains ``query`` (case-insensitive) and apps with such servers when searching."""
    ttree = ttree or {}
    businesses = {str(b.get("name")): b for b in ttree.get("businesses") or []}
    app_business = {str(a.get("name")): str(a.get("businessRef") or "") for a in ttree.get("apps") or []}
    apps: dict[str, App] = {name: App(name) for name in app_business}
    q = query.strip().lower()
    for ts in sorted(tservers, key=lambda t: names(t)):
        app, server = names(ts)
        if q and q not in f"{app}.{server}".lower():
            continue
        apps.setdefault(app, App(app)).servers.append(ts)
    out: dict[str, Business] = {}
    for entry in sorted(apps.values(), key=lambda a: a.name):
        if q and not entry.servers:
            continue
        ref = app_business.get(entry.name, "")
        b = businesses.get(ref)
        key = ref if b else ""
        if key not in out:
            out[key] = Business(key, str(b.get("show") or key) if b else "(no business)")
        out[key].apps.append(entry)

    def order(b: Business) -> tuple[int, int, str]:
        weight = int((businesses.get(b.name) or {}).get("weight") or 3)
        return (b.name == "", -weight, b.show)

    return sorted(out.values(), key=order)


async def tree(request: web.Request) -> web.Response:
    kube, ns = kube_of(request)
    user = user_of(request)
    query = request.query.get("q", "")
    ttree = await kube.get(TTREE, ns, TREE)
    tservers = [t for t in (await kube.list(TSERVER, ns)).get("items") or [] if user.can("view", *names(t))]
    businesses = build_tree(ttree, tservers, query)
    if not user.is_admin:  # an app listed in TTree stays hidden from users without a role in it
        for b in businesses:
            b.apps = [a for a in b.apps if a.servers or user.may_see_any(a.name)]
        businesses = [b for b in businesses if b.apps]
    return page(request, "tree.html", title="Services", businesses=businesses, query=query, count=len(tservers))


def setup(app: web.Application) -> None:
    app.router.add_get("/", tree)
