"""The framework itself (classic TARS users could not see it: Tars#48): the namespace's framework services (the
Deployments and StatefulSets of the k8stars charts) with their readiness, and the TFrameworkConfig."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from k8stars.kube.client import Obj, Resource
from k8stars.kube.resources import STATEFULSET, TFRAMEWORKCONFIG

from ..render import page
from ..roles import NotFound
from .common import kube_of, user_of

DEPLOYMENT = Resource("apps", "v1", "deployments", "Deployment")
PART_OF = "app.kubernetes.io/part-of=k8stars"  # the charts' label on every framework workload
FRAMEWORK_CONFIG = "tars-framework"


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


async def framework(request: web.Request) -> web.Response:
    if not user_of(request).grants:
        raise NotFound("nothing here")
    kube, ns = kube_of(request)
    items = []
    for res, kind in ((DEPLOYMENT, "Deployment"), (STATEFULSET, "StatefulSet")):
        for obj in (await kube.list(res, ns, selector=PART_OF)).get("items") or []:
            items.append(workload({**obj, "kind": kind}))
    config = await kube.get(TFRAMEWORKCONFIG, ns, FRAMEWORK_CONFIG)
    return page(request, "framework.html", title="Framework", workloads=sorted(items, key=lambda w: w.name),
                config=config)  # fmt: skip


def setup(app: web.Application) -> None:
    app.router.add_get("/framework", framework)
