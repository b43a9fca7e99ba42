"""Accounts (admins only): list, create with an initial password (its owner chooses a new one at the first login),
set the roles, reset a forgotten password (the recovery classic TarsWeb lacks), delete."""

from __future__ import annotations

import time

from aiohttp import web

from k8stars.kube.client import Obj
from k8stars.kube.resources import TACCOUNT

from .. import accounts
from ..render import page
from ..roles import RANKS
from .common import back, form, kube_of, user_of

URL = "/accounts"
MAX_GRANTS = 50


async def account_list(request: web.Request) -> web.Response:
    user_of(request).need("accounts")
    kube, ns = kube_of(request)
    items = sorted((await kube.list(TACCOUNT, ns)).get("items") or [], key=lambda a: str(a["spec"].get("username")))
    return page(request, "accounts.html", title="Accounts", accounts=items, roles=list(RANKS))


def grant_error(role: str, flag: str) -> str:
    if role not in RANKS:
        return f"role: one of {', '.join(RANKS)}"
    if len(flag) > 1600 or any(c.isspace() for c in flag):
        return "scope: * (everywhere), App, or App.Server"
    return ""


async def create(request: web.Request) -> web.StreamResponse:
    user_of(request).need("accounts")
    kube, ns = kube_of(request)
    values = await form(request)
    username, password = values.get("username", ""), values.get("password", "")
    role, flag = values.get("role", ""), values.get("flag", "").strip() or "*"
    error = grant_error(role, flag) or accounts.valid_password(password)
    if not accounts.USERNAME.match(username):
        error = "user name: 2 to 16 printable ASCII characters"
    elif not error and await accounts.find(kube, ns, username) is not None:
        error = f"{username} exists already"
    if error:
        raise back(request, "error", error, URL)
    await accounts.create(kube, ns, username, password, role, flag)
    raise back(request, "ok", f"account {username} created; its owner chooses a password at the first login", URL)


async def _account(request: web.Request) -> Obj:
    user_of(request).need("accounts")
    kube, ns = kube_of(request)
    account = await kube.get(TACCOUNT, ns, request.match_info["account"])
    if account is None:
        raise back(request, "error", "no such account", URL)
    return account


async def set_roles(request: web.Request) -> web.StreamResponse:
    """The roles, one ``role scope`` per line."""
    account = await _account(request)
    kube, ns = kube_of(request)
    grants = []
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    for line in (await form(request)).get("roles", "").splitlines()[:MAX_GRANTS]:
        if not line.strip():
            continue
        role, _, flag = line.strip().partition(" ")
        flag = flag.strip() or "*"
        if error := grant_error(role, flag):
            raise back(request, "error", f"{line.strip()!r}: {error}", URL)
        grants.append({"role": role, "flag": flag, "updateTime": now})
    name = str(account["metadata"]["name"])
    await kube.merge_patch(TACCOUNT, ns, name, {"spec": {"authorization": grants}})
    raise back(request, "ok", f"roles of {account['spec']['username']} set", URL)


async def reset(request: web.Request) -> web.StreamResponse:
    account = await _account(request)
    kube, ns = kube_of(request)
    password = (await form(request)).get("password", "")
    if error := accounts.valid_password(password):
        raise back(request, "error", error, URL)
    await accounts.set_password(kube, ns, account, password, activate=False)
    raise back(request, "ok", f"password of {account['spec']['username']} reset; its owner chooses a new one at "
               "the next login", URL)  # fmt: skip


async def delete(request: web.Request) -> web.StreamResponse:
    account = await _account(request)
    kube, ns = kube_of(request)
    username = account["spec"]["username"]
    if username == user_of(request).username:
        raise back(request, "error", "you cannot delete your own account", URL)
    await kube.delete(TACCOUNT, ns, str(account["metadata"]["name"]))
    raise back(request, "ok", f"account {username} deleted", URL)


def setup(app: web.Application) -> None:
    app.router.add_get(URL, account_list)
    app.router.add_post(URL, create)
    app.router.add_post(URL + "/{account}/roles", set_roles)
    app.router.add_post(URL + "/{account}/reset", reset)
    app.router.add_post(URL + "/{account}/delete", delete)
