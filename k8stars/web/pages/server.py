"""A server: its pods (IP, node, release, TARS state, readiness), scale, restart a pod, its servants and the TServer
as YAML."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from k8stars.kube import meta
from k8stars.kube.client import Obj
from k8stars.kube.resources import POD, TENDPOINT, TSERVER, TTEMPLATE
from k8stars.kube.templates import TemplateError, server_template

from ..render import page
from .common import back, form, kube_of, server_of, user_of

MAX_REPLICAS = 1000  # a typo (an extra zero) should not start a thousand pods


@dataclass
class PodRow:
    name: str
    ip: str
    node: str
    release: str
    phase: str
    ready: bool
    tars_state: str
    restarts: int
    started: str


def pod_rows(pods: list[Obj], tendpoint: Obj | None) -> list[PodRow]:
    states = {str(p.get("name")): p for p in ((tendpoint or {}).get("status") or {}).get("pods") or []}
    rows = []
    for pod in sorted(pods, key=lambda p: str(p["metadata"]["name"])):
        md, status = pod["metadata"], pod.get("status") or {}
        conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
        state = states.get(md["name"]) or {}
        rows.append(PodRow(
            name=md["name"], ip=str(status.get("podIP") or ""), node=str((pod.get("spec") or {}).get("nodeName") or ""),
            release=str((md.get("labels") or {}).get(meta.SERVER_ID) or ""), phase=str(status.get("phase") or ""),
            ready=conditions.get("Ready") == "True", tars_state=str(state.get("presentState") or ""),
            restarts=sum(int(c.get("restartCount") or 0) for c in status.get("containerStatuses") or []),
            started=str(status.get("startTime") or ""),
        ))  # fmt: skip
    return rows


def selector(app: str, server: str) -> str:
    return f"{meta.SERVER_APP}={app},{meta.SERVER_NAME}={server}"


async def server_page(request: web.Request) -> web.Response:
    tserver, app, server = await server_of(request, "view")
    kube, ns = kube_of(request)
    name = tserver["metadata"]["name"]
    pods = (await kube.list(POD, ns, selector=selector(app, server))).get("items") or []
    rows = pod_rows(pods, await kube.get(TENDPOINT, ns, name))
    user = user_of(request)
    return page(request, "server.html", title=f"{app}.{server}", ts=tserver, app=app, server=server, name=name,
                pods=rows, can_operate=user.can("scale", app, server),
                merged=await merged_template(request, tserver))  # fmt: skip


async def merged_template(request: web.Request, tserver: Obj) -> str:
    """The config template its pods get (the TTemplate chain, then its profile), or why there is none."""
    if not (tserver.get("spec") or {}).get("tars"):
        return ""
    kube, ns = kube_of(request)
    templates = {str(t["metadata"]["name"]): t for t in (await kube.list(TTEMPLATE, ns)).get("items") or []}
    try:
        return server_template(tserver, templates)
    except TemplateError as e:
        return f"# cannot be merged: {e}"


async def scale(request: web.Request) -> web.StreamResponse:
    tserver, app, server = await server_of(request, "scale")
    kube, ns = kube_of(request)
    name = tserver["metadata"]["name"]
    text = (await form(request)).get("replicas", "")
    if not text.isdigit() or int(text) > MAX_REPLICAS:
        raise back(request, "error", f"replicas: a whole number from 0 to {MAX_REPLICAS}", f"/servers/{name}")
    await kube.merge_patch(TSERVER, ns, name, {"spec": {"k8s": {"replicas": int(text)}}})
    raise back(request, "ok", f"{app}.{server} scaled to {int(text)}", f"/servers/{name}")


async def restart(request: web.Request) -> web.StreamResponse:
    """Delete the pod; its StatefulSet starts it again (K8SFramework's restart)."""
    tserver, app, server = await server_of(request, "restart")
    kube, ns = kube_of(request)
    name, pod_name = tserver["metadata"]["name"], request.match_info["pod"]
    pod = await kube.get(POD, ns, pod_name)
    labels = ((pod or {}).get("metadata") or {}).get("labels") or {}
    if pod is None or labels.get(meta.SERVER_APP) != app or labels.get(meta.SERVER_NAME) != server:
        raise back(request, "error", f"{pod_name} is not a pod of {app}.{server}", f"/servers/{name}")
    await kube.delete(POD, ns, pod_name)
    raise back(request, "ok", f"{pod_name} restarting", f"/servers/{name}")


def setup(app: web.Application) -> None:
    app.router.add_get("/servers/{name}", server_page)
    app.router.add_post("/servers/{name}/scale", scale)
    app.router.add_post("/servers/{name}/pods/{pod}/restart", restart)
