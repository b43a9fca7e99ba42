"""The webhook server: an aiohttp HTTPS app serving `/mutate`, `/validate` (AdmissionReview), `/convert`
(ConversionReview) and `/healthz`."""

from __future__ import annotations

import base64
import json
import logging
import ssl

from aiohttp import web

from k8stars.kube.client import Obj

from ..conversion import convert_object
from .admission import Admission

log = logging.getLogger("k8stars.operator.webhook")

MAX_REVIEW_BYTES = 32 * 1024 * 1024


def _review(uid: str, allowed: bool, message: str = "", patch: list[Obj] | None = None) -> Obj:
    response: Obj = {"uid": uid, "allowed": allowed}
    if not allowed:
        response["status"] = {"code": 422, "reason": "Invalid", "message": message}
    if patch:
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(json.dumps(patch).encode()).decode()
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}


def make_app(admission: Admission) -> web.Application:
    async def validate(request: web.Request) -> web.StreamResponse:
        review = await request.json()
        req: Obj = review.get("request") or {}
        try:
            allowed, message = await admission.validate(req)
        except Exception as exc:  # a lookup failed: refuse with the reason rather than guess
            log.exception("validation of %s failed", req.get("kind"))
            allowed, message = False, f"k8stars webhook could not validate the object: {exc}"
        return web.json_response(_review(str(req.get("uid", "")), allowed, message))

    async def mutate(request: web.Request) -> web.StreamResponse:
        review = await request.json()
        req: Obj = review.get("request") or {}
        return web.json_response(_review(str(req.get("uid", "")), True, patch=await admission.mutate(req)))

    async def healthz(request: web.Request) -> web.StreamResponse:
        return web.Response(text="ok")

    async def convert(request: web.Request) -> web.StreamResponse:
        review = await request.json()
        req: Obj = review.get("request") or {}
        to_version = str(req.get("desiredAPIVersion", "")).rsplit("/", 1)[-1]
        response: Obj = {"uid": req.get("uid", "")}
        try:
            response["convertedObjects"] = [convert_object(o, to_version) for o in req.get("objects") or []]
            response["result"] = {"status": "Success"}
        except Exception as exc:
            log.exception("conversion to %s failed", to_version)
            response["result"] = {"status": "Failure", "message": f"k8stars conversion failed: {exc}"}
        return web.json_response(
            {"apiVersion": review.get("apiVersion"), "kind": "ConversionReview", "response": response}
        )

    # AdmissionReviews carry the object and the old object: a TConfig may hold 1.5 MB of content.
    app = web.Application(client_max_size=MAX_REVIEW_BYTES)
    app.router.add_post("/validate", validate)
    app.router.add_post("/mutate", mutate)
    app.router.add_get("/healthz", healthz)
    app.router.add_post("/convert", convert)
    return app


async def serve(admission: Admission, host: str, port: int, ssl_context: ssl.SSLContext | None) -> web.AppRunner:
    """Start the webhook server; returns the runner (`await runner.cleanup()` stops it)."""
    runner = web.AppRunner(make_app(admission), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=ssl_context)
    await site.start()
    return runner
