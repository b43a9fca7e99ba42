"""Upload → build, as K8SFramework's tarsweb does it: the releases page's form goes to the console, which checks the
role and the CSRF token, takes ServerApp/ServerName from the TServer and CreatePerson from the logged-in user (never
from the form), allows only a base image the namespace lists (a release of a TImage labelled
``tars.io/ImageType=base`` supporting the server type) with that release's pull Secret, and streams the package,
bounded, to the image service's ``POST /api/v1beta3/timage/{timage}/building`` (``k8stars image serve``). The
service's answer is shown: 201, the build runs and the page follows it on the TImage; else its message."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
from aiohttp import BodyPartReader, web
from aiohttp.payload import AsyncIterablePayload

from k8stars.kube.client import Kube, Obj
from k8stars.kube.resources import TIMAGE

from ..app import bearer, check_csrf
from ..keys import IMAGE_URL, MAX_UPLOAD
from ..roles import PUBLISH
from .common import back, kube_of, names, server_of, user_of

SERVER_TYPES = ("cpp", "go", "java-jar", "java-war", "nodejs", "nodejs-pkg", "php", "python")  # K8SFramework's
FIELDS = ("ServerType", "BaseImage", "ServerTag", "Mark")  # what the form gives; the rest the console sets
MAX_FIELD = 4096
FORM_SLACK = 64 * 1024  # the form's fields and part headers beside the package
CHUNK = 256 * 1024
API = "/api/v1beta3/timage/{}/building"
TIMEOUT = aiohttp.ClientTimeout(total=600, sock_connect=10)  # the service answers once the upload is in


@dataclass(frozen=True)
class Base:
    """One release of a base TImage: what the form offers."""

    timage: str
    id: str
    image: str
    secret: str
    supported: tuple[str, ...]  # tars.io/Supported.<type> labels; none: any type

    def serves(self, server_type: str) -> bool:
        return not self.supported or server_type in self.supported


async def bases(kube: Kube, namespace: str) -> list[Base]:
    """The releases of the namespace's base TImages (K8SFramework's label ``tars.io/ImageType=base``), newest first
    per TImage."""
    found = []
    items = (await kube.list(TIMAGE, namespace, selector="tars.io/ImageType=base")).get("items") or []
    for t in sorted(items, key=lambda t: str(t["metadata"]["name"])):
        labels = t["metadata"].get("labels") or {}
        supported = tuple(sorted(str(v) for k, v in labels.items() if k.startswith("tars.io/Supported.")))
        for r in t.get("releases") or []:
            if r.get("image"):
                found.append(Base(t["metadata"]["name"], str(r.get("id", "")), str(r["image"]),
                                  str(r.get("secret") or ""), supported))  # fmt: skip
    return found


def default_type(tserver: Obj) -> str:
    """The server type its template names (``tars.go`` → go, ``tars.java`` → java-jar), else cpp."""
    template = str(((tserver.get("spec") or {}).get("tars") or {}).get("template") or "")
    kind = template.removeprefix("tars.")
    kind = "java-jar" if kind == "java" else kind
    return kind if kind in SERVER_TYPES else "cpp"


def build_state(timage: Obj | None) -> tuple[Obj, Obj]:
    """(the running build, the last one) K8SFramework records on the TImage."""
    build = (timage or {}).get("build") or {}
    return build.get("running") or {}, build.get("last") or {}


async def form_context(request: web.Request, tserver: Obj, timage: Obj | None) -> dict[str, Any]:
    """What the releases page shows of uploads: the form's choices, or why there is no form."""
    running, last = build_state(timage)
    context: dict[str, Any] = {"running": running, "last": last, "image_url": request.app[IMAGE_URL],
                               "max_upload_mb": request.app[MAX_UPLOAD] >> 20, "server_types": SERVER_TYPES,
                               "server_type": default_type(tserver), "bases": []}  # fmt: skip
    if context["image_url"] and timage is not None:
        kube, ns = kube_of(request)
        context["bases"] = offered = await bases(kube, ns)
        context["base_default"] = next((b.image for b in offered if b.serves(context["server_type"])), "")
    return context


def too_big(limit: int) -> str:
    return f"the package is over the upload limit ({limit >> 20} MiB)"


class _TooBig(Exception):
    pass


async def _chunks(part: BodyPartReader, limit: int, sent: list[int]) -> AsyncIterator[bytes]:
    """The package as it arrives; past ``limit`` bytes the forward is cut (the service then builds nothing)."""
    while chunk := await part.read_chunk(CHUNK):
        sent[0] += len(chunk)
        if sent[0] > limit:
            raise _TooBig
        yield chunk


async def _read_fields(reader: aiohttp.MultipartReader) -> tuple[dict[str, str], BodyPartReader | None]:
    """The form's fields up to the package (the form puts it last), and the package's part."""
    fields: dict[str, str] = {}
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            continue
        if part.name == "ServerFile":
            return fields, part
        value = await part.read_chunk(MAX_FIELD + 1)
        if len(value) > MAX_FIELD or await part.read_chunk(1):
            raise web.HTTPBadRequest(text=f"field {part.name} is over {MAX_FIELD} bytes")
        if part.name in FIELDS:
            fields[part.name] = value.decode("utf-8", errors="replace").strip()
    return fields, None


async def _forward(url: str, fields: dict[str, str], part: BodyPartReader, limit: int) -> tuple[int, str, str]:
    """Stream the form to the image service: (its status, its message, the build id); 413 when the package passed
    ``limit``."""
    sent = [0]
    with aiohttp.MultipartWriter("form-data") as body:
        for key, value in fields.items():
            body.append(value).set_content_disposition("form-data", name=key)
        stream = AsyncIterablePayload(_chunks(part, limit, sent), content_type="application/octet-stream")
        package = body.append_payload(stream)
        package.set_content_disposition("form-data", name="ServerFile", filename=part.filename or "package")
    try:
        async with aiohttp.ClientSession(timeout=TIMEOUT) as http, http.post(url, data=body) as r:
            reply = await r.json(content_type=None)
            if not isinstance(reply, dict):
                raise ValueError(f"{r.status}, not the build API's answer")
            return r.status, str(reply.get("message", "")), str((reply.get("result") or {}).get("id", ""))
    except (aiohttp.ClientError, TimeoutError, ValueError) as e:
        if sent[0] > limit:
            return 413, too_big(limit), ""
        return 502, f"the image service at {url.split('/api/')[0]} did not answer: {e or type(e).__name__}", ""


def _check(fields: dict[str, str], offered: list[Base]) -> tuple[str, Base]:
    """The server type and the base, one the namespace offers for that type; else why not."""
    server_type = fields.get("ServerType", "")
    if server_type not in SERVER_TYPES:
        raise ValueError(f"unknown server type {server_type!r}: one of {', '.join(SERVER_TYPES)}")
    base = next((b for b in offered if b.image == fields.get("BaseImage")), None)
    if base is None:
        raise ValueError(f"base image {fields.get('BaseImage', '')!r} is not a release of a base TImage here")
    if not base.serves(server_type):
        raise ValueError(f"base {base.timage}:{base.id} does not support {server_type} ({', '.join(base.supported)})")
    return server_type, base


async def upload(request: web.Request) -> web.StreamResponse:
    tserver, _, _ = await server_of(request, PUBLISH)  # before any of the body is read
    try:
        reader = await _checked_reader(request)
        return await _upload(request, tserver, reader, f"/servers/{tserver['metadata']['name']}/releases")
    except ValueError as e:  # not multipart, a broken body
        raise web.HTTPBadRequest(text=f"a bad upload: {e}") from None


async def _checked_reader(request: web.Request) -> aiohttp.MultipartReader:
    """The form's reader once the CSRF token is checked: the header's, else the form's first field (the middleware
    leaves this body to us); a script's bearer token needs none."""
    header = request.headers.get("X-CSRF-Token")
    if request.content_type != "multipart/form-data":
        if bearer(request) is None:
            check_csrf(request, header or str((await request.post()).get("_csrf") or ""))
        raise ValueError("an upload is a multipart/form-data form")
    reader = await request.multipart()
    if bearer(request) is None:
        if header is None:
            first = await reader.next()
            token = await first.read_chunk(256) if isinstance(first, BodyPartReader) and first.name == "_csrf" else b""
            header = token.decode("ascii", errors="replace")
        check_csrf(request, header)
    return reader


async def _upload(request: web.Request, tserver: Obj, reader: aiohttp.MultipartReader, to: str) -> web.StreamResponse:
    app, server = names(tserver)
    base_url, limit = request.app[IMAGE_URL], request.app[MAX_UPLOAD]
    if not base_url:
        raise back(request, "error", "the image service is not configured (k8stars web --image-url)", to)
    if (request.content_length or 0) > limit + FORM_SLACK:  # refused before the service is asked; a chunked
        raise back(request, "error", too_big(limit), to)  # body is counted as it is forwarded
    fields, part = await _read_fields(reader)
    if part is None or not part.filename:
        raise back(request, "error", "no package: choose a .tgz, .tar.gz, .war or .jar file", to)
    kube, ns = kube_of(request)
    try:
        server_type, base = _check(fields, await bases(kube, ns))
    except ValueError as e:
        raise back(request, "error", str(e), to) from None
    form = {"ServerApp": app, "ServerName": server, "ServerType": server_type, "ServerTag": fields.get("ServerTag", ""),
            "BaseImage": base.image, "BaseImageSecret": base.secret, "Secret": "",
            "CreatePerson": user_of(request).username, "Mark": fields.get("Mark", "")}  # fmt: skip
    url = base_url + API.format(quote(tserver["metadata"]["name"], safe=""))
    status, message, build_id = await _forward(url, form, part, limit)
    if status == 201:
        raise back(request, "ok", f"{app}.{server}: {part.filename} uploaded, build {build_id} is running", to)
    raise back(request, "error", f"the image service refused the build ({status}): {message}", to)


def setup(app: web.Application) -> None:
    app.router.add_post("/servers/{name}/upload", upload, name="upload")
