"""Configs of an app, a server, or one pod of a server (TConfig ``podSeq``): every version with its history, a diff
against the activated one, a new version, and activating an older one (a rollback). The operator deactivates the
version an activation supersedes."""

from __future__ import annotations

import difflib
import re
import secrets
import time
from dataclasses import dataclass, field

from aiohttp import web

from k8stars.kube import meta
from k8stars.kube.client import Obj
from k8stars.kube.resources import TCONFIG, TSERVER
from k8stars.kube.tconfigs import ACTIVATED_AT

from ..render import page
from ..roles import NotFound, User
from .common import back, form, kube_of, names, user_of

CONFIG_NAME = re.compile(r"^([0-9A-Za-z][-._0-9A-Za-z]*)?[0-9A-Za-z]$")
POD_SEQ = re.compile(r"^(m|0|[1-9][0-9]?)$")
MAX_CONTENT = 1_560_000  # the CRD's limit


@dataclass
class Group:
    """The versions of one file at one level, newest first."""

    config_name: str
    pod_seq: str
    versions: list[Obj] = field(default_factory=list)

    @property
    def active(self) -> Obj | None:
        return next((v for v in self.versions if v.get("activated", True)), None)

    def diff(self, version: Obj) -> str:
        """``version`` against the activated one, as a unified diff ('' for the activated one itself)."""
        active = self.active
        if active is None or active is version:
            return ""
        lines = difflib.unified_diff(str(active.get("configContent", "")).splitlines(),
                                     str(version.get("configContent", "")).splitlines(),
                                     f"activated {active.get('version')}", f"version {version.get('version')}",
                                     lineterm="")  # fmt: skip
        return "\n".join(lines)


def groups_of(tconfigs: list[Obj], app: str, server: str) -> list[Group]:
    out: dict[tuple[str, str], Group] = {}
    for tc in tconfigs:
        if tc.get("app") != app or str(tc.get("server") or "") != server:
            continue
        key = (str(tc.get("configName")), str(tc.get("podSeq") or "m"))
        out.setdefault(key, Group(*key)).versions.append(tc)
    for g in out.values():
        g.versions.sort(key=lambda v: (str(v["metadata"].get("creationTimestamp", "")), str(v.get("version"))),
                        reverse=True)  # fmt: skip
    return sorted(out.values(), key=lambda g: (g.config_name, g.pod_seq != "m", g.pod_seq.zfill(3)))


async def scope(request: web.Request, action: str) -> tuple[str, str, str]:
    """(app, server, the page's URL) of the URL; server '' at app level. 404 for names the user may not see."""
    kube, ns = kube_of(request)
    user: User = user_of(request)
    if "name" in request.match_info:
        ts = await kube.get(TSERVER, ns, request.match_info["name"])
        if ts is None or not user.can("view", *names(ts)):
            raise NotFound("no such server")
        app, server = names(ts)
        url = f"/servers/{ts['metadata']['name']}/configs"
    else:
        app, server = request.match_info["app"], ""
        if not user.can("view", app):
            raise NotFound("no such app")
        url = f"/apps/{app}/configs"
    user.need(action, app, server)
    return app, server, url


async def configs(request: web.Request) -> web.Response:
    app, server, url = await scope(request, "view")
    kube, ns = kube_of(request)
    items = (await kube.list(TCONFIG, ns)).get("items") or []
    return page(request, "configs.html", title=f"{app}.{server} configs" if server else f"{app} configs", app=app,
                server=server, url=url, name=request.match_info.get("name", ""), groups=groups_of(items, app, server),
                can_edit=user_of(request).can("config", app, server))  # fmt: skip


def object_name(app: str, server: str, config_name: str, pod_seq: str, version: str) -> str:
    raw = "-".join(p for p in (app, server, config_name, pod_seq, version) if p).lower()
    return re.sub(r"[^a-z0-9.-]", "-", raw)[:253].strip("-.")


async def new_version(request: web.Request) -> web.StreamResponse:
    app, server, url = await scope(request, "config")
    kube, ns = kube_of(request)
    values = await form(request)
    config_name, pod_seq = values.get("configName", "").strip(), values.get("podSeq", "m").strip() or "m"
    content = values.get("content", "").replace("\r\n", "\n")
    error = ""
    if not CONFIG_NAME.match(config_name) or len(config_name) > 63:
        error = "config name: letters, digits, '-', '.', '_', at most 63"
    elif not POD_SEQ.match(pod_seq) or (not server and pod_seq != "m"):
        error = "pod: m (every pod), or a pod's ordinal; app-level configs have no pod level"
    elif len(content) > MAX_CONTENT:
        error = "the content is too long"
    if error:
        raise back(request, "error", error, url)
    version = time.strftime("%Y%m%d%H%M%S", time.gmtime()) + secrets.token_hex(2)
    labels = {
        meta.SERVER_APP: app,
        meta.SERVER_NAME: server,
        meta.CONFIG_NAME: config_name,
        meta.POD_SEQ: pod_seq,
        meta.CONFIG_VERSION: version,
        meta.ACTIVATED: "true",
    }
    body: Obj = {
        "apiVersion": TCONFIG.api_version, "kind": "TConfig",
        "metadata": {"name": object_name(app, server, config_name, pod_seq, version), "labels": labels},
        "app": app, "server": server, "configName": config_name, "podSeq": pod_seq, "version": version,
        "configContent": content, "activated": True, "updatePerson": user_of(request).username,
        "updateReason": values.get("reason", "")[:1600],
        "updateTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }  # fmt: skip
    await kube.create(TCONFIG, ns, body)
    raise back(request, "ok", f"{config_name} version {version} activated", url)


async def activate(request: web.Request) -> web.StreamResponse:
    """Activate an older version (a rollback): stamped with when, so it wins over newer ones."""
    app, server, url = await scope(request, "config")
    kube, ns = kube_of(request)
    tc = await kube.get(TCONFIG, ns, request.match_info["config"])
    if tc is None or tc.get("app") != app or str(tc.get("server") or "") != server:
        raise back(request, "error", "no such config version here", url)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    patch = {"activated": True, "metadata": {"annotations": {ACTIVATED_AT: stamp}, "labels": {meta.ACTIVATED: "true"}}}
    await kube.merge_patch(TCONFIG, ns, tc["metadata"]["name"], patch)
    raise back(request, "ok", f"{tc.get('configName')} version {tc.get('version')} activated", url)


def setup(app: web.Application) -> None:
    app.router.add_get("/servers/{name}/configs", configs)
    app.router.add_post("/servers/{name}/configs", new_version)
    app.router.add_post("/servers/{name}/configs/{config}/activate", activate)
    app.router.add_get("/apps/{app}/configs", configs)
    app.router.add_post("/apps/{app}/configs", new_version)
    app.router.add_post("/apps/{app}/configs/{config}/activate", activate)
