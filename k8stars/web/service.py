"""``k8stars web`` as an instance of the one service skeleton: a plain HTTP service (no TARS servant) over one
namespace's objects, with ``/metrics`` and ``/healthz`` beside the pages."""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from prometheus_client import CollectorRegistry

from k8stars.kube.client import Kube
from k8stars.service.http import metrics_app, serve_http
from k8stars.service.lifecycle import Service
from k8stars.service.options import HttpServiceOptions, ServiceError

from .app import MAX_BODY, make_app
from .session import Signer, key_from_file, key_from_secret

DEFAULT_SECRET = "tars-web"


class WebError(ServiceError):
    """A bad option of ``k8stars web``."""


@dataclass(kw_only=True)
class WebOptions(HttpServiceOptions):
    namespace: str = ""
    kubeconfig: str | None = None
    session_secret: str = DEFAULT_SECRET  # Secret holding the cookie key (created when missing)
    key_file: str | None = None  # instead of the Secret: a file (generated when missing)
    secure_cookie: bool = False  # behind HTTPS: the cookie is sent over HTTPS only

    error: ClassVar[type[ServiceError]] = WebError

    def check(self) -> None:
        if not self.namespace:
            raise self.error("--namespace is required (env K8STARS_WEB_NAMESPACE or POD_NAMESPACE)")
        super().check()


class WebService(Service[WebOptions]):
    name = "web"

    async def open(self, parts: AsyncExitStack) -> None:
        opts = self.options
        self.kube = await Kube.connect(opts.kubeconfig, field_manager="k8stars-web")
        parts.push_async_callback(self.kube.close)
        if opts.key_file:
            key = key_from_file(Path(opts.key_file).expanduser())
        else:
            key = await key_from_secret(self.kube, opts.namespace, opts.session_secret)
        app = make_app(
            self.kube,
            opts.namespace,
            Signer(key),
            secure_cookie=opts.secure_cookie,
            app=metrics_app(CollectorRegistry(), lambda: f"namespace={opts.namespace}", client_max_size=MAX_BODY),
        )
        self.port = await serve_http(parts, app, opts.host, opts.port, "--port")

    def describe(self) -> str:
        return f"console of namespace {self.options.namespace} on http://{self.options.host}:{self.port}"
