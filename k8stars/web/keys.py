"""What the application holds, by typed key: the Kubernetes client, the namespace, the cookie signer."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from k8stars.kube.client import Kube
from k8stars.service.bearer import TokenFile

from .monitoring import Monitor
from .session import Signer
from .throttle import Throttle

KUBE = web.AppKey("kube", Kube)
NAMESPACE = web.AppKey("namespace", str)
SIGNER = web.AppKey("signer", Signer)
SECURE = web.AppKey("secure_cookie", bool)
THROTTLE = web.AppKey("throttle", Throttle)
MONITOR = web.AppKey("monitor", Monitor)  # the query services through the registry
LOG_URL = web.AppKey("log_url", str)  # the log service's files view (k8stars log --http-port); "": none
LOG_TOKEN: web.AppKey[TokenFile | None] = web.AppKey("log_token")  # the token that view asks for; None: none
IMAGE_URL = web.AppKey("image_url", str)  # the image service (k8stars image serve, tars-tarsimage); "": none
MAX_UPLOAD = web.AppKey("max_upload", int)  # the largest package forwarded to it (bytes)


def _request_key(name: str) -> Any:
    """A typed request key where aiohttp has them (3.14+: a plain string key warns), else the string."""
    make = getattr(web, "RequestKey", None)
    return make(name, object) if make is not None else name


SESSION = _request_key("session")  # the Session of the request's cookie
USER = _request_key("user")  # the logged-in roles.User
ACCOUNT = _request_key("account")  # the logged-in user's TAccount
