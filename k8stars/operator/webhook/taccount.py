"""TAccount admission: a plain password is stored as K8SFramework does (bcrypt of its hex SHA-1); a new password
empties the tokens."""

from __future__ import annotations

import hashlib

from k8stars.kube.client import Obj

from .context import Context, new_object, old_object


def hash_password(password: str) -> str:
    """K8SFramework's stored form: bcrypt of the hex SHA-1 of the password."""
    import bcrypt  # only the webhook needs it

    digest = hashlib.sha1(password.encode()).hexdigest().encode()
    return str(bcrypt.hashpw(digest, bcrypt.gensalt()).decode())


def check_password(password: str, hashed: str) -> bool:
    import bcrypt

    digest = hashlib.sha1(password.encode()).hexdigest().encode()
    return bool(bcrypt.checkpw(digest, hashed.encode()))


def taccount_patch(obj: Obj, old: Obj | None) -> list[Obj]:
    """A plain `password` is replaced by `bcryptPassword`; a new password invalidates the tokens."""
    auth = ((obj.get("spec") or {}).get("authentication")) or {}
    password = auth.get("password")
    if not password:
        return []
    ops: list[Obj] = [
        {"op": "remove", "path": "/spec/authentication/password"},
        {"op": "add", "path": "/spec/authentication/bcryptPassword", "value": hash_password(str(password))},
    ]
    old_hash = (((old or {}).get("spec") or {}).get("authentication") or {}).get("bcryptPassword")
    changed = not (old_hash and check_password(str(password), str(old_hash)))
    if changed and auth.get("tokens"):
        ops.append({"op": "replace", "path": "/spec/authentication/tokens", "value": []})
    return ops


async def mutate(ctx: Context, request: Obj) -> list[Obj]:
    return taccount_patch(new_object(request), old_object(request))
