"""TConfig admission: labels (tars.io/ServerApp, ServerName, ConfigName, PodSeq, Activated, Version) and the
life-cycle rules of k8stars/operator/tconfig.py: what users may change, a pod-level config needs an activated master,
and the deletion guards."""

from __future__ import annotations

import zlib
from datetime import UTC, datetime, timedelta

from k8stars.kube import meta
from k8stars.kube.client import Obj
from k8stars.kube.resources import TCONFIG

from .. import tconfig as lifecycle
from .context import Context, namespace, new_object, old_object, operation, username
from .identity import is_system_user
from .patch import label_patch

TCONFIG_IMMUTABLE = lifecycle.IMMUTABLE


def tconfig_labels(obj: Obj) -> dict[str, str]:
    labels = {
        meta.SERVER_APP: str(obj.get("app", "")),
        meta.SERVER_NAME: str(obj.get("server", "")),
        meta.CONFIG_NAME: str(obj.get("configName", "")),
        meta.POD_SEQ: str(obj.get("podSeq", "m")),
        meta.ACTIVATED: "true" if obj.get("activated", True) else "false",
    }
    if obj.get("version"):
        labels[meta.CONFIG_VERSION] = str(obj["version"])
    return labels


def creation_version(name: str, now: datetime) -> str:
    """The version K8SFramework gives every new TConfig: the creation time in its Go layout 20060102030405 (so a
    12-hour clock) and the CRC-32 of the object's name in lower-case hex."""
    return f"{now.astimezone(UTC).strftime('%Y%m%d%I%M%S')}-{zlib.crc32(name.encode()):x}"


def validate_tconfig(obj: Obj, old: Obj | None, by_operator: bool = False) -> list[str]:
    """The TConfig life-cycle rules live in k8stars.operator.tconfig; `by_operator`: the operator's own request."""
    return lifecycle.create_errors(obj) if old is None else lifecycle.update_errors(obj, old, by_operator)


async def master_exists(ctx: Context, namespace: str, obj: Obj, old: Obj | None) -> list[str]:
    if ctx.lookups is None or old is not None or str(obj.get("podSeq", "m")) == "m" or not obj.get("server"):
        return []
    selector = ",".join(
        f"{k}={v}"
        for k, v in {
            meta.SERVER_APP: obj.get("app", ""),
            meta.SERVER_NAME: obj.get("server", ""),
            meta.CONFIG_NAME: obj.get("configName", ""),
            meta.POD_SEQ: "m",
            meta.ACTIVATED: "true",
        }.items()
    )
    selector += f",!{meta.DEACTIVATE},!{meta.DELETING}"  # a master on its way out does not count
    masters = await ctx.lookups.list(TCONFIG, namespace, selector)
    if not masters:  # the cache may lag a master created a moment ago
        masters = await ctx.lookups.list(TCONFIG, namespace, selector, live=True)
    if not masters:
        return [
            f"a pod-level config (podSeq {obj.get('podSeq')}) overrides a server-level one: create and activate "
            f"{obj.get('configName')!r} with podSeq m for {obj.get('app')}.{obj.get('server')} first"
        ]
    return []


async def mutate(ctx: Context, request: Obj) -> list[Obj]:
    obj = new_object(request)
    now = datetime.now(UTC)
    ops: list[Obj] = []
    if operation(request) == "CREATE":  # as K8SFramework: whatever version the client sent (Go clients send "")
        name = str(request.get("name") or (obj.get("metadata") or {}).get("name") or "")
        obj = {**obj, "version": creation_version(name, now)}
        ops.append({"op": "add", "path": "/version", "value": obj["version"]})
    return ops + label_patch(obj, tconfig_labels(obj)) + lifecycle.mutation(obj, old_object(request), now)


async def validate(ctx: Context, request: Obj) -> list[str]:
    obj, old = new_object(request), old_object(request)
    errors = validate_tconfig(obj, old, by_operator=username(request) in ctx.owners)
    return errors + await master_exists(ctx, namespace(request), obj, old)


async def deletion_refusal(ctx: Context, request: Obj) -> str | None:
    """An activated TConfig within its guard time, or a master with pod-level configs, cannot be deleted; by anyone
    but Kubernetes itself (namespace deletion and garbage collection must never be blocked)."""
    if ctx.lookups is None or is_system_user(username(request)):
        return None
    old: Obj = request.get("oldObject") or {}
    if not lifecycle.is_activated(old):
        return None  # history goes without a lookup
    name = str(request.get("name") or old.get("metadata", {}).get("name", ""))
    selector = ",".join(
        f"{k}={v}"
        for k, v in {
            meta.SERVER_APP: old.get("app", ""),
            meta.SERVER_NAME: old.get("server", ""),
            meta.CONFIG_NAME: old.get("configName", ""),
        }.items()
    )
    now = datetime.now(UTC)
    # Read live, as the TTemplate guard: the cache may not have seen a pod-level config come or go a moment ago.
    others = await ctx.lookups.list(TCONFIG, namespace(request), selector, live=True)
    reasons = lifecycle.delete_refusals(old, others, now, ctx.tconfig_guard)
    if not reasons:
        return None
    message = f"TConfig {name} cannot be deleted: {'; '.join(reasons)}"
    if now < lifecycle.activated_since(old) + timedelta(seconds=ctx.tconfig_guard):
        # K8SFramework's words first: scripts match them.
        message = f"tconfig during deletion guard time({ctx.tconfig_guard:g}s): {message}"
    return message
