"""Release and rollback: the TImage's releases of a server; publishing one sets the TServer's ``spec.release``
(``k8stars.image.timage.publish_release``, as ``k8stars image release`` does); a rollback publishes an older one.
Uploading a package to build a release is ``upload``'s; the page shows its form and the TImage's build state."""

from __future__ import annotations

from aiohttp import web

from k8stars.image.timage import publish_release
from k8stars.kube.resources import TIMAGE

from ..render import page
from .common import back, form, kube_of, server_of, user_of
from .upload import form_context


async def releases(request: web.Request) -> web.Response:
    tserver, app, server = await server_of(request, "view")
    kube, ns = kube_of(request)
    name = tserver["metadata"]["name"]
    timage = await kube.get(TIMAGE, ns, name)
    current = ((tserver.get("spec") or {}).get("release") or {}).get("id", "")
    can_publish = user_of(request).can("publish", app, server)
    uploads = await form_context(request, tserver, timage) if can_publish else {}
    return page(request, "releases.html", title=f"{app}.{server} releases", app=app, server=server, name=name,
                releases=(timage or {}).get("releases") or [], has_image=timage is not None, current=current,
                can_publish=can_publish, **uploads)  # fmt: skip


async def publish(request: web.Request) -> web.StreamResponse:
    tserver, app, server = await server_of(request, "publish")
    kube, ns = kube_of(request)
    name = tserver["metadata"]["name"]
    release_id = (await form(request)).get("id", "")
    try:
        release = await publish_release(kube, ns, name, release_id)
    except LookupError as e:
        raise back(request, "error", str(e), f"/servers/{name}/releases") from None
    raise back(request, "ok", f"{app}.{server}: release {release['id']} published", f"/servers/{name}/releases")


def setup(app: web.Application) -> None:
    app.router.add_get("/servers/{name}/releases", releases)
    app.router.add_post("/servers/{name}/publish", publish)
