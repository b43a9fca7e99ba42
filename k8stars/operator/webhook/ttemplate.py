"""TTemplate admission: label tars.io/Parent; content not empty, the parent exists; no deletion while a child
template or a TServer uses it."""

from __future__ import annotations

from k8stars.kube import meta
from k8stars.kube.client import Obj
from k8stars.kube.resources import TSERVER, TTEMPLATE

from .context import Context, namespace, new_object, old_object, username
from .identity import is_system_user
from .patch import label_patch, pointer


def ttemplate_patch(obj: Obj) -> list[Obj]:
    """Label tars.io/Parent with the parent (absent when the template is its own parent)."""
    parent = (obj.get("spec") or {}).get("parent")
    labels = (obj.get("metadata") or {}).get("labels") or {}
    if parent and parent != (obj.get("metadata") or {}).get("name"):
        return label_patch(obj, {meta.PARENT: str(parent)})
    if meta.PARENT in labels:
        return [{"op": "remove", "path": pointer("metadata", "labels", meta.PARENT)}]
    return []


def validate_ttemplate(obj: Obj, old: Obj | None) -> list[str]:
    spec = obj.get("spec") or {}
    if not str(spec.get("content", "")).strip():
        return ["spec.content is empty"]
    return []


async def parent_exists(ctx: Context, namespace: str, obj: Obj) -> list[str]:
    parent = (obj.get("spec") or {}).get("parent")
    if ctx.lookups is None or not parent or parent == obj.get("metadata", {}).get("name"):
        return []
    if await ctx.lookups.get_confirmed(TTEMPLATE, namespace, str(parent)) is None:
        return [f"spec.parent {parent!r} does not exist: create the parent TTemplate first"]
    return []


async def mutate(ctx: Context, request: Obj) -> list[Obj]:
    return ttemplate_patch(new_object(request))


async def validate(ctx: Context, request: Obj) -> list[str]:
    obj = new_object(request)
    return validate_ttemplate(obj, old_object(request)) + await parent_exists(ctx, namespace(request), obj)


async def deletion_refusal(ctx: Context, request: Obj) -> str | None:
    """A TTemplate used by a child template or a TServer cannot be deleted; by anyone but Kubernetes itself
    (namespace deletion and garbage collection must never be blocked)."""
    if ctx.lookups is None or is_system_user(username(request)):
        return None
    name = str(request.get("name") or (request.get("oldObject") or {}).get("metadata", {}).get("name", ""))
    # Read live, never from the caches: they may lag both ways (a user created or gone a moment ago), and a
    # deletion let through wrongly cannot be undone; deletions are rare, two list calls cheap.
    users = await _users(ctx, namespace(request), name)
    return f"TTemplate {name} cannot be deleted: it is used by {', '.join(users)}" if users else None


async def _users(ctx: Context, ns: str, name: str) -> list[str]:
    assert ctx.lookups is not None
    children = [
        t["metadata"]["name"]
        for t in await ctx.lookups.list(TTEMPLATE, ns, live=True)
        if (t.get("spec") or {}).get("parent") == name and t["metadata"]["name"] != name
    ]
    servers = [
        t["metadata"]["name"]
        for t in await ctx.lookups.list(TSERVER, ns, live=True)
        if ((t.get("spec") or {}).get("tars") or {}).get("template") == name
    ]
    return [f"TTemplate {c}" for c in children] + [f"TServer {t}" for t in servers]
