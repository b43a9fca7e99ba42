"""TTemplates: each with its chain of parents and the merged view (what a server using it gets, before its
profile); admins create and edit them (every server using a template changes at its pods' next start)."""

from __future__ import annotations

import re

from aiohttp import web

from k8stars.kube.client import Obj
from k8stars.kube.resources import TSERVER, TTEMPLATE
from k8stars.kube.templates import TemplateError, server_template, template_chain

from ..render import page
from ..roles import NotFound
from .common import back, form, kube_of, user_of

URL = "/templates"
NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?$")  # an object name; K8SFramework's are like tars.cpp


def template_of(ts: Obj) -> str:
    return str(((ts.get("spec") or {}).get("tars") or {}).get("template") or "")


def merged(name: str, templates: dict[str, Obj]) -> tuple[list[str], str, str]:
    """(the chain's names root first, the merged content, why it cannot be merged or '')."""
    try:
        chain = [str(t["metadata"]["name"]) for t in template_chain(name, templates)]
        return chain, server_template({"spec": {"tars": {"template": name}}}, templates), ""
    except TemplateError as e:
        return [], "", str(e)


async def _all(request: web.Request) -> dict[str, Obj]:
    kube, ns = kube_of(request)
    return {str(t["metadata"]["name"]): t for t in (await kube.list(TTEMPLATE, ns)).get("items") or []}


async def template_list(request: web.Request) -> web.Response:
    user = user_of(request)
    if not user.grants:
        raise NotFound("no templates")
    kube, ns = kube_of(request)
    templates = await _all(request)
    used: dict[str, int] = {}
    for ts in (await kube.list(TSERVER, ns)).get("items") or []:
        used[template_of(ts)] = used.get(template_of(ts), 0) + 1
    return page(request, "templates.html", title="Templates", templates=sorted(templates.values(),
                key=lambda t: str(t["metadata"]["name"])), used=used, can_edit=user.can("templates"))  # fmt: skip


async def template_page(request: web.Request) -> web.Response:
    user = user_of(request)
    templates = await _all(request)
    name = request.match_info["name"]
    if not user.grants or name not in templates:
        raise NotFound(f"no template {name}")
    chain, text, error = merged(name, templates)
    return page(request, "template.html", title=name, tt=templates[name], chain=chain, merged=text, error=error,
                can_edit=user.can("templates"))  # fmt: skip


async def save(request: web.Request) -> web.StreamResponse:
    """A new template (name, parent, content) or new content for one (its name in the URL)."""
    user_of(request).need("templates")
    kube, ns = kube_of(request)
    values = await form(request)
    content = values.get("content", "").replace("\r\n", "\n")
    name = request.match_info.get("name") or values.get("name", "").strip()
    if "name" in request.match_info:
        await kube.merge_patch(TTEMPLATE, ns, name, {"spec": {"content": content}})
        raise back(request, "ok", f"template {name} saved", f"{URL}/{name}")
    parent = values.get("parent", "").strip() or name
    if not NAME.match(name):
        raise back(request, "error", "name: lower-case letters, digits, '-' and '.', like tars.cpp", URL)
    body: Obj = {"apiVersion": TTEMPLATE.api_version, "kind": "TTemplate", "metadata": {"name": name},
                 "spec": {"parent": parent, "content": content}}  # fmt: skip
    await kube.create(TTEMPLATE, ns, body)
    raise back(request, "ok", f"template {name} created", f"{URL}/{name}")


def setup(app: web.Application) -> None:
    app.router.add_get(URL, template_list)
    app.router.add_post(URL, save)
    app.router.add_get(URL + "/{name}", template_page)
    app.router.add_post(URL + "/{name}", save)
