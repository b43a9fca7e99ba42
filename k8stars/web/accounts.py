"""TAccounts as the console reads and writes them: found by name (md5 of the username, K8SFramework's naming), login
checked against ``spec.authentication.bcryptPassword``, a new password stored hashed and the account activated."""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from datetime import UTC, datetime, timedelta

from k8stars.kube.accounts import activated as activated  # the readers live in kube (the admin registry's too)
from k8stars.kube.accounts import by_token as by_token
from k8stars.kube.accounts import check_password, hash_password
from k8stars.kube.accounts import find as find
from k8stars.kube.accounts import object_name as object_name
from k8stars.kube.accounts import token_live as token_live
from k8stars.kube.accounts import tokens as tokens
from k8stars.kube.client import Kube, Obj
from k8stars.kube.resources import TACCOUNT

USERNAME = re.compile(r"^[\x21-\x7e]{2,16}$")  # the CRD's pattern, without the Han characters
PASSWORD = re.compile(r"^[\x21-\x7e]{6,32}$")
TOKEN_NAME = re.compile(r"^[\x21-\x7e]{2,32}$")  # the CRD's pattern
MAX_TOKEN_DAYS = 366


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def password_hash(account: Obj) -> str:
    return str(((account.get("spec") or {}).get("authentication") or {}).get("bcryptPassword") or "")


async def verify(kube: Kube, namespace: str, username: str, password: str) -> Obj | None:
    """The account when the password matches; bcrypt runs in a thread (it is slow on purpose)."""
    account = await find(kube, namespace, username)
    hashed = password_hash(account) if account else ""
    if account is None or not hashed:
        await asyncio.to_thread(check_password, password, "$2a$10$" + "x" * 53)  # same time as a wrong password
        return None
    return account if await asyncio.to_thread(check_password, password, hashed) else None


def valid_password(password: str) -> str:
    """Why ``password`` cannot be a TAccount password (the CRD's rule), or ''."""
    return "" if PASSWORD.match(password) else "a password has 6 to 32 printable ASCII characters, no spaces"


async def set_password(kube: Kube, namespace: str, account: Obj, password: str, *, activate: bool) -> Obj:
    """Store ``password`` hashed; ``activate``: the owner chose it (False: an admin reset it, the owner must choose
    a new one at the next login). A new password invalidates the API tokens, as K8SFramework's webhook does."""
    hashed = await asyncio.to_thread(hash_password, password)
    auth: Obj = {"password": None, "bcryptPassword": hashed, "activated": activate, "tokens": []}
    patch = {"spec": {"authentication": auth}}
    result: Obj = await kube.merge_patch(TACCOUNT, namespace, account["metadata"]["name"], patch)
    return result


async def create(kube: Kube, namespace: str, username: str, password: str, role: str, flag: str) -> Obj:
    """A new account with an initial password its owner replaces at the first login."""
    hashed = await asyncio.to_thread(hash_password, password)
    body: Obj = {
        "apiVersion": TACCOUNT.api_version, "kind": "TAccount",
        "metadata": {"name": object_name(username)},
        "spec": {"username": username,
                 "authentication": {"bcryptPassword": hashed, "activated": False, "tokens": []},
                 "authorization": [{"role": role, "flag": flag, "updateTime": now()}]},
    }  # fmt: skip
    result: Obj = await kube.create(TACCOUNT, namespace, body)
    return result


async def _write_tokens(kube: Kube, namespace: str, account: Obj, new: list[Obj]) -> None:
    """Replace the tokens, unless the account changed since it was read (a password change meanwhile must not get
    back the tokens it cleared): a 422 from the failed test."""
    md = account["metadata"]
    patch: list[Obj] = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": md["resourceVersion"]},
        {"op": "add", "path": "/spec/authentication/tokens", "value": new},
    ]
    await kube.json_patch(TACCOUNT, namespace, md["name"], patch)


async def add_token(kube: Kube, namespace: str, account: Obj, name: str, days: int) -> str:
    """A new API token ``name`` (replacing one of that name) valid ``days`` days; returns its content, shown once."""
    content = secrets.token_urlsafe(32)
    expires = datetime.now(UTC) + timedelta(days=days)
    entry = {"name": name, "content": content, "updateTime": now(), "valid": True,
             "expirationTime": expires.strftime("%Y-%m-%dT%H:%M:%SZ")}  # fmt: skip
    await _write_tokens(kube, namespace, account, [*(t for t in tokens(account) if t.get("name") != name), entry])
    return content


async def remove_token(kube: Kube, namespace: str, account: Obj, name: str) -> bool:
    kept = [t for t in tokens(account) if t.get("name") != name]
    if len(kept) == len(tokens(account)):
        return False
    await _write_tokens(kube, namespace, account, kept)
    return True
