"""A user's own API tokens (TAccount ``spec.authentication.tokens``, as K8SFramework keeps them): create one (its
content shown once), delete one. Scripts send ``Authorization: Bearer <token>`` and act with the account's roles."""

from __future__ import annotations

from aiohttp import web

from .. import accounts
from ..keys import ACCOUNT
from ..render import page
from .common import back, form, kube_of

URL = "/password"  # the account page lists the tokens


async def create(request: web.Request) -> web.StreamResponse:
    kube, ns = kube_of(request)
    values = await form(request)
    name, days = values.get("name", "").strip(), values.get("days", "")
    if not accounts.TOKEN_NAME.match(name):
        raise back(request, "error", "token name: 2 to 32 printable ASCII characters, no spaces", URL)
    if not days.isdigit() or not 1 <= int(days) <= accounts.MAX_TOKEN_DAYS:
        raise back(request, "error", f"days: 1 to {accounts.MAX_TOKEN_DAYS}", URL)
    content = await accounts.add_token(kube, ns, request[ACCOUNT], name, int(days))
    # Shown in this answer only: never in a cookie, a redirect or a log.
    response = page(request, "token.html", title="New API token", name=name, token=content, days=int(days))
    response.headers["Cache-Control"] = "no-store"
    return response


async def delete(request: web.Request) -> web.StreamResponse:
    kube, ns = kube_of(request)
    name = request.match_info["token"]
    if not await accounts.remove_token(kube, ns, request[ACCOUNT], name):
        raise back(request, "error", f"no token {name}", URL)
    raise back(request, "ok", f"token {name} deleted", URL)


def setup(app: web.Application) -> None:
    app.router.add_post("/tokens", create)
    app.router.add_post("/tokens/{token}/delete", delete)
