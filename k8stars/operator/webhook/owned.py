"""The StatefulSets, DaemonSets and Services the operator owns: only it (and Kubernetes) may change or delete them."""

from __future__ import annotations

from k8stars.kube import meta
from k8stars.kube.client import Obj

from .context import username as request_username
from .identity import is_system_user

OWNED_KINDS = ("StatefulSet", "DaemonSet", "Service")


def check_owned(request: Obj, owners: set[str]) -> str | None:
    """Refusal message when someone other than the operator (or Kubernetes) changes an object it owns."""
    username = request_username(request)
    if username in owners or is_system_user(username):
        return None
    obj: Obj = request.get("oldObject") or request.get("object") or {}
    md = obj.get("metadata") or {}
    owner = next(
        (r for r in md.get("ownerReferences") or [] if r.get("kind") == "TServer" and r.get("controller")), None
    )
    if owner is None or meta.SERVER_APP not in (md.get("labels") or {}):
        return None
    kind = request.get("kind", {}).get("kind")
    verb = "deleted" if request.get("operation") == "DELETE" else "changed"
    return (
        f"{kind} {md.get('name')} is managed by the k8stars operator for TServer {owner.get('name')} and cannot be "
        f"{verb} by {username}: edit the TServer instead (the operator would undo changes made here)"
    )
