"""Admission webhooks for k8s.tars.io: defaulting (mutating) and validation with messages that say what is wrong,
why, and how to fix it. A small aiohttp HTTPS app (`/mutate`, `/validate`, `/healthz`), run by `k8stars operator
--webhook-port ...` or embedded (tests).

Mutations (already visible in the response to a create/patch, as with K8SFramework):
- TServer: labels tars.io/ServerApp, ServerName, SubType, Template (tars), ServerID (release id); for TARS servers
  `spec.k8s.readinessGates` starts with `tars.io/active`; replicas 0 without a release, else within the
  tars.io/MinReplicas / MaxReplicas annotations; release time; the namespace's default node image; notStacked with
  host ports.
- TConfig: labels tars.io/ServerApp, ServerName, ConfigName, PodSeq, Activated, Version (a removed or edited label
  is put back).

Validation: see `validate_tserver`, `validate_tconfig`, `validate_ttemplate` and docs/operator.md.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import ssl
from collections import Counter
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from k8stars.kube import meta
from k8stars.kube.client import Kube, Obj
from k8stars.kube.resources import TCONFIG, TFRAMEWORKCONFIG, TSERVER, TTEMPLATE
from k8stars.operator.conversion import convert_object
from k8stars.operator.conversion import convert_tserver as convert_tserver  # moved there; re-exported

from . import tconfig

log = logging.getLogger("k8stars.operator.webhook")

MAX_REVIEW_BYTES = 32 * 1024 * 1024
MAX_NAME = 59  # StatefulSet pods get "-<ordinal>" and a controller-revision-hash label of name + 11 characters


# --- validation (pure) ------------------------------------------------------------------------------------------
def _all_ports(spec: Obj) -> list[tuple[str, str, int]]:
    """(where, name, port) of every servant and port."""
    found: list[tuple[str, str, int]] = []
    tars = spec.get("tars") or {}
    for s in tars.get("servants") or []:
        found.append(("servant", str(s.get("name")), int(s.get("port", 0))))
    for p in tars.get("ports") or []:
        found.append(("port", str(p.get("name")), int(p.get("port", 0))))
    for p in (spec.get("normal") or {}).get("ports") or []:
        found.append(("port", str(p.get("name")), int(p.get("port", 0))))
    return found


def validate_tserver(obj: Obj, old: Obj | None) -> list[str]:
    """Problems with a TServer (empty = valid)."""
    errors: list[str] = []
    spec: Obj = obj.get("spec") or {}
    app, server, sub_type = spec.get("app", ""), spec.get("server", ""), spec.get("subType", "")
    name = obj.get("metadata", {}).get("name", "")
    expected = meta.resource_name(str(app), str(server))
    if name and name != expected:
        errors.append(f"metadata.name must be lower(app)-lower(server) = {expected!r}, not {name!r}")
    if len(expected) > MAX_NAME:
        errors.append(
            f"{expected!r} is {len(expected)} characters: app and server names together must fit in {MAX_NAME} "
            "(the StatefulSet's pods and revisions append suffixes to it)"
        )
    if sub_type == "tars" and "normal" in spec:
        errors.append("spec.normal is for subType normal; a tars server declares spec.tars (servants) only")
    if sub_type == "normal" and "tars" in spec:
        errors.append("spec.tars is for subType tars; a normal server declares spec.normal (ports) only")
    if sub_type == "tars" and "tars" not in spec:
        errors.append("subType tars needs spec.tars (template and servants)")
    if sub_type == "normal" and "normal" not in spec:
        errors.append("subType normal needs spec.normal (ports)")

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
        if port == meta.NODE_SERVANT_PORT:
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


TCONFIG_IMMUTABLE = tconfig.IMMUTABLE


def validate_tconfig(obj: Obj, old: Obj | None, by_operator: bool = False) -> list[str]:
    """The TConfig life-cycle rules live in k8stars.operator.tconfig; `by_operator`: the operator's own request."""
    return tconfig.create_errors(obj) if old is None else tconfig.update_errors(obj, old, by_operator)


def validate_ttemplate(obj: Obj, old: Obj | None) -> list[str]:
    spec = obj.get("spec") or {}
    if not str(spec.get("content", "")).strip():
        return ["spec.content is empty"]
    return []


TREE_NAME = "tars-tree"


def validate_ttree(obj: Obj) -> list[str]:
    name = (obj.get("metadata") or {}).get("name")
    if name != TREE_NAME:
        return [f"the TTree of a namespace is named {TREE_NAME!r}, not {name!r}"]
    return []


# --- mutation (pure) --------------------------------------------------------------------------------------------
def tserver_labels(obj: Obj) -> dict[str, str]:
    spec: Obj = obj.get("spec") or {}
    labels = {
        meta.SERVER_APP: str(spec.get("app", "")),
        meta.SERVER_NAME: str(spec.get("server", "")),
        meta.SUB_TYPE: str(spec.get("subType", "")),
    }
    if spec.get("subType") == "tars":
        labels[meta.TEMPLATE] = str((spec.get("tars") or {}).get("template", ""))
    release_id = (spec.get("release") or {}).get("id")
    if release_id:
        labels[meta.SERVER_ID] = str(release_id)
    return labels


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


def _pointer(*parts: str) -> str:
    return "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in parts)


def label_patch(obj: Obj, wanted: dict[str, str]) -> list[Obj]:
    current = (obj.get("metadata") or {}).get("labels")
    if current is None:
        return [{"op": "add", "path": "/metadata/labels", "value": wanted}]
    return [
        {"op": "add", "path": _pointer("metadata", "labels", k), "value": v}
        for k, v in wanted.items()
        if current.get(k) != v
    ]


def ttemplate_patch(obj: Obj) -> list[Obj]:
    """Label tars.io/Parent with the parent (absent when the template is its own parent)."""
    parent = (obj.get("spec") or {}).get("parent")
    labels = (obj.get("metadata") or {}).get("labels") or {}
    if parent and parent != (obj.get("metadata") or {}).get("name"):
        return label_patch(obj, {meta.PARENT: str(parent)})
    if meta.PARENT in labels:
        return [{"op": "remove", "path": _pointer("metadata", "labels", meta.PARENT)}]
    return []


def ttree_patch(obj: Obj) -> list[Obj]:
    """An app whose businessRef names no business gets businessRef ""."""
    businesses = {b.get("name") for b in obj.get("businesses") or []}
    return [
        {"op": "replace", "path": f"/apps/{i}/businessRef", "value": ""}
        for i, app in enumerate(obj.get("apps") or [])
        if app.get("businessRef") and app.get("businessRef") not in businesses
    ]


def timage_patch(obj: Obj) -> list[Obj]:
    """Releases with a duplicate id: the first in order is kept."""
    releases = obj.get("releases") or []
    seen: set[str] = set()
    kept = []
    for release in releases:
        if release.get("id") in seen:
            continue
        seen.add(str(release.get("id")))
        kept.append(release)
    return [] if len(kept) == len(releases) else [{"op": "replace", "path": "/releases", "value": kept}]


def hash_password(password: str) -> str:
    """K8SFramework's stored form: bcrypt of the hex SHA-1 of the password."""
    import hashlib

    import bcrypt

    digest = hashlib.sha1(password.encode()).hexdigest().encode()
    return str(bcrypt.hashpw(digest, bcrypt.gensalt()).decode())


def check_password(password: str, hashed: str) -> bool:
    import hashlib

    import bcrypt

    digest = hashlib.sha1(password.encode()).hexdigest().encode()
    return bool(bcrypt.checkpw(digest, hashed.encode()))


def taccount_patch(obj: Obj, old: Obj | None) -> list[Obj]:
    """A plain `password` is replaced by `bcryptPassword`; a new password invalidates the tokens."""
    auth = ((obj.get("spec") or {}).get("authentication")) or {}
    password = auth.get("password")
    if not password:
        return []
    ops: list[Obj] = [
        {"op": "remove", "path": "/spec/authentication/password"},
        {"op": "add", "path": "/spec/authentication/bcryptPassword", "value": hash_password(str(password))},
    ]
    old_hash = (((old or {}).get("spec") or {}).get("authentication") or {}).get("bcryptPassword")
    changed = not (old_hash and check_password(str(password), str(old_hash)))
    if changed and auth.get("tokens"):
        ops.append({"op": "replace", "path": "/spec/authentication/tokens", "value": []})
    return ops


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


def _wanted_replicas(obj: Obj, k8s: Obj, has_release: bool) -> int:
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
    if spec.get("subType") != "tars" or not isinstance(release, dict) or release.get("nodeImage"):
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
    tars_server = spec.get("subType") == "tars"
    if tars_server and isinstance(k8s, dict):
        gates = list(k8s.get("readinessGates") or [])
        wanted = [meta.ACTIVE_GATE] + [g for g in gates if g != meta.ACTIVE_GATE]
        if "readinessGates" not in k8s or gates != wanted:
            ops.append({"op": "add", "path": "/spec/k8s/readinessGates", "value": wanted})
    if isinstance(k8s, dict):
        if (k8s.get("hostPorts") or k8s.get("hostIPC")) and not k8s.get("notStacked"):
            # two pods of the server on one node would fight for the host port / IPC namespace
            ops.append({"op": "add", "path": "/spec/k8s/notStacked", "value": True})
        release = spec.get("release")
        replicas = _wanted_replicas(obj, k8s, isinstance(release, dict))
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


# --- the admission service --------------------------------------------------------------------------------------
OWNED_KINDS = ("StatefulSet", "DaemonSet", "Service")


def is_system_user(username: str) -> bool:
    """Kubernetes' own controllers (garbage collector, namespace, StatefulSet, ... controllers)."""
    return username.startswith("system:serviceaccount:kube-system:") or username in (
        "system:kube-controller-manager",
        "system:kube-scheduler",
        "system:apiserver",
    )


def check_owned(request: Obj, owners: set[str]) -> str | None:
    """Refusal message when someone other than the operator (or Kubernetes) changes an object it owns."""
    username = str((request.get("userInfo") or {}).get("username", ""))
    if username in owners or is_system_user(username):
        return None
    obj: Obj = request.get("oldObject") or request.get("object") or {}
    md = obj.get("metadata") or {}
    owner = next(
        (r for r in md.get("ownerReferences") or [] if r.get("kind") == "TServer" and r.get("controller")), None
    )
    if owner is None or meta.SERVER_APP not in (md.get("labels") or {}):
        return None
    kind = request.get("kind", {}).get("kind")
    verb = "deleted" if request.get("operation") == "DELETE" else "changed"
    return (
        f"{kind} {md.get('name')} is managed by the k8stars operator for TServer {owner.get('name')} and cannot be "
        f"{verb} by {username}: edit the TServer instead (the operator would undo changes made here)"
    )


class Admission:
    """Answers AdmissionReviews; `kube` (optional) is used for checks that read other objects; `owners` are the
    usernames allowed to change the StatefulSets/DaemonSets/Services the operator owns (its own identity);
    `tconfig_guard`: seconds an activated TConfig cannot be deleted after its activation."""

    def __init__(
        self,
        kube: Kube | None = None,
        owners: set[str] | None = None,
        tconfig_guard: float = tconfig.DEFAULT_GUARD_SECONDS,
    ) -> None:
        self.kube = kube
        self.owners = owners or set()
        self.tconfig_guard = tconfig_guard

    async def validate(self, request: Obj) -> tuple[bool, str]:
        kind = request.get("kind", {}).get("kind")
        if kind in OWNED_KINDS:
            refusal = check_owned(request, self.owners)
            return refusal is None, refusal or ""
        if request.get("operation") == "DELETE":
            refusal = await self._deletion_blocked(request)
            return refusal is None, refusal or ""
        obj: Obj = request.get("object") or {}
        old: Obj | None = request.get("oldObject") if request.get("operation") == "UPDATE" else None
        namespace = str(request.get("namespace") or "")
        if kind == "TServer":
            errors = validate_tserver(obj, old)
            errors += replica_bounds(obj)[2]
            errors += node_image_missing(obj)
            errors += await self._template_exists(namespace, obj)
        elif kind == "TConfig":
            username = str((request.get("userInfo") or {}).get("username", ""))
            errors = validate_tconfig(obj, old, by_operator=username in self.owners)
            errors += await self._master_exists(namespace, obj, old)
        elif kind == "TTemplate":
            errors = validate_ttemplate(obj, old)
            errors += await self._parent_exists(namespace, obj)
        elif kind == "TTree":
            errors = validate_ttree(obj)
        else:
            errors = []
        if errors:
            what = f"{kind} {obj.get('metadata', {}).get('name', '')}".strip()
            return False, f"{what} is invalid: " + "; ".join(errors)
        return True, ""

    async def mutate(self, request: Obj) -> list[Obj]:
        kind = request.get("kind", {}).get("kind")
        obj: Obj = request.get("object") or {}
        if request.get("operation") not in ("CREATE", "UPDATE"):
            return []
        if kind == "TServer":
            now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            return tserver_patch(obj, await self._default_node_image(str(request.get("namespace") or ""), obj), now)
        if kind == "TConfig":
            old = request.get("oldObject") if request.get("operation") == "UPDATE" else None
            return label_patch(obj, tconfig_labels(obj)) + tconfig.mutation(obj, old, datetime.now(UTC))
        if kind == "TTemplate":
            return ttemplate_patch(obj)
        if kind == "TTree":
            return ttree_patch(obj)
        if kind == "TImage":
            return timage_patch(obj)
        if kind == "TAccount":
            return taccount_patch(obj, request.get("oldObject") if request.get("operation") == "UPDATE" else None)
        return []

    async def _default_node_image(self, namespace: str, obj: Obj) -> tuple[str, str] | None:
        """TFrameworkConfig tars-framework's nodeImage (image, secret), read only when a TARS server's release
        lacks one."""
        spec: Obj = obj.get("spec") or {}
        release = spec.get("release")
        if self.kube is None or spec.get("subType") != "tars" or not isinstance(release, dict):
            return None
        if release.get("nodeImage"):
            return None
        framework = await self.kube.get(TFRAMEWORKCONFIG, namespace, tconfig.FRAMEWORK_CONFIG)
        node: Obj = (framework or {}).get("nodeImage") or {}
        image = str(node.get("image") or "").strip()
        return (image, str(node.get("secret") or "")) if image else None

    async def _deletion_blocked(self, request: Obj) -> str | None:
        """A TTemplate used by a child template or a TServer, or a server-level TConfig with an activated pod-level
        one, cannot be deleted."""
        kind = request.get("kind", {}).get("kind")
        old: Obj = request.get("oldObject") or {}
        namespace = str(request.get("namespace") or "")
        name = str(request.get("name") or old.get("metadata", {}).get("name", ""))
        if self.kube is None:
            return None
        if kind == "TTemplate":
            children = [
                t["metadata"]["name"]
                for t in (await self.kube.list(TTEMPLATE, namespace)).get("items") or []
                if (t.get("spec") or {}).get("parent") == name and t["metadata"]["name"] != name
            ]
            servers = [
                t["metadata"]["name"]
                for t in (await self.kube.list(TSERVER, namespace)).get("items") or []
                if ((t.get("spec") or {}).get("tars") or {}).get("template") == name
            ]
            if children or servers:
                users = [f"TTemplate {c}" for c in children] + [f"TServer {t}" for t in servers]
                return f"TTemplate {name} cannot be deleted: it is used by {', '.join(users)}"
        if kind == "TConfig":
            return await self._tconfig_deletion_blocked(request, namespace, name, old)
        return None

    async def _tconfig_deletion_blocked(self, request: Obj, namespace: str, name: str, old: Obj) -> str | None:
        """An activated TConfig within its guard time, or a master with pod-level configs, cannot be deleted; by
        anyone but Kubernetes itself (namespace deletion and garbage collection must never be blocked)."""
        if self.kube is None or is_system_user(str((request.get("userInfo") or {}).get("username", ""))):
            return None
        if not tconfig.is_activated(old):
            return None  # history goes without a lookup
        selector = ",".join(
            f"{k}={v}"
            for k, v in {
                meta.SERVER_APP: old.get("app", ""),
                meta.SERVER_NAME: old.get("server", ""),
                meta.CONFIG_NAME: old.get("configName", ""),
            }.items()
        )
        others = (await self.kube.list(TCONFIG, namespace, selector=selector)).get("items") or []
        reasons = tconfig.delete_refusals(old, others, datetime.now(UTC), self.tconfig_guard)
        return f"TConfig {name} cannot be deleted: {'; '.join(reasons)}" if reasons else None

    async def _template_exists(self, namespace: str, obj: Obj) -> list[str]:
        spec: Obj = obj.get("spec") or {}
        template = (spec.get("tars") or {}).get("template")
        if self.kube is None or spec.get("subType") != "tars" or not template:
            return []
        if await self.kube.get(TTEMPLATE, namespace, str(template)) is None:
            return [f"spec.tars.template {template!r} does not exist: create the TTemplate first"]
        return []

    async def _parent_exists(self, namespace: str, obj: Obj) -> list[str]:
        parent = (obj.get("spec") or {}).get("parent")
        if self.kube is None or not parent or parent == obj.get("metadata", {}).get("name"):
            return []
        if await self.kube.get(TTEMPLATE, namespace, str(parent)) is None:
            return [f"spec.parent {parent!r} does not exist: create the parent TTemplate first"]
        return []

    async def _master_exists(self, namespace: str, obj: Obj, old: Obj | None) -> list[str]:
        if self.kube is None or old is not None or str(obj.get("podSeq", "m")) == "m" or not obj.get("server"):
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
        masters = (await self.kube.list(TCONFIG, namespace, selector=selector)).get("items") or []
        if not masters:
            return [
                f"a pod-level config (podSeq {obj.get('podSeq')}) overrides a server-level one: create and activate "
                f"{obj.get('configName')!r} with podSeq m for {obj.get('app')}.{obj.get('server')} first"
            ]
        return []


def _review(uid: str, allowed: bool, message: str = "", patch: list[Obj] | None = None) -> Obj:
    response: Obj = {"uid": uid, "allowed": allowed}
    if not allowed:
        response["status"] = {"code": 422, "reason": "Invalid", "message": message}
    if patch:
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(json.dumps(patch).encode()).decode()
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}


Handler = Callable[[web.Request], Coroutine[Any, Any, web.StreamResponse]]


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


WEBHOOK_KINDS = {"tservers": "TServer", "tconfigs": "TConfig", "ttemplates": "TTemplate", "ttrees": "TTree"}
MUTATED = ["taccounts", "tconfigs", "timages", "tservers", "ttemplates", "ttrees"]


def webhook_configurations(
    base_url: str,
    ca_bundle: str,
    *,
    name: str = "k8stars",
    namespace_selector: Obj | None = None,
) -> tuple[Obj, Obj]:
    """The Mutating- and ValidatingWebhookConfiguration pointing at `base_url` (https://host:port)."""

    def hook(kind: str, path: str, resources: list[str]) -> Obj:
        entry: Obj = {
            "name": f"{kind}.{name}.{meta.GROUP}",
            "clientConfig": {"url": f"{base_url}{path}", "caBundle": ca_bundle},
            "rules": [
                {
                    "apiGroups": [meta.GROUP],
                    "apiVersions": [meta.VERSION],
                    "operations": ["CREATE", "UPDATE"],
                    "resources": resources,
                    "scope": "Namespaced",
                }
            ],
            "admissionReviewVersions": ["v1"],
            "sideEffects": "None",
            "failurePolicy": "Fail",
            "timeoutSeconds": 5,
        }
        if namespace_selector is not None:
            entry["namespaceSelector"] = namespace_selector
        return entry

    # Deleting a TTemplate or TConfig still in use is refused too.
    validate = hook("validate", "/validate", sorted(WEBHOOK_KINDS))
    validate["rules"].append(
        {"apiGroups": [meta.GROUP], "apiVersions": [meta.VERSION], "operations": ["DELETE"],
         "resources": ["tconfigs", "ttemplates"], "scope": "Namespaced"}
    )  # fmt: skip

    # Objects the operator owns: only it (and Kubernetes' controllers) may change or delete them. Ignore on failure,
    # so that a stopped operator never blocks garbage collection or namespace deletion.
    protect = hook("protect", "/validate", [])
    protect["rules"] = [
        {"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["UPDATE", "DELETE"],
         "resources": ["statefulsets", "daemonsets"], "scope": "Namespaced"},
        {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["UPDATE", "DELETE"],
         "resources": ["services"], "scope": "Namespaced"},
    ]  # fmt: skip
    protect["objectSelector"] = {"matchExpressions": [{"key": meta.SERVER_APP, "operator": "Exists"}]}
    protect["failurePolicy"] = "Ignore"

    mutating = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": f"{name}-mutating"},
        "webhooks": [hook("mutate", "/mutate", MUTATED)],
    }
    validating = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": f"{name}-validating"},
        "webhooks": [validate, protect],
    }
    return mutating, validating


async def whoami(kube: Kube) -> str:
    """The username the apiserver sees for this client (SelfSubjectReview)."""
    review = await kube.request(
        "POST",
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        body={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
    )
    return str(review["status"]["userInfo"]["username"])


async def register(kube: Kube, base_url: str, ca_bundle: str, **options: Any) -> tuple[str, str]:
    """Server-side apply both webhook configurations; returns their names."""
    from k8stars.kube.resources import MUTATING_WEBHOOK, VALIDATING_WEBHOOK

    mutating, validating = webhook_configurations(base_url, ca_bundle, **options)
    await kube.apply(MUTATING_WEBHOOK, None, mutating)
    await kube.apply(VALIDATING_WEBHOOK, None, validating)
    return mutating["metadata"]["name"], validating["metadata"]["name"]
