"""What the application holds, by typed key: the Kubernetes client, the namespace, the cookie signer."""

from __future__ import annotations

from aiohttp import web

from k8stars.kube.client import Kube

from .session import Signer

KUBE = web.AppKey("kube", Kube)
NAMESPACE = web.AppKey("namespace", str)
SIGNER = web.AppKey("signer", Signer)
SECURE = web.AppKey("secure_cookie", bool)
