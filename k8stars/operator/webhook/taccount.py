"""TAccount admission: a plain password is stored as K8SFramework does (bcrypt of its hex SHA-1); a new password, or
a new bcryptPassword written directly, empties the tokens (K8SFramework's mutating webhook does both)."""

from __future__ import annotations

import json

from k8stars.kube.accounts import check_password, hash_password
from k8stars.kube.client import Obj

from .context import Context, new_object, old_object
from .patch import pointer

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"

__all__ = ["check_password", "hash_password", "mutate", "taccount_patch"]


def _auth(obj: Obj | None) -> Obj:
    auth: Obj = ((obj or {}).get("spec") or {}).get("authentication") or {}
    return auth


def taccount_patch(obj: Obj, old: Obj | None) -> list[Obj]:
    """A plain `password` is replaced by `bcryptPassword`; a new password, or on update a changed bcryptPassword,
    invalidates the tokens."""
    auth = _auth(obj)
    password = auth.get("password")
    if not password:
        new_hash, old_hash = auth.get("bcryptPassword"), _auth(old).get("bcryptPassword")
        if old is not None and new_hash != old_hash and auth.get("tokens"):
            return [{"op": "replace", "path": "/spec/authentication/tokens", "value": []}]
        return []
    ops: list[Obj] = [
        {"op": "remove", "path": "/spec/authentication/password"},
        {"op": "add", "path": "/spec/authentication/bcryptPassword", "value": hash_password(str(password))},
    ]
    old_hash = _auth(old).get("bcryptPassword")
    changed = not (old_hash and check_password(str(password), str(old_hash)))
    if changed and auth.get("tokens"):
        ops.append({"op": "replace", "path": "/spec/authentication/tokens", "value": []})
    return ops


def last_applied_patch(obj: Obj) -> list[Obj]:
    """`kubectl apply` keeps what it applied in an annotation, the plain password included: it is taken out there
    too (the next apply sends it again and gets the same hash, tokens kept), so no plaintext is stored anywhere."""
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    text = annotations.get(LAST_APPLIED)
    if not isinstance(text, str) or "password" not in text:
        return []
    path = pointer("metadata", "annotations", LAST_APPLIED)
    try:
        applied = json.loads(text)
        auth = applied["spec"]["authentication"]
    except (ValueError, KeyError, TypeError):
        return []  # no authentication in it: nothing secret
    if not isinstance(auth, dict) or "password" not in auth:
        return []
    del auth["password"]
    return [{"op": "replace", "path": path, "value": json.dumps(applied, separators=(",", ":")) + "\n"}]


async def mutate(ctx: Context, request: Obj) -> list[Obj]:
    obj = new_object(request)
    return taccount_patch(obj, old_object(request)) + last_applied_patch(obj)
