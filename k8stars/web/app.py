"""The console's aiohttp application: the session, CSRF and login checks every request passes, then the pages."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from importlib import resources

from aiohttp import web
from yarl import URL

from k8stars.kube.client import ApiException, Kube
from k8stars.service.bearer import TokenFile

from . import accounts
from .keys import (
    ACCOUNT,
    IMAGE_URL,
    KUBE,
    LOG_TOKEN,
    LOG_URL,
    MAX_UPLOAD,
    MONITOR,
    NAMESPACE,
    SECURE,
    SESSION,
    SIGNER,
    THROTTLE,
    USER,
)
from .monitoring import Monitor
from .render import ENV_KEY, environment, page
from .roles import Forbidden, NotFound, User
from .session import COOKIE, MAX_AGE, Session, Signer
from .throttle import Throttle

log = logging.getLogger("k8stars.web")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_BODY = 2 * 1024 * 1024  # a config version may have 1.56 MB (the TConfig limit), sent as a form
PUBLIC = ("/login", "/static/", "/healthz", "/metrics")  # reachable without a login
UNACTIVATED = ("/password", "/logout")  # all an account that must choose its password may reach
STREAMED = frozenset({"upload"})  # routes (by name) that stream their own body: they check the CSRF token themselves
MAX_UPLOAD_MB = 200  # the largest package the console forwards (the image service's own default limit)


def bearer(request: web.Request) -> str | None:
    """The API token of ``Authorization: Bearer <token>``; None without one."""
    kind, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if kind.lower() == "bearer" else None


def public(path: str) -> bool:
    return any(path == p or (p.endswith("/") and path.startswith(p)) for p in PUBLIC)


@web.middleware
async def session_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every visitor has a signed session (anonymous before login): it carries the CSRF token of the login form."""
    signer = request.app[SIGNER]
    session = signer.load(request.cookies.get(COOKIE)) or Session()
    request[SESSION] = session
    try:
        response = await handler(request)
    except web.HTTPException as e:  # redirects carry the cookie too (flash messages, login)
        response = e
    if session.changed:
        response.set_cookie(COOKIE, signer.dump(session), max_age=MAX_AGE, httponly=True, samesite="Strict",
                            secure=request.app[SECURE], path="/")  # fmt: skip
    if isinstance(response, web.HTTPException):
        raise response
    response.headers.setdefault("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    return response


@web.middleware
async def csrf_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every POST carries the session's token (form field ``_csrf`` or header ``X-CSRF-Token``); else 403 and
    nothing done."""
    # A token request carries no cookie authority: a cross-site page cannot set the header (no CORS is answered).
    # A streamed upload is not read here (it would be held whole): its handler checks the token, the form's first
    # field, before anything else of the body is read.
    if request.method not in ("GET", "HEAD", "OPTIONS") and bearer(request) is None:
        if request.match_info.route.name in STREAMED:
            return await handler(request)
        form = await request.post()
        check_csrf(request, str(form.get("_csrf") or request.headers.get("X-CSRF-Token") or ""))
    return await handler(request)


def check_csrf(request: web.Request, given: str) -> None:
    """403 unless ``given`` is the session's CSRF token."""
    if not given or not hmac.compare_digest(given, request[SESSION].csrf):
        log.warning("refused %s %s: missing or wrong CSRF token", request.method, request.path)
        raise web.HTTPForbidden(text="CSRF token missing or wrong: reload the page and try again")


@web.middleware
async def login_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Outside the public paths, a logged-in user whose account still exists with the password of the login (a new
    password ends other sessions); roles are read fresh on every request, so a revoked role takes effect at once."""
    if public(request.path):
        return await handler(request)
    token = bearer(request)
    if token is not None:  # a script: the token's account, never the cookie's
        account = await accounts.by_token(request.app[KUBE], request.app[NAMESPACE], token)
        if account is None:
            raise web.HTTPUnauthorized(text="unknown, expired or invalid API token")
        request[USER], request[ACCOUNT] = User.of(account), account
        return await handler(request)
    session: Session = request[SESSION]
    account = None
    if session.user:
        account = await accounts.find(request.app[KUBE], request.app[NAMESPACE], session.user)
    signer = request.app[SIGNER]
    if account is None or not hmac.compare_digest(signer.fingerprint(accounts.password_hash(account)), session.pw):
        if session.user:
            session.login("", "")
        if request.method != "GET":
            raise web.HTTPForbidden(text="not logged in")
        raise web.HTTPFound("/login")
    request[USER] = User.of(account)
    request[ACCOUNT] = account
    if not accounts.activated(account) and request.path not in UNACTIVATED:
        raise web.HTTPFound("/password")
    return await handler(request)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A role refusal is a 403 page; a refusal from the API server (a webhook's answer) goes back to the page."""
    try:
        return await handler(request)
    except Forbidden as e:
        log.warning("refused %s %s to %s: %s", request.method, request.path, request[USER].username, e)
        return page(request, "error.html", status=403, title="Not allowed", message=str(e))
    except NotFound as e:
        return page(request, "error.html", status=404, title="Not found", message=str(e))
    except ApiException as e:
        message = f"Kubernetes refused it: {e.status} {e.reason}"
        if e.status in (400, 403, 409, 422):
            message += ": " + api_message(e)
        if request.method == "POST":
            request[SESSION].say("error", message)
            raise web.HTTPSeeOther(same_site(request.headers.get("Referer", ""))) from None
        return page(request, "error.html", status=502, title="Kubernetes error", message=message)


def same_site(url: str) -> str:
    """The path (and query) of ``url``: a redirect back never leaves the console."""
    path = URL(url).path_qs if url else "/"
    return path if path.startswith("/") and not path.startswith("//") else "/"


def api_message(e: ApiException) -> str:
    import json

    try:
        return str(json.loads(e.body or "{}").get("message") or "")[:300]
    except ValueError:
        return str(e.body or "")[:300]


def make_app(kube: Kube, namespace: str, signer: Signer, *, secure_cookie: bool = False,
             app: web.Application | None = None, monitor: Monitor | None = None,
             log_url: str = "", log_token: TokenFile | None = None, image_url: str = "",
             max_upload_mb: int = MAX_UPLOAD_MB) -> web.Application:  # fmt: skip
    """The console over ``namespace``; ``app``: an application to add to (the service's, with /metrics);
    ``monitor``: the query services (none: the monitoring page says so); ``log_url``: the log service's files view
    (none: the logs page shows pod logs only), ``log_token`` the bearer token it asks for; ``image_url``: the image
    service uploads are built by (none: the releases page says so), ``max_upload_mb`` the largest package it is
    given."""
    from .pages import accounts as accounts_page
    from .pages import (
        commands,
        configs,
        edit,
        events,
        framework,
        login,
        logs,
        monitoring,
        nodes,
        release,
        server,
        templates,
        tokens,
        tree,
        upload,
    )

    app = app or web.Application(client_max_size=MAX_BODY)
    app.middlewares.extend([session_middleware, csrf_middleware, login_middleware, error_middleware])
    app[KUBE], app[NAMESPACE], app[SIGNER], app[SECURE] = kube, namespace, signer, secure_cookie
    app[THROTTLE] = Throttle()
    app[MONITOR] = monitor or Monitor("")
    app[LOG_URL], app[LOG_TOKEN] = log_url.rstrip("/"), log_token
    app[IMAGE_URL], app[MAX_UPLOAD] = image_url.rstrip("/"), max_upload_mb << 20
    app[ENV_KEY] = environment()
    static = resources.files("k8stars.web") / "static"
    app.router.add_static("/static/", str(static), append_version=False)
    for module in (login, tokens, tree, server, release, configs, events, templates, framework, accounts_page,
                   monitoring, nodes, edit, logs, commands, upload):  # fmt: skip
        module.setup(app)
    return app
