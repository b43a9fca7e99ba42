"""The framework itself (classic TARS users could not see it: Tars#48): the namespace's framework services (the
Deployments and StatefulSets of the k8stars charts) with their readiness, and the TFrameworkConfig, which admins
edit as YAML (as tarsweb does)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml  # type: ignore[import-untyped,unused-ignore]
from aiohttp import web

from k8stars.kube.client import ApiException, Obj, Resource
from k8stars.kube.resources import STATEFULSET, TFRAMEWORKCONFIG

from ..app import api_message
from ..render import page, to_yaml
from ..roles import FRAMEWORK, NotFound
from .common import back, form, kube_of, user_of

DEPLOYMENT = Resource("apps", "v1", "deployments", "Deployment")
PART_OF = "app.kubernetes.io/part-of=k8stars"  # the charts' label on every framework workload
FRAMEWORK_CONFIG = "tars-framework"
URL = "/framework"
FIXED = ("apiVersion", "kind", "metadata", "status")  # what the YAML form does not edit


class Invalid(ValueError):
    """A settings text that is not a TFrameworkConfig's settings; the message says why."""


@dataclass
class Workload:
    kind: str
    name: str
    wanted: int
    ready: int
    images: list[str]

    @property
    def healthy(self) -> bool:
        return self.ready >= self.wanted


def workload(obj: Obj) -> Workload:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
    return Workload(kind=str(obj.get("kind") or ""), name=str(obj["metadata"]["name"]),
                    wanted=int(spec.get("replicas", 1) or 0), ready=int(status.get("readyReplicas") or 0),
                    images=sorted({str(c.get("image")) for c in containers}))  # fmt: skip


def settings_text(config: Obj) -> str:
    """The TFrameworkConfig's settings (its top-level fields but the object's identity) as YAML."""
    return to_yaml({k: v for k, v in config.items() if k not in FIXED})


def settings_of(text: str) -> dict[str, Any]:
    try:
        settings = yaml.safe_load(text.replace("\r\n", "\n"))
    except yaml.YAMLError as e:
        raise Invalid(f"not YAML: {e}") from None
    if not isinstance(settings, dict) or not all(isinstance(k, str) for k in settings):
        raise Invalid("the settings are a mapping of field names, like nodeImage: and recordLimit:")
    if fixed := sorted(set(settings) & set(FIXED)):
        raise Invalid(f"{', '.join(fixed)}: not edited here, only the settings")
    return settings


def settings_patch(config: Obj, settings: dict[str, Any], resource_version: str) -> list[Obj]:
    """RFC 6902 operations that make the object's settings exactly ``settings``; the resourceVersion the form was
    read at travels with them, so a save over someone else's change is a 409, not a silent overwrite."""
    ops: list[Obj] = [{"op": "replace", "path": "/metadata/resourceVersion", "value": resource_version}]
    ops += [{"op": "remove", "path": f"/{k}"} for k in config if k not in FIXED and k not in settings]
    ops += [{"op": "add", "path": f"/{k}", "value": v} for k, v in settings.items()]
    return ops


async def framework(request: web.Request, status: int = 200, error: str = "", text: str | None = None
                    ) -> web.Response:  # fmt: skip
    user = user_of(request)
    if not user.grants:
        raise NotFound("nothing here")
    kube, ns = kube_of(request)
    items = []
    for res, kind in ((DEPLOYMENT, "Deployment"), (STATEFULSET, "StatefulSet")):
        for obj in (await kube.list(res, ns, selector=PART_OF)).get("items") or []:
            items.append(workload({**obj, "kind": kind}))
    config = await kube.get(TFRAMEWORKCONFIG, ns, FRAMEWORK_CONFIG)
    settings = text if text is not None else settings_text(config) if config else ""
    return page(request, "framework.html", status=status, title="Framework", config=config, settings=settings,
                workloads=sorted(items, key=lambda w: w.name), can_edit=user.can(FRAMEWORK), error=error)  # fmt: skip


async def show(request: web.Request) -> web.Response:
    return await framework(request)


async def save(request: web.Request) -> web.StreamResponse:
    """New settings for the TFrameworkConfig; the admission webhook has the last word (its refusal is shown)."""
    user_of(request).need(FRAMEWORK)
    kube, ns = kube_of(request)
    values = await form(request)
    text = values.get("settings", "")
    config = await kube.get(TFRAMEWORKCONFIG, ns, FRAMEWORK_CONFIG)
    if config is None:
        raise NotFound(f"no TFrameworkConfig {FRAMEWORK_CONFIG}")
    try:
        ops = settings_patch(config, settings_of(text), values.get("resourceVersion", ""))
        await kube.json_patch(TFRAMEWORKCONFIG, ns, FRAMEWORK_CONFIG, ops)
    except Invalid as e:
        return await framework(request, 422, str(e), text)
    except ApiException as e:
        if e.status not in (400, 403, 409, 422):
            raise
        why = ("someone changed it meanwhile: reload the page to edit the current settings" if e.status == 409
               else f"Kubernetes refused it: {api_message(e)}")  # fmt: skip
        return await framework(request, 422, why, text)
    raise back(request, "ok", f"TFrameworkConfig {FRAMEWORK_CONFIG} saved", URL)


def setup(app: web.Application) -> None:
    app.router.add_get(URL, show)
    app.router.add_post(URL, save)
