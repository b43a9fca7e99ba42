"""Editing a TServer from forms: its servants (``spec.tars.servants``) or ports (``spec.normal.ports``), a TARS
server's template, profile and async threads, and its k8s settings (replicas, resources, env, ability affinity; host
networking, host ports, mounts and node selection in edit_k8s); creating a TServer. The console checks only what it
must to build the object (numbers are numbers); the CRD schema and the operator's admission webhook judge the rest,
and a refusal is shown on the form with what was typed, so nothing is lost. Saves carry the resourceVersion the form
was made from: an edit made meanwhile by someone else is refused (409), never overwritten."""

from __future__ import annotations

import copy
import hashlib
import json
import re
from typing import Any

from aiohttp import web

from k8stars.kube import meta
from k8stars.kube.client import ApiException, Obj
from k8stars.kube.resources import TSERVER, TTEMPLATE, TTREE

from ..app import api_message
from ..render import page
from ..roles import EDIT
from .common import back, form, kube_of, server_of, user_of
from .edit_k8s import host_context, host_patch
from .forms import Invalid, kept_rows, number

MAX_REPLICAS = 1000
AFFINITIES = ("AppOrServerPreferred", "AppRequired", "ServerRequired", "None")
SERVANT_NUMBERS = ("port", "thread", "connection", "capacity", "timeout")
_ENV_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]*")  # a TARS app or server name


def merged(base: Any, patch: Any) -> Any:
    """``base`` with the JSON merge patch ``patch`` applied (RFC 7386): the object a save would make."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(base) if isinstance(base, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merged(out.get(k), v)
    return out


def servants_of(data: dict[str, str], tars: bool) -> list[Obj]:
    """The rows ``s<i>.<field>`` of the form, in order; a row without a name, or marked remove, is left out."""
    out: list[Obj] = []
    for i, name in kept_rows(data, "s", "name"):
        item: Obj = {"name": name}
        for key in SERVANT_NUMBERS if tars else ("port",):
            value = number(data, f"s{i}.{key}", f"{name} {key}")
            if value is not None:
                item[key] = value
        if "port" not in item:
            raise Invalid(f"{name}: a port is required")
        if tars:
            item["isTars"] = bool(data.get(f"s{i}.isTars"))
        item["isTcp"] = bool(data.get(f"s{i}.isTcp"))
        out.append(item)
    return out


def env_of(text: str, old: list[Obj]) -> list[Obj]:
    """``NAME=value`` lines; entries from elsewhere (``valueFrom``) are kept unless a line names them."""
    given: list[Obj] = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        name, sep, value = line.partition("=")
        name = name.strip()
        if not sep or not _ENV_NAME.fullmatch(name):
            raise Invalid(f"env line {n}: expected NAME=value, with a name of letters, digits, '-', '.', '_'")
        given.append({"name": name, "value": value})
    named = {e["name"] for e in given}
    return [e for e in old if "valueFrom" in e and e.get("name") not in named] + given


def tars_options(tars: Obj, data: dict[str, str]) -> Obj:
    """A TARS server's template, profile (its own config lines over the template) and async threads; a field the form
    did not send keeps its value."""
    out: Obj = {}
    if "template" in data:
        out["template"] = data["template"].strip()
    if "profile" in data:
        out["profile"] = data["profile"].replace("\r\n", "\n")
    if "asyncThread" in data:
        out["asyncThread"] = number(data, "asyncThread", "async threads")
    return {k: v for k, v in out.items() if v != tars.get(k)}


def spec_hash(tserver: Obj) -> str:
    return hashlib.sha256(json.dumps(tserver.get("spec"), sort_keys=True).encode()).hexdigest()[:32]


def base_version(tserver: Obj, data: dict[str, str]) -> str | None:
    """The resourceVersion a save is made against: the form's, or the current one when the spec is still the one the
    form was made from (the operator writes the status as pods come and go; only a change of the spec is someone
    else's edit)."""
    if data.get("specHash") and data["specHash"] == spec_hash(tserver):
        return str(tserver["metadata"]["resourceVersion"])
    return data.get("resourceVersion") or None


def settings_patch(tserver: Obj, data: dict[str, str]) -> Obj:
    """The merge patch a save of the form makes."""
    spec = tserver.get("spec") or {}
    k8s = spec.get("k8s") or {}
    replicas = number(data, "replicas", "replicas")
    if replicas is None or replicas > MAX_REPLICAS:
        raise Invalid(f"replicas: a whole number from 0 to {MAX_REPLICAS}")
    affinity = data.get("abilityAffinity", k8s.get("abilityAffinity", "AppOrServerPreferred"))
    if affinity not in AFFINITIES:
        raise Invalid(f"abilityAffinity: one of {', '.join(AFFINITIES)}")
    resources = {part: {kind: data.get(f"{part}.{kind}", "").strip() or None for kind in ("cpu", "memory")}
                 for part in ("requests", "limits")}  # fmt: skip
    new_k8s = {"replicas": replicas, "abilityAffinity": affinity, "resources": resources,
               "env": env_of(data.get("env", ""), list(k8s.get("env") or []))}  # fmt: skip
    new_k8s.update(host_patch(k8s, data))
    patch: Obj = {"metadata": {"resourceVersion": base_version(tserver, data)}, "spec": {"k8s": new_k8s}}
    if spec.get("tars"):
        patch["spec"]["tars"] = {"servants": servants_of(data, True), **tars_options(spec["tars"], data)}
    else:
        patch["spec"]["normal"] = {"ports": servants_of(data, False)}
    return patch


def env_text(tserver: Obj) -> str:
    env = ((tserver.get("spec") or {}).get("k8s") or {}).get("env") or []
    return "\n".join(f"{e.get('name')}={e.get('value', '')}" for e in env if "valueFrom" not in e)


async def edit_page(request: web.Request, ts: Obj, app: str, server: str, status: int = 200, error: str = "",
                    base: str = "", typed: dict[str, str] | None = None) -> web.Response:  # fmt: skip
    """The form for ``ts``; ``base``: the hash of the spec it was made from (a refused save's form keeps its own);
    ``typed``: the fields of a form the console could not use, shown again in the browser."""
    spec = ts.get("spec") or {}
    rows = (spec.get("tars") or {}).get("servants") if spec.get("tars") else (spec.get("normal") or {}).get("ports")
    kube, ns = kube_of(request)
    templates = sorted(str(t["metadata"]["name"]) for t in (await kube.list(TTEMPLATE, ns)).get("items") or [])
    return page(request, "edit.html", status=status, title=f"{app}.{server} settings", app=app, server=server,
                name=ts["metadata"]["name"], ts=ts, rows=list(rows or []), tars=bool(spec.get("tars")),
                env=env_text(ts), affinities=AFFINITIES, templates=templates, error=error, base=base or spec_hash(ts),
                typed={k: v for k, v in (typed or {}).items() if k != "_csrf"},
                **host_context(ts))  # fmt: skip


async def edit(request: web.Request) -> web.Response:
    tserver, app, server = await server_of(request, EDIT)
    return await edit_page(request, tserver, app, server)


async def save(request: web.Request) -> web.StreamResponse:
    tserver, app, server = await server_of(request, EDIT)
    kube, ns = kube_of(request)
    name = tserver["metadata"]["name"]
    data = await form(request)
    try:
        patch = settings_patch(tserver, data)
    except Invalid as e:
        return await edit_page(request, tserver, app, server, 422, str(e), typed=data)
    try:
        await kube.merge_patch(TSERVER, ns, name, patch)
    except ApiException as e:
        if e.status not in (400, 403, 409, 422):
            raise
        typed = merged(tserver, patch)
        return await edit_page(request, typed, app, server, 422, refusal(e, api_message(e)), data.get("specHash", ""))
    raise back(request, "ok", f"{app}.{server} saved", f"/servers/{name}")


def refusal(e: ApiException, message: str) -> str:
    if e.status == 409:
        return "someone changed this server meanwhile: reload the page to edit the current settings"
    return f"Kubernetes refused it: {message}"


async def new_form(request: web.Request, status: int = 200, error: str = "", values: dict[str, str] | None = None
                   ) -> web.Response:  # fmt: skip
    kube, ns = kube_of(request)
    user = user_of(request)
    tree = await kube.get(TTREE, ns, "tars-tree")
    known = {str(a.get("name")) for a in (tree or {}).get("apps") or []}
    known |= {str((t.get("spec") or {}).get("app")) for t in (await kube.list(TSERVER, ns)).get("items") or []}
    apps = [a for a in sorted(known) if user.can(EDIT, a)]
    templates = sorted(str(t["metadata"]["name"]) for t in (await kube.list(TTEMPLATE, ns)).get("items") or [])
    return page(request, "new_server.html", status=status, title="New server", apps=apps, templates=templates,
                values=values or {"template": "tars.cpp" if "tars.cpp" in templates else "", "replicas": "1",
                                  "subType": "tars", "isTars": "on"}, error=error)  # fmt: skip


async def new_server(request: web.Request) -> web.StreamResponse:
    return await new_form(request)


def tserver_of(data: dict[str, str]) -> Obj:
    app, server = data.get("app", "").strip(), data.get("server", "").strip()
    for what, value in (("app", app), ("server", server)):
        if not _NAME.fullmatch(value):
            raise Invalid(f"{what}: letters and digits, starting with a letter")
    sub = data.get("subType", "tars")
    if sub not in ("tars", "normal"):
        raise Invalid("type: tars or normal")
    replicas = number(data, "replicas", "replicas") or 0
    if replicas > MAX_REPLICAS:
        raise Invalid(f"replicas: a whole number from 0 to {MAX_REPLICAS}")
    first = servants_of(data, sub == "tars")
    spec: Obj = {"app": app, "server": server, "subType": sub,
                 "k8s": {"replicas": replicas, "abilityAffinity": "AppOrServerPreferred"}}  # fmt: skip
    if sub == "tars":
        spec["tars"] = {"template": data.get("template", ""), "profile": "", "servants": first}
    else:
        spec["normal"] = {"ports": first}
    return {"apiVersion": TSERVER.api_version, "kind": "TServer",
            "metadata": {"name": meta.resource_name(app, server),
                         "labels": {meta.SERVER_APP: app, meta.SERVER_NAME: server}},
            "spec": spec}  # fmt: skip


async def create(request: web.Request) -> web.StreamResponse:
    data = await form(request)
    user = user_of(request)
    app = data.get("app", "").strip()
    user.need(EDIT, app)  # checked before anything is read of the app
    kube, ns = kube_of(request)
    try:
        body = tserver_of(data)
    except Invalid as e:
        return await new_form(request, 422, str(e), data)
    try:
        await kube.create(TSERVER, ns, body)
    except ApiException as e:
        if e.status not in (400, 403, 409, 422):
            raise
        message = f"{body['metadata']['name']} exists already" if e.status == 409 else refusal(e, api_message(e))
        return await new_form(request, 422, message, data)
    name = body["metadata"]["name"]
    raise back(request, "ok", f"{app}.{body['spec']['server']} created", f"/servers/{name}")


def setup(app: web.Application) -> None:
    app.router.add_get("/servers/{name}/edit", edit)
    app.router.add_post("/servers/{name}/edit", save)
    app.router.add_get("/new-server", new_server)
    app.router.add_post("/new-server", create)
