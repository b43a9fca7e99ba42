"""``k8stars image serve``: K8SFramework's tarsimage HTTP API, so that TarsWeb and scripts written for it work
unchanged.

``POST /api/{version}/timage/{timage}/building[?wait=1|true]`` with the multipart fields ``ServerApp ServerName
ServerType ServerTag ServerFile Secret BaseImage BaseImageSecret CreatePerson Mark`` answers
``{"status", "message", "result": {"id", "image", "secret", "source"}, "handler"}``: 201 once the build started,
or with ``wait`` 200 once it is pushed and recorded (500 with the reason if it failed); 400 for a bad form or
package, 404 for a missing TImage, 409 while another build of that TImage runs ("another task is running"), 413
for an upload over the limit, 408 for one slower than ``--upload-timeout``, 429 when ``--max-builds`` builds are in
progress already (nothing is read or recorded: try again), 500 otherwise. Also ``/healthz`` and ``/metrics``.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from aiohttp import BodyPartReader, web
from prometheus_client import CollectorRegistry, Counter, Gauge

from k8stars.kube.client import ApiException, Kube
from k8stars.service.http import metrics_app, serve_http
from k8stars.service.lifecycle import Service
from k8stars.service.options import HttpServiceOptions, ServiceError

from .builder import MAX_BUILDS, Builder, BuildRequest
from .package import PackageLimits, remove_scratch
from .timage import BuildRefused

__all__ = ["ImageService", "ImageServiceError", "ImageServiceOptions", "image_app"]

log = logging.getLogger("k8stars.image")

DEFAULT_PORT = 8080  # the chart's Service tars-tarsimage answers on 80, as K8SFramework's does
MAX_FIELD = 64 << 10
FIELDS = {
    "ServerApp": "server_app",
    "ServerName": "server_name",
    "ServerType": "server_type",
    "ServerTag": "server_tag",
    "Secret": "secret",
    "BaseImage": "base_image",
    "BaseImageSecret": "base_image_secret",
    "CreatePerson": "create_person",
    "Mark": "mark",
}


class ImageServiceError(ServiceError):
    """An option of `k8stars image serve` that cannot work."""


@dataclass(kw_only=True)
class ImageServiceOptions(HttpServiceOptions):
    port: int = DEFAULT_PORT
    namespace: str = ""
    kubeconfig: str | None = None
    max_builds: int = MAX_BUILDS
    max_upload_mb: int = 200
    max_unpacked_mb: int = 2048  # a package's size once unpacked: beyond, a size bomb
    upload_timeout: float = 400.0  # seconds to receive the form (K8SFramework's read timeout): a stalled upload
    # would otherwise hold one of the build slots forever
    work_dir: str | None = None  # uploads and layers in progress (default: the system's temporary directory)
    plain_http: bool | None = None  # None: plain HTTP for registries on loopback addresses only

    error: ClassVar[type[ServiceError]] = ImageServiceError

    def check(self) -> None:
        super().check()
        if not self.namespace:
            raise self.error("--namespace is required (env K8STARS_IMAGE_NAMESPACE or POD_NAMESPACE)")
        if self.max_builds < 1:
            raise self.error(f"--max-builds {self.max_builds}: at least 1")
        if self.max_upload_mb < 1 or self.max_unpacked_mb < 1:
            raise self.error("--max-upload and --max-unpacked: at least 1 (MiB)")
        if self.upload_timeout <= 0:
            raise self.error(f"--upload-timeout {self.upload_timeout}: more than 0 (seconds)")


class _TooBig(Exception):
    pass


def _reply(status: int, message: str, handler: str, result: dict[str, str] | None = None) -> web.Response:
    body: dict[str, Any] = {"status": status, "message": message}
    if result is not None:
        body["result"] = result
    body["handler"] = handler
    headers = {"Retry-After": "5"} if status == 429 else None
    return web.json_response(body, status=status, headers=headers)


async def _read_form(request: web.Request, scratch: Path, cap: int) -> tuple[dict[str, str], str | None, Path]:
    """The form's fields, the upload's file name and where it was saved (at most ``cap`` bytes)."""
    fields: dict[str, str] = {}
    filename: str | None = None
    saved = scratch / "upload"
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            continue
        if part.name == "ServerFile":
            filename = part.filename or ""
            size = 0
            with saved.open("wb") as out:
                while chunk := await part.read_chunk(1 << 20):
                    size += len(chunk)
                    if size > cap:
                        raise _TooBig(f"ServerFile is over the upload limit ({cap >> 20} MiB)")
                    await asyncio.to_thread(out.write, chunk)
        elif part.name:
            value = await part.read(decode=True)
            if len(value) > MAX_FIELD:
                raise ValueError(f"field {part.name} is over {MAX_FIELD} bytes")
            fields[part.name] = value.decode("utf-8", errors="replace").strip()
    return fields, filename, saved


def image_app(builder: Builder, max_upload: int, upload_timeout: float = 400.0,
              registry: CollectorRegistry | None = None) -> web.Application:  # fmt: skip
    registry = registry or CollectorRegistry()
    builds = Counter("k8stars_image_builds", "Build requests by answer status", ["status"], registry=registry)
    running = Gauge("k8stars_image_builds_in_progress", "Uploads and builds in progress", registry=registry)
    running.set_function(lambda: builder.slots)

    async def building(request: web.Request) -> web.Response:
        response = await _building(request)
        builds.labels(str(response.status)).inc()
        return response

    async def _building(request: web.Request) -> web.Response:
        handler = builder.handler
        if not builder.reserve():
            return _reply(429, f"too many builds in progress ({builder.max_builds}): try again later", handler)
        scratch = builder.scratch()
        handed_over = False
        try:
            try:
                fields, filename, saved = await asyncio.wait_for(_read_form(request, scratch, max_upload),
                                                                 upload_timeout)  # fmt: skip
            except _TooBig as e:
                return _reply(413, str(e), handler)
            except TimeoutError:
                return _reply(408, f"the upload took longer than {upload_timeout:g} s", handler)
            except (ValueError, AssertionError) as e:  # not multipart, a broken body
                return _reply(400, f"parse form error: {e}", handler)
            except ConnectionError:  # the sender went away mid-upload (e.g. a console cutting one over its limit)
                return _reply(400, "parse form error: the upload was cut off", handler)
            if filename is None:
                return _reply(400, "parse form error: no ServerFile in the form", handler)
            given = {attr: fields.get(key, "") for key, attr in FIELDS.items()}
            req = BuildRequest(timage=request.match_info["timage"], server_file=saved, filename=filename, **given)
            try:
                result, done = await builder.submit(req, scratch)
            except BuildRefused as e:
                return _reply(e.status, str(e), handler)
            handed_over = True
        except ApiException as e:  # the apiserver refused a read or write (RBAC, validation)
            return _reply(500, f"Kubernetes API: {e.status} {e.reason}: {str(e.body or '')[:300]}", handler)
        except Exception as e:
            log.exception("build request")
            return _reply(500, f"internal error: {e}", handler)
        finally:
            if not handed_over:
                remove_scratch(scratch)
                builder.release()
        if request.query.get("wait") not in ("1", "true"):
            return _reply(201, "Created", handler, result.json())
        error = await asyncio.shield(done)
        if error is not None:
            return _reply(500, error, handler, result.json())
        return _reply(200, "OK", handler, result.json())

    app = metrics_app(registry, lambda: f"builds={builder.slots}")
    app.router.add_post("/api/{version}/timage/{timage}/building", building)
    return app


class ImageService(Service[ImageServiceOptions]):
    """The build API over one namespace's TImages."""

    name = "image"

    async def open(self, parts: AsyncExitStack) -> None:
        opts = self.options
        self.kube = await Kube.connect(opts.kubeconfig, field_manager="k8stars-image")
        parts.push_async_callback(self.kube.close)
        workdir = Path(opts.work_dir) if opts.work_dir else None
        self.builder = Builder(self.kube, opts.namespace, max_builds=opts.max_builds, workdir=workdir,
                               plain_http=opts.plain_http,
                               limits=PackageLimits(max_unpacked=opts.max_unpacked_mb << 20))  # fmt: skip
        self.builder.start()
        parts.push_async_callback(self.builder.close)
        app = image_app(self.builder, opts.max_upload_mb << 20, opts.upload_timeout)
        self.port = await serve_http(parts, app, opts.host, opts.port, "--port")

    def describe(self) -> str:
        return f"build API on http://{self.options.host}:{self.port}, namespace {self.options.namespace}"
