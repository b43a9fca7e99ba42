"""TServer's scale subresource (`kubectl scale ts ...`, autoscalers): the replicas a Scale asks for get the TServer's
own rule (no release, no pods; within tars.io/MinReplicas and tars.io/MaxReplicas), as a change of spec.k8s.replicas
does. The apiserver sends the Scale, not the TServer, so the TServer is read (issue 16, item 8)."""

from __future__ import annotations

import copy

from k8stars.kube.client import Obj
from k8stars.kube.resources import TSERVER

from .context import Context, Refused, namespace, new_object
from .tserver import replica_bounds, wanted_replicas


def is_tserver_scale(request: Obj) -> bool:
    resource: Obj = request.get("resource") or {}
    return resource.get("resource") == TSERVER.plural and request.get("subResource") == "scale"


def scale_patch(tserver: Obj, scale: Obj) -> list[Obj]:
    """The patch of the Scale that gives it the replicas the TServer's rule allows."""
    requested = (scale.get("spec") or {}).get("replicas", 0)
    if not isinstance(requested, int) or isinstance(requested, bool):
        raise Refused(f"Scale {tserver['metadata']['name']}: spec.replicas must be an integer, not {requested!r}")
    errors = replica_bounds(tserver)[2]
    if errors:
        raise Refused(f"TServer {tserver['metadata']['name']} cannot be scaled: " + "; ".join(errors))
    spec: Obj = tserver.get("spec") or {}
    k8s: Obj = copy.deepcopy(spec.get("k8s") or {})
    k8s["replicas"] = requested
    allowed = wanted_replicas(tserver, k8s, isinstance(spec.get("release"), dict))
    if allowed == requested:
        return []
    return [{"op": "add", "path": "/spec/replicas", "value": allowed}]


async def mutate(ctx: Context, request: Obj) -> list[Obj]:
    if ctx.lookups is None:
        return []
    name = str(request.get("name") or (new_object(request).get("metadata") or {}).get("name", ""))
    tserver = await ctx.lookups.get(TSERVER, namespace(request), name, live=True)  # bounds changed a moment ago count
    if tserver is None:
        return []  # the apiserver answers NotFound itself
    return scale_patch(tserver, new_object(request))
