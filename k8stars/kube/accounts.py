"""TAccounts as K8SFramework keeps them: passwords as bcrypt of the password's hex SHA-1, in the ``$2a$`` form
(TarsWeb's Node bcrypt refuses ``$2b$``), found by name (md5 of the username), API tokens. Shared by the operator's
admission webhook, the admin registry and the web console."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

from .client import Kube, Obj
from .resources import TACCOUNT
from .tconfigs import parse_time


def sha1_hex(password: str) -> bytes:
    return hashlib.sha1(password.encode()).hexdigest().encode()


def hash_password(password: str) -> str:
    """K8SFramework's stored form: bcrypt of the hex SHA-1 of the password."""
    import bcrypt  # only the webhook and the console need it

    return str(bcrypt.hashpw(sha1_hex(password), bcrypt.gensalt(prefix=b"2a")).decode())


def check_password(password: str, hashed: str) -> bool:
    """Whether ``password`` matches a stored ``bcryptPassword`` (``$2a$`` or ``$2b$``); False for a malformed hash."""
    import bcrypt

    try:
        return bool(bcrypt.checkpw(sha1_hex(password), hashed.encode()))
    except ValueError:
        return False


def object_name(username: str) -> str:
    return hashlib.md5(username.encode()).hexdigest()


def activated(account: Obj) -> bool:
    return bool(((account.get("spec") or {}).get("authentication") or {}).get("activated"))


async def find(kube: Kube, namespace: str, username: str) -> Obj | None:
    """The TAccount of ``username``: by its conventional name, else the one whose spec.username matches."""
    account = await kube.get(TACCOUNT, namespace, object_name(username))
    if account is not None and (account.get("spec") or {}).get("username") == username:
        return account
    for item in (await kube.list(TACCOUNT, namespace)).get("items") or []:
        if (item.get("spec") or {}).get("username") == username:
            found: Obj = item
            return found
    return None


def tokens(account: Obj) -> list[Obj]:
    return list(((account.get("spec") or {}).get("authentication") or {}).get("tokens") or [])


def token_live(token: Obj, now: datetime) -> bool:
    """Valid and not expired (the operator removes expired ones; until it has, they are refused here)."""
    when = parse_time(str(token.get("expirationTime") or ""))
    return token.get("valid", True) is not False and when is not None and when > now


async def by_token(kube: Kube, namespace: str, token: str) -> Obj | None:
    """The activated account one of whose live API tokens is ``token`` (compared in constant time)."""
    if not token or len(token) > 8092:
        return None
    now = datetime.now(UTC)
    for item in (await kube.list(TACCOUNT, namespace)).get("items") or []:
        for t in tokens(item):
            content = str(t.get("content") or "")
            if content and hmac.compare_digest(content.encode(), token.encode()) and token_live(t, now):
                found: Obj = item
                return found if activated(found) else None
    return None
