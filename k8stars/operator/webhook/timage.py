"""TImage admission: releases with a duplicate id keep the first in order."""

from __future__ import annotations

from k8stars.kube.client import Obj

from .context import Context, new_object


def timage_patch(obj: Obj) -> list[Obj]:
    """Releases with a duplicate id: the first in order is kept."""
    releases = obj.get("releases") or []
    seen: set[str] = set()
    kept = []
    for release in releases:
        if release.get("id") in seen:
            continue
        seen.add(str(release.get("id")))
        kept.append(release)
    return [] if len(kept) == len(releases) else [{"op": "replace", "path": "/releases", "value": kept}]


async def mutate(ctx: Context, request: Obj) -> list[Obj]:
    return timage_patch(new_object(request))
