"""What the image service reads and records in Kubernetes, as K8SFramework's does: the namespace's TFrameworkConfig
(``imageUpload``, ``recordLimit.timageRelease``, ``imageBuild.maxBuildTime``), registry credentials from
``.dockerconfigjson`` Secrets, and the TImage's ``build.running`` (one build at a time), ``build.last`` and
``releases`` (the new one first, trimmed to the limit). Read-modify-writes carry the resourceVersion, so two
writers never lose each other's edits (a 409 is read again and retried)."""

from __future__ import annotations

import base64
import binascii
import calendar
import logging
import time
from dataclasses import dataclass
from typing import Any

from k8stars.kube.client import ApiException, Kube, Obj, Resource
from k8stars.kube.resources import TFRAMEWORKCONFIG, TIMAGE, TSERVER

from .reference import Credentials, credentials_from_dockerconfig

__all__ = [
    "BuildRefused",
    "Framework",
    "claim_build",
    "finish_build",
    "framework",
    "publish_release",
    "registry_credentials",
    "set_phase",
    "sweep_overtime",
]

log = logging.getLogger("k8stars.image")

SECRET = Resource("", "v1", "secrets", "Secret")
FRAMEWORK_CONFIG = "tars-framework"
DEFAULT_RELEASE_LIMIT = 48  # K8SFramework's default recordLimit.timageRelease
DEFAULT_MAX_BUILD_TIME = 300  # K8SFramework's default imageBuild.maxBuildTime (s)
OVERTIME = "task overtime"
WRITE_TRIES = 8


class BuildRefused(Exception):
    """A build that cannot start, with the HTTP status of the answer."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def now_rfc3339() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else default


@dataclass(frozen=True)
class Framework:
    registry: str  # imageUpload.registry: host[:port][/path]
    secret: str  # imageUpload.secret
    release_limit: int
    max_build_time: int


async def framework(kube: Kube, namespace: str) -> Framework:
    """The namespace's TFrameworkConfig ``tars-framework``; BuildRefused (500) without one or its registry."""
    tfc = await kube.get(TFRAMEWORKCONFIG, namespace, FRAMEWORK_CONFIG)
    if tfc is None:
        raise BuildRefused(f"no TFrameworkConfig {FRAMEWORK_CONFIG} in namespace {namespace}: it names the registry "
                           "images are pushed to (imageUpload.registry)", 500)  # fmt: skip
    upload = tfc.get("imageUpload") or {}
    if not upload.get("registry"):
        raise BuildRefused(f"TFrameworkConfig {FRAMEWORK_CONFIG} in namespace {namespace} sets no "
                           "imageUpload.registry", 500)  # fmt: skip
    return Framework(
        registry=str(upload["registry"]).rstrip("/"),
        secret=str(upload.get("secret") or ""),
        release_limit=_int((tfc.get("recordLimit") or {}).get("timageRelease"), DEFAULT_RELEASE_LIMIT),
        max_build_time=_int((tfc.get("imageBuild") or {}).get("maxBuildTime"), DEFAULT_MAX_BUILD_TIME),
    )


async def registry_credentials(kube: Kube, namespace: str, secret: str, registry: str) -> Credentials | None:
    """The credentials for ``registry`` in the ``.dockerconfigjson`` of Secret ``secret`` (None when no secret is
    named). Kept in memory only; ValueError with the reason when the Secret is missing or has none for it."""
    if not secret:
        return None
    obj = await kube.get(SECRET, namespace, secret)
    if obj is None:
        raise ValueError(f"Secret {secret} not found in namespace {namespace}")
    raw = (obj.get("data") or {}).get(".dockerconfigjson")
    if not raw:
        raise ValueError(f"Secret {secret} has no .dockerconfigjson (type kubernetes.io/dockerconfigjson expected)")
    try:
        config = base64.b64decode(raw, validate=True)
    except binascii.Error:
        raise ValueError(f"Secret {secret}: .dockerconfigjson is not base64") from None
    try:
        creds = credentials_from_dockerconfig(config, registry)
    except ValueError as e:
        raise ValueError(f"Secret {secret}: {e}") from None
    if creds is None:
        raise ValueError(f"Secret {secret} has no credentials for registry {registry}")
    return creds


async def _put(kube: Kube, namespace: str, obj: Obj) -> Obj:
    result: Obj = await kube.request("PUT", TIMAGE.path(namespace, obj["metadata"]["name"]), body=obj)
    return result


async def claim_build(kube: Kube, namespace: str, name: str, state: Obj) -> None:
    """Set ``build.running`` of TImage ``name`` to ``state``, unless a build is running there already."""
    for _ in range(WRITE_TRIES):
        obj = await kube.get(TIMAGE, namespace, name)
        if obj is None:
            raise BuildRefused(f"TImage {name} not found in namespace {namespace}", 404)
        if obj.get("imageType") != "server":
            raise BuildRefused(f"TImage {name} has imageType {obj.get('imageType')!r}: builds go to a server TImage")
        build = obj.get("build") or {}
        if build.get("running"):
            raise BuildRefused("another task is running", 409)
        obj["build"] = {**build, "running": state}
        try:
            await _put(kube, namespace, obj)
            return
        except ApiException as e:
            if e.status != 409:
                raise BuildRefused(f"TImage {name}: recording the build failed: {e.reason}: {_body(e)}", 500) from None
    raise BuildRefused(f"TImage {name}: too many concurrent changes, try again", 409)


def _body(e: ApiException) -> str:
    return str(e.body or "")[:500]


async def set_phase(kube: Kube, namespace: str, name: str, build_id: str, phase: str, message: str) -> None:
    """Record the running build's phase; nothing when the running build is no longer this one."""
    patch = [
        {"op": "test", "path": "/build/running/id", "value": build_id},
        {"op": "replace", "path": "/build/running/phase", "value": phase},
        {"op": "replace", "path": "/build/running/message", "value": message},
    ]
    try:
        await kube.request(
            "PATCH", TIMAGE.path(namespace, name), body=patch, content_type="application/json-patch+json"
        )
    except ApiException as e:
        log.info("TImage %s build %s: phase %s not recorded: %s", name, build_id, phase, e.reason)


async def finish_build(
    kube: Kube, namespace: str, name: str, state: Obj, release: Obj | None, release_limit: int
) -> None:
    """``build.last = state``, ``build.running`` cleared when it is this build, and a successful build's release
    put first in ``releases`` (an older entry of the same id dropped), at most ``release_limit`` kept."""
    for _ in range(WRITE_TRIES):
        obj = await kube.get(TIMAGE, namespace, name)
        if obj is None:
            log.warning("TImage %s deleted during build %s", name, state.get("id"))
            return
        build = dict(obj.get("build") or {})
        running = build.get("running") or {}
        if running and running.get("id") != state["id"]:
            # another build runs now (ours was failed as overtime meanwhile): its state stays
            if (build.get("last") or {}).get("id") == state["id"]:
                return
        else:
            build.pop("running", None)
        build["last"] = state
        obj["build"] = build
        if release is not None:
            older = [r for r in obj.get("releases") or [] if r.get("id") != release["id"]]
            obj["releases"] = [release, *older][:release_limit]
        try:
            await _put(kube, namespace, obj)
            return
        except ApiException as e:
            if e.status != 409:
                log.error("TImage %s: recording build %s failed: %s %s", name, state["id"], e.reason, _body(e))
                return
    log.error("TImage %s: recording build %s gave up after %d conflicts", name, state["id"], WRITE_TRIES)


def _age(created: str, now: float) -> float:
    try:
        return now - calendar.timegm(time.strptime(created, "%Y-%m-%dT%H:%M:%SZ"))
    except (TypeError, ValueError):
        return float("inf")


async def sweep_overtime(kube: Kube, namespace: str, max_build_time: int, mine: set[str]) -> list[str]:
    """Builds still running after ``max_build_time`` seconds (a service that died mid-build) become Failed with
    K8SFramework's "task overtime"; builds of this service (ids in ``mine``) end through their own deadline."""
    failed = []
    items = (await kube.list(TIMAGE, namespace)).get("items") or []
    now = time.time()
    for obj in items:
        running = (obj.get("build") or {}).get("running") or {}
        if not running or running.get("id") in mine:
            continue
        if _age(str(running.get("createTime", "")), now) <= max_build_time:
            continue
        state = {**running, "phase": "Failed", "message": OVERTIME}
        await finish_build(kube, namespace, obj["metadata"]["name"], state, None, DEFAULT_RELEASE_LIMIT)
        failed.append(obj["metadata"]["name"])
    return failed


async def publish_release(kube: Kube, namespace: str, server: str, release_id: str) -> Obj:
    """Copy release ``release_id`` of TImage ``server`` into TServer ``server``'s ``spec.release`` (as the web
    console's publish does; the admission webhook fills ``nodeImage``). Returns the release set."""
    image = await kube.get(TIMAGE, namespace, server)
    if image is None:
        raise LookupError(f"TImage {server} not found in namespace {namespace}")
    chosen = next((r for r in image.get("releases") or [] if r.get("id") == release_id), None)
    if chosen is None:
        ids = ", ".join(str(r.get("id")) for r in (image.get("releases") or [])[:5]) or "none"
        raise LookupError(f"TImage {server} has no release {release_id} (newest: {ids})")
    if await kube.get(TSERVER, namespace, server) is None:
        raise LookupError(f"TServer {server} not found in namespace {namespace}")
    release: Obj = {"id": chosen["id"], "image": chosen["image"], "time": now_rfc3339()}
    release["secret"] = chosen.get("secret") or None  # merge patch: None removes an older release's secret
    await kube.merge_patch(TSERVER, namespace, server, {"spec": {"release": release}})
    return {k: v for k, v in release.items() if v is not None}
