"""TServer admission: K8SFramework's defaults (labels, readiness gate, replicas, release time, node image,
notStacked) and validation (names, ports, host ports, mounts, immutable fields, the template, replica bounds)."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime

from k8stars.kube import meta
from k8stars.kube.client import Obj
from k8stars.kube.resources import TFRAMEWORKCONFIG, TTEMPLATE

from .. import tconfig as lifecycle
from . import privileges
from .context import Context, namespace, new_object, old_object
from .patch import label_patch

MAX_NAME = 59  # StatefulSet pods get "-<ordinal>" and a controller-revision-hash label of name + 11 characters


# Versions with one `readinessGate` string instead of the readinessGates list.
OLDER_VERSIONS = ("v1beta1", "v1beta2")


def has_tars(spec: Obj) -> bool:
    """A TARS server as K8SFramework's webhooks tell it: by its spec.tars section (not its subType)."""
    return isinstance(spec.get("tars"), dict)


def _all_ports(spec: Obj) -> list[tuple[str, str, int]]:
    """(where, name, port) of every servant and port K8SFramework checks: spec.tars's when present, else
    spec.normal's (it checks each section only when present, and spec.normal only without spec.tars)."""
    found: list[tuple[str, str, int]] = []
    if has_tars(spec):
        tars = spec["tars"]
        for s in tars.get("servants") or []:
            found.append(("servant", str(s.get("name")), int(s.get("port", 0))))
        for p in tars.get("ports") or []:
            found.append(("port", str(p.get("name")), int(p.get("port", 0))))
    else:
        for p in (spec.get("normal") or {}).get("ports") or []:
            found.append(("port", str(p.get("name")), int(p.get("port", 0))))
    return found


def validate_tserver(obj: Obj, old: Obj | None) -> list[str]:
    """Problems with a TServer (empty = valid)."""
    errors: list[str] = []
    spec: Obj = obj.get("spec") or {}
    app, server = spec.get("app", ""), spec.get("server", "")
    name = obj.get("metadata", {}).get("name", "")
    expected = meta.resource_name(str(app), str(server))
    if name and name != expected:
        errors.append(f"metadata.name must be lower(app)-lower(server) = {expected!r}, not {name!r}")
    if len(expected) > MAX_NAME:
        errors.append(
            f"{expected!r} is {len(expected)} characters: app and server names together must fit in {MAX_NAME} "
            "(the StatefulSet's pods and revisions append suffixes to it)"
        )
    # As K8SFramework, no rule ties subType to spec.tars/spec.normal (the schema wants one of them): each section is
    # checked when present, so a YAML it accepts is accepted here.

    ports = _all_ports(spec)
    names = Counter(n.lower() for _, n, _ in ports)
    for dup in sorted(n for n, c in names.items() if c > 1):
        errors.append(
            f"servant/port name {dup!r} is used more than once (names are compared case-insensitively: each "
            "becomes a Service port named in lower case)"
        )
    by_port: dict[int, list[str]] = {}
    for where, pname, port in ports:
        by_port.setdefault(port, []).append(f"{where} {pname}")
        if port == meta.NODE_SERVANT_PORT and "tars" in spec:  # the node servant runs in TARS pods only
            errors.append(
                f"{where} {pname} uses port {port}, which is reserved for the in-pod node servant "
                "(tars.tarsnode.ServerObj); choose another port"
            )
    for port, users in sorted(by_port.items()):
        if len(users) > 1:
            errors.append(
                f"port {port} is used by {' and '.join(users)}: every TARS servant is its own adapter and binds "
                "its own endpoint, so two of them cannot listen on one port; give each a distinct port"
            )

    k8s: Obj = spec.get("k8s") or {}
    known = {n for _, n, _ in ports}
    refs = [str(h.get("nameRef")) for h in k8s.get("hostPorts") or []]
    for ref in refs:
        if ref not in known:
            listed = ", ".join(sorted(known)) or "none"
            errors.append(f"spec.k8s.hostPorts nameRef {ref!r} names no servant or port (known: {listed})")
    for dup in sorted(r for r, c in Counter(refs).items() if c > 1):
        errors.append(f"spec.k8s.hostPorts maps {dup!r} more than once")
    if k8s.get("hostNetwork"):  # the pod's ports are the node's: Kubernetes refuses a pod whose hostPort differs
        own = {n: p for _, n, p in ports}
        for h in k8s.get("hostPorts") or []:
            ref, port = str(h.get("nameRef")), int(h.get("port", 0))
            if ref in own and port != own[ref]:
                errors.append(
                    f"spec.k8s.hostPorts maps {ref!r} to {port}, but with spec.k8s.hostNetwork the host port is the "
                    f"port {ref!r} listens on ({own[ref]}): map it to {own[ref]}, or leave hostNetwork off"
                )
    host_ports = Counter(int(h.get("port", 0)) for h in k8s.get("hostPorts") or [])
    for dup_port in sorted(p for p, c in host_ports.items() if c > 1):
        errors.append(f"spec.k8s.hostPorts uses host port {dup_port} more than once")
    mounts = k8s.get("mounts") or []
    for dup in sorted(n for n, c in Counter(str(m.get("name")) for m in mounts).items() if c > 1):
        errors.append(f"spec.k8s.mounts name {dup!r} is used more than once")
    for m in mounts:
        if not m.get("mountPath"):
            errors.append(f"spec.k8s.mounts {m.get('name')!r} needs a mountPath")
        source = m.get("source") or {}
        if k8s.get("daemonSet") and ("persistentVolumeClaimTemplate" in source or "tLocalVolume" in source):
            errors.append(
                f"spec.k8s.mounts {m.get('name')!r}: a daemonSet server cannot use persistentVolumeClaimTemplate or "
                "tLocalVolume (only StatefulSets have per-pod claims)"
            )

    if old is not None:
        old_spec: Obj = old.get("spec") or {}
        for key in ("app", "server", "subType"):
            if old_spec.get(key) != spec.get(key):
                errors.append(
                    f"spec.{key} cannot change ({old_spec.get(key)!r} → {spec.get(key)!r}): create a new TServer"
                )
    return errors


def tserver_labels(obj: Obj) -> dict[str, str]:
    spec: Obj = obj.get("spec") or {}
    labels = {
        meta.SERVER_APP: str(spec.get("app", "")),
        meta.SERVER_NAME: str(spec.get("server", "")),
        meta.SUB_TYPE: str(spec.get("subType", "")),
    }
    if has_tars(spec):
        labels[meta.TEMPLATE] = str((spec.get("tars") or {}).get("template", ""))
    release_id = (spec.get("release") or {}).get("id")
    if release_id:
        labels[meta.SERVER_ID] = str(release_id)
    return labels


MAX_REPLICAS_ANNOTATION = "tars.io/MaxReplicas"
MIN_REPLICAS_ANNOTATION = "tars.io/MinReplicas"
_REPLICAS_BOUND = re.compile(r"^[1-9]?[0-9]$")


def replica_bounds(obj: Obj) -> tuple[int | None, int | None, list[str]]:
    """(min, max) from the tars.io/MinReplicas / tars.io/MaxReplicas annotations, and what is wrong with them."""
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    bounds: dict[str, int | None] = {}
    errors = []
    for key in (MIN_REPLICAS_ANNOTATION, MAX_REPLICAS_ANNOTATION):
        value = annotations.get(key)
        bounds[key] = None
        if value is None:
            continue
        if not _REPLICAS_BOUND.match(str(value)):
            errors.append(f"annotation {key}={value!r} must be a whole number from 0 to 99")
        else:
            bounds[key] = int(value)
    low, high = bounds[MIN_REPLICAS_ANNOTATION], bounds[MAX_REPLICAS_ANNOTATION]
    if low is not None and high is not None and low > high:
        errors.append(f"annotation {MIN_REPLICAS_ANNOTATION}={low} is above {MAX_REPLICAS_ANNOTATION}={high}")
    return low, high, errors


def wanted_replicas(obj: Obj, k8s: Obj, has_release: bool) -> int:
    """K8SFramework's rule: no release, no pods; else the replicas within the annotations' bounds."""
    if not has_release:
        return 0
    replicas = int(k8s.get("replicas", 0))
    low, high, errors = replica_bounds(obj)
    if errors:
        return replicas  # the validating webhook refuses the object and says why
    if low is not None:
        replicas = max(replicas, low)
    if high is not None:
        replicas = min(replicas, high)
    return replicas


def node_image_missing(obj: Obj) -> list[str]:
    """After mutation a released TARS server has a node image, unless the namespace sets no default."""
    spec: Obj = obj.get("spec") or {}
    release = spec.get("release")
    if not has_tars(spec) or not isinstance(release, dict) or release.get("nodeImage"):
        return []
    return [
        "spec.release.nodeImage is empty and TFrameworkConfig tars-framework of this namespace sets no "
        "nodeImage.image: set one of them (the tarsnode init container of every pod needs that image)"
    ]


def tserver_patch(obj: Obj, default_node_image: tuple[str, str] | None = None, now: str = "") -> list[Obj]:
    """K8SFramework's TServer defaults. `default_node_image`: (image, secret) of the namespace's TFrameworkConfig,
    for a TARS server whose release names no nodeImage."""
    ops = label_patch(obj, tserver_labels(obj))
    spec: Obj = obj.get("spec") or {}
    k8s = spec.get("k8s")
    tars_server = has_tars(spec)
    older = str(obj.get("apiVersion", "")).rsplit("/", 1)[-1] in OLDER_VERSIONS
    if tars_server and isinstance(k8s, dict) and not older:
        gates = list(k8s.get("readinessGates") or [])
        wanted = [meta.ACTIVE_GATE] + [g for g in gates if g != meta.ACTIVE_GATE]
        if "readinessGates" not in k8s or gates != wanted:
            ops.append({"op": "add", "path": "/spec/k8s/readinessGates", "value": wanted})
    elif tars_server and isinstance(k8s, dict) and k8s.get("readinessGate") != meta.ACTIVE_GATE:
        # An older version (one readinessGate): K8SFramework's v1beta2 webhook makes it tars.io/active, which the
        # conversion turns into the first of readinessGates.
        ops.append({"op": "add", "path": "/spec/k8s/readinessGate", "value": meta.ACTIVE_GATE})
    if isinstance(k8s, dict):
        if (k8s.get("hostPorts") or k8s.get("hostIPC")) and not k8s.get("notStacked"):
            # two pods of the server on one node would fight for the host port / IPC namespace
            ops.append({"op": "add", "path": "/spec/k8s/notStacked", "value": True})
        release = spec.get("release")
        replicas = wanted_replicas(obj, k8s, isinstance(release, dict))
        if k8s.get("replicas") != replicas:
            ops.append({"op": "add", "path": "/spec/k8s/replicas", "value": replicas})
    release = spec.get("release")
    if isinstance(release, dict):
        if not release.get("time") and now:
            ops.append({"op": "add", "path": "/spec/release/time", "value": now})
        if tars_server and not release.get("nodeImage") and default_node_image:
            image, secret = default_node_image
            ops.append({"op": "add", "path": "/spec/release/nodeImage", "value": image})
            ops.append({"op": "add", "path": "/spec/release/nodeSecret", "value": secret})
        if not tars_server:
            ops += [{"op": "remove", "path": f"/spec/release/{key}"} for key in ("nodeImage", "nodeSecret")
                    if key in release]  # fmt: skip
    return ops


async def default_node_image(ctx: Context, namespace: str, obj: Obj) -> tuple[str, str] | None:
    """TFrameworkConfig tars-framework's nodeImage (image, secret), read only when a TARS server's release lacks
    one."""
    spec: Obj = obj.get("spec") or {}
    release = spec.get("release")
    if ctx.lookups is None or not has_tars(spec) or not isinstance(release, dict):
        return None
    if release.get("nodeImage"):
        return None
    framework = await ctx.lookups.get_confirmed(TFRAMEWORKCONFIG, namespace, lifecycle.FRAMEWORK_CONFIG)
    node: Obj = (framework or {}).get("nodeImage") or {}
    image = str(node.get("image") or "").strip()
    return (image, str(node.get("secret") or "")) if image else None


async def template_exists(ctx: Context, namespace: str, obj: Obj) -> list[str]:
    spec: Obj = obj.get("spec") or {}
    template = (spec.get("tars") or {}).get("template")
    if ctx.lookups is None or not template:
        return []
    if await ctx.lookups.get_confirmed(TTEMPLATE, namespace, str(template)) is None:
        return [f"spec.tars.template {template!r} does not exist: create the TTemplate first"]
    return []


async def mutate(ctx: Context, request: Obj) -> list[Obj]:
    obj = new_object(request)
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return tserver_patch(obj, await default_node_image(ctx, namespace(request), obj), now)


async def validate(ctx: Context, request: Obj) -> list[str]:
    obj = new_object(request)
    errors = validate_tserver(obj, old_object(request))
    errors += replica_bounds(obj)[2]
    errors += node_image_missing(obj)
    errors += await template_exists(ctx, namespace(request), obj)
    return errors + await privileges.refusals(ctx, request)
