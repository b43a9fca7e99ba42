"""JSON Patch (RFC 6902) operations the mutating hooks answer with."""

from __future__ import annotations

from k8stars.kube.client import Obj


def pointer(*parts: str) -> str:
    """A JSON Pointer (RFC 6901) to `parts`."""
    return "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in parts)


def label_patch(obj: Obj, wanted: dict[str, str]) -> list[Obj]:
    """Set the `wanted` labels (a removed or edited one is put back)."""
    current = (obj.get("metadata") or {}).get("labels")
    if current is None:
        return [{"op": "add", "path": "/metadata/labels", "value": wanted}]
    return [
        {"op": "add", "path": pointer("metadata", "labels", k), "value": v}
        for k, v in wanted.items()
        if current.get(k) != v
    ]
