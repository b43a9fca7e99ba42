"""TTree admission: one per namespace, named tars-tree; an app whose businessRef names no business gets ""."""

from __future__ import annotations

from k8stars.kube.client import Obj

from .context import Context, new_object

TREE_NAME = "tars-tree"


def validate_ttree(obj: Obj) -> list[str]:
    name = (obj.get("metadata") or {}).get("name")
    if name != TREE_NAME:
        return [f"the TTree of a namespace is named {TREE_NAME!r}, not {name!r}"]
    return []


def ttree_patch(obj: Obj) -> list[Obj]:
    """An app whose businessRef names no business gets businessRef ""."""
    businesses = {b.get("name") for b in obj.get("businesses") or []}
    return [
        {"op": "replace", "path": f"/apps/{i}/businessRef", "value": ""}
        for i, app in enumerate(obj.get("apps") or [])
        if app.get("businessRef") and app.get("businessRef") not in businesses
    ]


async def mutate(ctx: Context, request: Obj) -> list[Obj]:
    return ttree_patch(new_object(request))


async def validate(ctx: Context, request: Obj) -> list[str]:
    return validate_ttree(new_object(request))
