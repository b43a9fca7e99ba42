"""Conversion between the served versions of the k8s.tars.io kinds: the logic of the CRD conversion webhook (pure).

v1beta3 is the hub (it is what is stored): an object goes up to v1beta3 one version at a time, then down to the
wanted version. Only TServer (v1beta1 → v1beta2 → v1beta3) and TFrameworkConfig (v1beta2 → v1beta3) change shape
between versions; the other kinds' older schemas equal v1beta3's, so only their apiVersion changes.

Conversion is lossless both ways, so that a client of an older version can read-modify-write an object without
losing what it cannot see: going down, the fields the older version has no place for are kept in an annotation and
put back on the way up; going up, the one field v1beta3 dropped (v1beta1's `spec.release.source`) is kept the same
way. The annotations exist only while needed: a full round trip gives back the object it started from.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Sequence
from typing import Any

from k8stars.kube import meta

Obj = dict[str, Any]
Step = Callable[[Obj], None]

# v1beta3-only fields of spec.k8s (TServer), kept while the object is seen as v1beta2 or v1beta1.
CONVERSION_ANNOTATION = "k8stars.io/v1beta3-k8s"
# v1beta2-and-later fields of spec.release (nodeImage, nodeSecret), kept while the TServer is seen as v1beta1.
RELEASE_ANNOTATION = "k8stars.io/v1beta3-release"
# v1beta1's spec.release.source (which later versions dropped), kept while the TServer is seen as v1beta2/v1beta3.
SOURCE_ANNOTATION = "k8stars.io/v1beta1-release"
# TFrameworkConfig v1beta3's imageBuild.executor, kept while the object is seen as v1beta2.
EXECUTOR_ANNOTATION = "k8stars.io/v1beta3-imagebuild"

V1BETA1, V1BETA2, V1BETA3 = "v1beta1", "v1beta2", meta.VERSION

# Fields of spec.k8s each older TServer version lacks (besides readinessGates, handled on its own).
K8S_ONLY_V1BETA3 = ("command", "args")
K8S_SINCE_V1BETA2 = ("updateStrategy", "imagePullPolicy", "launcherType")
RELEASE_SINCE_V1BETA2 = ("nodeImage", "nodeSecret")
# What the apiserver fills in for those (the CRD's defaults, applied whenever v1beta3 is read): not worth keeping.
K8S_DEFAULTS: dict[str, Any] = {
    "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
    "imagePullPolicy": "Always",
    "launcherType": "background",
}


class ConversionError(ValueError):
    """An object that cannot be converted (unknown group, kind or version)."""


# --- annotations that carry what a version has no place for ----------------------------------------------------
def _stash(obj: Obj, key: str, values: Obj) -> None:
    """Merge `values` into the JSON object kept in annotation `key` (nothing to keep: no annotation)."""
    if not values:
        return
    md: Obj = obj.setdefault("metadata", {})
    annotations: Obj = dict(md.get("annotations") or {})
    kept: Obj = _load(annotations.get(key))
    kept.update(values)
    annotations[key] = json.dumps(kept, sort_keys=True, separators=(",", ":"))
    md["annotations"] = annotations


def _unstash(obj: Obj, key: str, fields: Sequence[str] | None = None) -> Obj:
    """Take `fields` (all when None) out of annotation `key`; the annotation goes away once it is empty."""
    md: Obj = obj.get("metadata") or {}
    annotations: Obj = dict(md.get("annotations") or {})
    if key not in annotations:
        return {}
    kept = _load(annotations.pop(key))
    taken = {k: kept.pop(k) for k in list(kept) if fields is None or k in fields}
    if kept:
        annotations[key] = json.dumps(kept, sort_keys=True, separators=(",", ":"))
    if annotations:
        md["annotations"] = annotations
    else:
        md.pop("annotations", None)
    return taken


def _load(text: Any) -> Obj:
    """An annotation's JSON object; anything else (edited by hand) counts as empty rather than failing reads."""
    try:
        value = json.loads(text) if isinstance(text, str) and text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _section(obj: Obj, *path: str) -> Obj | None:
    """The dict at spec.<path...>, or None when absent (or not a dict)."""
    node: Any = obj.get("spec")
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else None


# --- TServer ---------------------------------------------------------------------------------------------------
def _tserver_3_to_2(obj: Obj) -> None:
    """readinessGates (a list) becomes readinessGate: its first entry, as K8SFramework converts it (for a TARS server
    always tars.io/active). The rest of the list is kept in the annotation (an empty list too, so that it comes
    back as one); command and args are kept there too."""
    k8s = _section(obj, "k8s")
    if k8s is None:
        return
    saved: Obj = {}
    if "readinessGates" in k8s:
        gates = k8s.pop("readinessGates")
        gates = gates if isinstance(gates, list) else []
        if gates:
            k8s["readinessGate"] = gates[0]
        if len(gates) != 1:
            saved["readinessGates"] = gates[1:]
    for key in K8S_ONLY_V1BETA3:
        if key in k8s:
            saved[key] = k8s.pop(key)
    _stash(obj, CONVERSION_ANNOTATION, saved)


def _tserver_2_to_3(obj: Obj) -> None:
    """readinessGate becomes the first entry of readinessGates, followed by the kept rest of the list (K8SFramework
    appends what it kept whatever the gate became: an older client replaces the first gate only)."""
    saved = _unstash(obj, CONVERSION_ANNOTATION)
    k8s = _section(obj, "k8s")
    if k8s is None:
        return
    gate = k8s.pop("readinessGate", None)
    gates = [gate] if gate else []
    rest = saved.get("readinessGates")
    if isinstance(rest, list):
        gates += rest
    if gates or isinstance(rest, list):
        k8s["readinessGates"] = gates
    for key in (*K8S_ONLY_V1BETA3, *K8S_SINCE_V1BETA2):
        if key in saved and key not in k8s:
            k8s[key] = saved[key]


def _tserver_2_to_1(obj: Obj) -> None:
    """v1beta1 has no updateStrategy, imagePullPolicy, launcherType, release.nodeImage/nodeSecret (kept in
    annotations, but for default values, which come back by themselves) and had release.source (given back from its
    annotation)."""
    k8s = _section(obj, "k8s")
    if k8s is not None:
        dropped = {k: k8s.pop(k) for k in K8S_SINCE_V1BETA2 if k in k8s}
        _stash(obj, CONVERSION_ANNOTATION, {k: v for k, v in dropped.items() if v != K8S_DEFAULTS[k]})
    release = _section(obj, "release")
    source = _unstash(obj, SOURCE_ANNOTATION)
    if release is not None:
        _stash(obj, RELEASE_ANNOTATION, {k: release.pop(k) for k in RELEASE_SINCE_V1BETA2 if k in release})
        if "source" in source:
            release["source"] = source["source"]


def _tserver_1_to_2(obj: Obj) -> None:
    k8s = _section(obj, "k8s")
    saved = _unstash(obj, CONVERSION_ANNOTATION, K8S_SINCE_V1BETA2)
    if k8s is not None:
        k8s.update({k: v for k, v in saved.items() if k not in k8s})
    release = _section(obj, "release")
    kept_release = _unstash(obj, RELEASE_ANNOTATION)
    if release is not None:
        release.update({k: v for k, v in kept_release.items() if k in RELEASE_SINCE_V1BETA2 and k not in release})
        if "source" in release:
            _stash(obj, SOURCE_ANNOTATION, {"source": release.pop("source")})


# --- TFrameworkConfig ------------------------------------------------------------------------------------------
def _tframeworkconfig_3_to_2(obj: Obj) -> None:
    """imageUpload was called imageRegistry; imageBuild.executor did not exist (kept in an annotation)."""
    if "imageUpload" in obj:
        obj["imageRegistry"] = obj.pop("imageUpload")
    build = obj.get("imageBuild")
    if isinstance(build, dict) and "executor" in build:
        _stash(obj, EXECUTOR_ANNOTATION, {"executor": build.pop("executor")})


def _tframeworkconfig_2_to_3(obj: Obj) -> None:
    if "imageRegistry" in obj:
        obj["imageUpload"] = obj.pop("imageRegistry")
    kept = _unstash(obj, EXECUTOR_ANNOTATION)
    if "executor" in kept:
        build = obj.setdefault("imageBuild", {})
        if isinstance(build, dict) and "executor" not in build:
            build["executor"] = kept["executor"]


# --- versions of each kind -------------------------------------------------------------------------------------
# Served versions, oldest first, and the step up from each version to the next (the step down from the next back).
VERSIONS: dict[str, tuple[str, ...]] = {
    "TServer": (V1BETA1, V1BETA2, V1BETA3),
    "TFrameworkConfig": (V1BETA2, V1BETA3),
    **{
        kind: (V1BETA1, V1BETA2, V1BETA3)
        for kind in ("TConfig", "TTemplate", "TImage", "TEndpoint", "TExitedRecord", "TTree", "TAccount")
    },
}
UP: dict[tuple[str, str], Step] = {
    ("TServer", V1BETA1): _tserver_1_to_2,
    ("TServer", V1BETA2): _tserver_2_to_3,
    ("TFrameworkConfig", V1BETA2): _tframeworkconfig_2_to_3,
}
DOWN: dict[tuple[str, str], Step] = {
    ("TServer", V1BETA2): _tserver_2_to_1,
    ("TServer", V1BETA3): _tserver_3_to_2,
    ("TFrameworkConfig", V1BETA3): _tframeworkconfig_3_to_2,
}


def version_of(obj: Obj) -> str:
    api_version = str(obj.get("apiVersion", ""))
    group, _, version = api_version.rpartition("/")
    if group != meta.GROUP:
        raise ConversionError(f"apiVersion {api_version!r} is not of group {meta.GROUP}")
    return version


def convert_object(obj: Obj, to_version: str) -> Obj:
    """A copy of `obj` (any served version of a k8s.tars.io kind) as `to_version`."""
    kind = str(obj.get("kind", ""))
    versions = VERSIONS.get(kind)
    if versions is None:
        raise ConversionError(f"kind {kind!r} is not a k8s.tars.io kind k8stars converts ({', '.join(VERSIONS)})")
    from_version = version_of(obj)
    for version in (from_version, to_version):
        if version not in versions:
            raise ConversionError(f"{kind} has no version {version!r}: served versions are {', '.join(versions)}")
    out: Obj = copy.deepcopy(obj)
    position = versions.index(from_version)
    target = versions.index(to_version)
    while position < target:  # up, towards the hub
        UP.get((kind, versions[position]), _unchanged)(out)
        position += 1
    while position > target:  # down, away from it
        DOWN.get((kind, versions[position]), _unchanged)(out)
        position -= 1
    out["apiVersion"] = f"{meta.GROUP}/{to_version}"
    return out


def convert_tserver(obj: Obj, to_version: str) -> Obj:
    """A TServer between v1beta1, v1beta2 and v1beta3 (see the module docstring)."""
    if obj.get("kind", "TServer") != "TServer":
        raise ConversionError(f"not a TServer: {obj.get('kind')!r}")
    return convert_object({**obj, "kind": "TServer"}, to_version)


def _unchanged(obj: Obj) -> None:
    """Kinds whose versions differ in name only."""
