"""What the application holds, by typed key: the Kubernetes client, the namespace, the cookie signer."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from k8stars.kube.client import Kube

from .session import Signer
from .throttle import Throttle

KUBE = web.AppKey("kube", Kube)
NAMESPACE = web.AppKey("namespace", str)
SIGNER = web.AppKey("signer", Signer)
SECURE = web.AppKey("secure_cookie", bool)
THROTTLE = web.AppKey("throttle", Throttle)


def _request_key(name: str) -> Any:
    """A typed request key where aiohttp has them (3.14+: a plain string key warns), else the string."""
    make = getattr(web, "RequestKey", None)
    return make(name, object) if make is not None else name


SESSION = _request_key("session")  # the Session of the request's cookie
USER = _request_key("user")  # the logged-in roles.User
ACCOUNT = _request_key("account")  # the logged-in user's TAccount
