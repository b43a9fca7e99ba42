"""Login, logout and choosing a password (the first login of an account that is not activated, or after an admin
reset it)."""

from __future__ import annotations

import logging

from aiohttp import web

from .. import accounts
from ..keys import ACCOUNT, SESSION, SIGNER, THROTTLE
from ..render import page
from .common import back, form, kube_of

log = logging.getLogger("k8stars.web")


async def login_form(request: web.Request) -> web.Response:
    return page(request, "login.html", title="Log in")


async def login(request: web.Request) -> web.StreamResponse:
    values = await form(request)
    kube, ns = kube_of(request)
    username = values.get("username", "")[:64]
    throttle = request.app[THROTTLE]
    if throttle.blocked(username):
        log.warning("login of %r refused: too many failures", username[:32])
        return page(request, "login.html", status=429, title="Log in",
                    error="too many failed logins for this user: wait a few minutes")  # fmt: skip
    account = await accounts.verify(kube, ns, username, values.get("password", ""))
    if account is None:
        throttle.failed(username)
        log.info("login refused for %r", username[:32])
        return page(request, "login.html", status=401, title="Log in", error="wrong user name or password")
    throttle.succeeded(username)
    request[SESSION].login(username, request.app[SIGNER].fingerprint(accounts.password_hash(account)))
    raise web.HTTPSeeOther("/" if accounts.activated(account) else "/password")


async def logout(request: web.Request) -> web.StreamResponse:
    request[SESSION].login("", "")
    raise web.HTTPSeeOther("/login")


async def password_form(request: web.Request) -> web.Response:
    account = request[ACCOUNT]
    return page(request, "password.html", title="Your account", first=not accounts.activated(account),
                tokens=accounts.tokens(account))  # fmt: skip


async def set_password(request: web.Request) -> web.StreamResponse:
    """The owner's new password; the current one is asked again (a stolen session cannot lock its owner out)."""
    values = await form(request)
    kube, ns = kube_of(request)
    account = request[ACCOUNT]
    username = account["spec"]["username"]
    new = values.get("new", "")
    error = accounts.valid_password(new)
    if not error and new != values.get("repeat"):
        error = "the two new passwords differ"
    if not error and await accounts.verify(kube, ns, username, values.get("current", "")) is None:
        error = "the current password is wrong"
    if not error and new == values.get("current"):
        error = "choose a password other than the current one"
    if error:
        first = not accounts.activated(account)
        return page(request, "password.html", status=400, title="Your account", first=first, error=error,
                    tokens=accounts.tokens(account))  # fmt: skip
    updated = await accounts.set_password(kube, ns, account, new, activate=True)
    request[SESSION].login(username, request.app[SIGNER].fingerprint(accounts.password_hash(updated)))
    raise back(request, "ok", "password changed", "/")


def setup(app: web.Application) -> None:
    app.router.add_get("/login", login_form)
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)
    app.router.add_get("/password", password_form)
    app.router.add_post("/password", set_password)
