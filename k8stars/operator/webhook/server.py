"""The webhook server: an aiohttp HTTPS app serving `/mutate`, `/validate` (AdmissionReview), `/convert`
(ConversionReview) and `/healthz`."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import ssl

from aiohttp import web

from k8stars.kube.client import Obj

from ..conversion import convert_object
from .admission import Admission
from .context import Refused

log = logging.getLogger("k8stars.operator.webhook")

MAX_REVIEW_BYTES = 32 * 1024 * 1024


# The apiserver gives a webhook timeoutSeconds (5 in the configurations) before it fails the request with a message
# of its own; answering within this many seconds keeps the answer ours.
ANSWER_WITHIN = 4.0


def _review(uid: str, allowed: bool, message: str = "", patch: list[Obj] | None = None) -> Obj:
    response: Obj = {"uid": uid, "allowed": allowed}
    if not allowed:
        response["status"] = {"code": 422, "reason": "Invalid", "message": message}
    if patch:
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(json.dumps(patch).encode()).decode()
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}


def _what(req: Obj) -> str:
    """`Kind name` of a request, for messages (whatever shape the request has)."""

    def field(obj: object, *path: str) -> object:
        for key in path:
            obj = obj.get(key) if isinstance(obj, dict) else None
        return obj

    kind = field(req, "kind", "kind") or "object"
    name = req.get("name") or field(req, "object", "metadata", "name") or field(req, "oldObject", "metadata", "name")
    return f"{kind} {name}" if name else str(kind)


async def _admission_request(request: web.Request) -> Obj:
    """The AdmissionRequest of an AdmissionReview; ValueError when the body is not one."""
    try:
        review = await request.json()
    except ValueError as exc:
        raise ValueError(f"the body is not JSON ({exc})") from None
    req = review.get("request") if isinstance(review, dict) else None
    if not isinstance(req, dict):
        raise ValueError("the body is not an AdmissionReview with a request")
    return req


def _failure(req: Obj, doing: str, exc: BaseException) -> str:
    """The message of a request the webhook could not judge: refused with the reason rather than a guess."""
    if isinstance(exc, TimeoutError):
        reason = f"no answer within {ANSWER_WITHIN:g} s (is the Kubernetes API reachable from the operator?)"
    else:
        reason = str(exc) or type(exc).__name__
    log.error("%s of %s failed: %s", doing, _what(req), reason, exc_info=not isinstance(exc, TimeoutError))
    return f"k8stars webhook could not {doing} {_what(req)}: {reason}"


def make_app(admission: Admission) -> web.Application:
    """Every request to /mutate and /validate gets an AdmissionReview: an error while judging it is a refusal that
    says what went wrong, never an HTTP 500."""

    async def answer(request: web.Request, doing: str) -> web.StreamResponse:
        try:
            req = await _admission_request(request)
        except ValueError as exc:
            return web.json_response(_review("", False, f"k8stars webhook: {exc}"), status=400)
        uid = str(req.get("uid", ""))
        try:
            async with asyncio.timeout(ANSWER_WITHIN):
                if doing == "validate":
                    allowed, message = await admission.validate(req)
                    return web.json_response(_review(uid, allowed, message))
                return web.json_response(_review(uid, True, patch=await admission.mutate(req)))
        except Refused as exc:
            return web.json_response(_review(uid, False, str(exc)))
        except Exception as exc:
            return web.json_response(_review(uid, False, _failure(req, doing, exc)))

    async def validate(request: web.Request) -> web.StreamResponse:
        return await answer(request, "validate")

    async def mutate(request: web.Request) -> web.StreamResponse:
        return await answer(request, "default")

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

    async def start_caches(_app: web.Application) -> None:
        admission.start()

    async def stop_caches(_app: web.Application) -> None:
        await admission.stop()

    # AdmissionReviews carry the object and the old object: a TConfig may hold 1.5 MB of content.
    app = web.Application(client_max_size=MAX_REVIEW_BYTES)
    app.router.add_post("/validate", validate)
    app.router.add_post("/mutate", mutate)
    app.router.add_get("/healthz", healthz)
    app.router.add_post("/convert", convert)
    app.on_startup.append(start_caches)
    app.on_cleanup.append(stop_caches)
    return app


async def serve(admission: Admission, host: str, port: int, ssl_context: ssl.SSLContext | None) -> web.AppRunner:
    """Start the webhook server; returns the runner (`await runner.cleanup()` stops it)."""
    runner = web.AppRunner(make_app(admission), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=ssl_context)
    await site.start()
    return runner
