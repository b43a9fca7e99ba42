"""Hand edits of the objects the operator owns, found and undone through server-side apply's field ownership.

Every write of the operator is a server-side apply by one field manager, so a field under `spec` (or a ConfigMap's
`data`) owned by any other manager was set by someone else: `kubectl edit`, `kubectl patch`, a script. That is
drift. Undoing it takes two writes: the other managers' ownership of those fields moves to the operator's apply entry
(a JSON patch of `metadata.managedFields`, guarded by the resourceVersion), then the usual forced apply of the
desired object drops every field the operator owns but no longer sends, and puts back every value it sends. Fields
outside the root (labels, annotations someone added) stay theirs. `kubectl rollout restart`'s annotation on the pod
template is not drift: it restarts the pods and changes nothing the TServer says.
"""

from __future__ import annotations

import copy
import time
from typing import Any

from k8stars.kube.client import Obj

# Paths (below the root) that stay with whoever set them.
KEPT: tuple[tuple[str, ...], ...] = (
    ("f:template", "f:metadata", "f:annotations", "f:kubectl.kubernetes.io/restartedAt"),
)


def _pop(tree: dict[str, Any], path: tuple[str, ...]) -> Any:
    """Remove `path` from a fieldsV1 tree (pruning parents left empty); the removed subtree or None."""
    node = tree.get(path[0])
    if not isinstance(node, dict):
        return None
    if len(path) == 1:
        return tree.pop(path[0])
    found = _pop(node, path[1:])
    if found is not None and not (set(node) - {"."}):
        tree.pop(path[0])
    return found


def _put(tree: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for key in path[:-1]:
        tree = tree.setdefault(key, {})
    tree[path[-1]] = value


def _merge(into: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    for key, value in other.items():
        into[key] = _merge(into.get(key) or {}, value) if isinstance(value, dict) else value
    return into


def _ours(entry: Obj, manager: str) -> bool:
    return entry.get("manager") == manager and entry.get("operation") == "Apply"


def _foreign(entry: Obj, manager: str, root: str) -> dict[str, Any] | None:
    """The fields under `root` another manager's entry owns (status and other subresources aside)."""
    if entry.get("subresource") or _ours(entry, manager):
        return None
    fields = copy.deepcopy((entry.get("fieldsV1") or {}).get(root))
    if not isinstance(fields, dict):
        return None
    for path in KEPT:
        _pop(fields, path)
    return fields if set(fields) - {"."} else None


def drifted(obj: Obj, manager: str, root: str = "f:spec") -> list[str]:
    """The managers that changed something under `root` of an object only `manager` should write."""
    entries = (obj.get("metadata") or {}).get("managedFields") or []
    return [str(e.get("manager")) for e in entries if _foreign(e, manager, root)]


def takeover_patch(obj: Obj, manager: str, root: str = "f:spec") -> list[Obj]:
    """A JSON patch giving `manager`'s apply entry every field under `root` that others own (KEPT paths aside)."""
    md = obj["metadata"]
    taken: dict[str, Any] = {}
    entries: list[Obj] = []
    for entry in md.get("managedFields") or []:
        part = _foreign(entry, manager, root)
        if part is None:
            entries.append(entry)
            continue
        _merge(taken, part)
        fields = copy.deepcopy(entry.get("fieldsV1") or {})
        rest = fields.pop(root, {})
        for path in KEPT:
            kept = _pop(rest, path)
            if kept is not None:
                _put(fields, (root, *path), kept)
        if fields:
            entries.append({**entry, "fieldsV1": fields})
    ours = next((e for e in entries if _ours(e, manager) and not e.get("subresource")), None)
    if ours is None:
        ours = {
            "manager": manager,
            "operation": "Apply",
            "apiVersion": obj.get("apiVersion", ""),
            "fieldsType": "FieldsV1",
            "fieldsV1": {},
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        entries.append(ours)
    fields = copy.deepcopy(ours.get("fieldsV1") or {})
    fields[root] = _merge(fields.get(root) or {}, taken)
    entries[entries.index(ours)] = {**ours, "fieldsV1": fields}
    return [
        {"op": "test", "path": "/metadata/resourceVersion", "value": md["resourceVersion"]},
        {"op": "replace", "path": "/metadata/managedFields", "value": entries},
    ]
