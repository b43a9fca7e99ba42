"""``k8stars web`` as an instance of the one service skeleton: a plain HTTP service (no TARS servant) over one
namespace's objects, with ``/metrics`` and ``/healthz`` beside the pages."""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from prometheus_client import CollectorRegistry

from k8stars.kube.client import Kube
from k8stars.service.bearer import TokenFile
from k8stars.service.http import metrics_app, serve_http
from k8stars.service.lifecycle import Service
from k8stars.service.options import HttpServiceOptions, ServiceError

from .app import MAX_BODY, MAX_UPLOAD_MB, make_app
from .monitoring import Monitor
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
    locator: str = ""  # the registry's QueryObj: finds the query services (monitoring); empty: no monitoring
    log_url: str = ""  # the log service's files view (http://tars-log:9329); empty: pod logs only
    log_token_file: str = ""  # the bearer token that view asks for (its --http-token-file); empty: none sent
    image_url: str = ""  # the image service (http://tars-tarsimage): upload -> build; empty: no uploads
    max_upload_mb: int = MAX_UPLOAD_MB  # the largest package forwarded to it

    error: ClassVar[type[ServiceError]] = WebError

    def log_token(self) -> TokenFile | None:
        return TokenFile(self.log_token_file, "--log-token-file") if self.log_token_file else None

    def check(self) -> None:
        if not self.namespace:
            raise self.error("--namespace is required (env K8STARS_WEB_NAMESPACE or POD_NAMESPACE)")
        if self.log_url and not self.log_url.startswith(("http://", "https://")):
            raise self.error(f"--log-url {self.log_url!r}: expected http://HOST:PORT")
        if self.log_token_file:
            if not self.log_url:
                raise self.error("--log-token-file needs --log-url (the log service it is sent to)")
            try:
                TokenFile(self.log_token_file, "--log-token-file").read()
            except (OSError, ValueError) as e:
                raise self.error(str(e)) from None
        if self.image_url and not self.image_url.startswith(("http://", "https://")):
            raise self.error(f"--image-url {self.image_url!r}: expected http://HOST[:PORT]")
        if self.max_upload_mb < 1:
            raise self.error(f"--max-upload {self.max_upload_mb}: at least 1 (MiB)")
        if self.locator and "@" not in self.locator:
            raise self.error(f"--locator {self.locator!r}: expected tars.tarsregistry.QueryObj@tcp -h HOST -p PORT")
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
        monitor = Monitor(opts.locator)
        parts.push_async_callback(monitor.close)
        app = make_app(
            self.kube,
            opts.namespace,
            Signer(key),
            secure_cookie=opts.secure_cookie,
            monitor=monitor,
            log_url=opts.log_url,
            log_token=opts.log_token(),
            image_url=opts.image_url,
            max_upload_mb=opts.max_upload_mb,
            app=metrics_app(CollectorRegistry(), lambda: f"namespace={opts.namespace}", client_max_size=MAX_BODY),
        )
        self.port = await serve_http(parts, app, opts.host, opts.port, "--port")

    def describe(self) -> str:
        return f"console of namespace {self.options.namespace} on http://{self.options.host}:{self.port}"
