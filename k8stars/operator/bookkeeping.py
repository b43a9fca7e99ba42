"""What the operator records about a TServer besides its workloads: the TEndpoint (a mirror of the TServer and the
state of its pods), the TServer's status, the TExitedRecord of its pods gone, the TTree app and the TImage release.
Pure functions of the objects, as k8stars.operator.translate."""

from __future__ import annotations

import time

from k8stars.kube import meta
from k8stars.kube.client import Obj

from .translate import HASH_ANNOTATION, is_tars, object_meta, release, selector_labels, selector_string, spec_hash

TREE_NAME = "tars-tree"
CREATE_PERSON = "k8stars-operator"


def spec_of(ts: Obj) -> Obj:
    spec: Obj = ts.get("spec") or {}
    return spec


def k8s_of(ts: Obj) -> Obj:
    k8s: Obj = spec_of(ts).get("k8s") or {}
    return k8s


# --- TEndpoint --------------------------------------------------------------------------------------------------
def endpoint(ts: Obj) -> Obj:
    spec = spec_of(ts)
    mirror: Obj = {k: spec[k] for k in ("app", "server", "subType", "important") if k in spec}
    if is_tars(ts) and spec.get("tars"):
        mirror["tars"] = spec["tars"]
    if not is_tars(ts) and spec.get("normal"):
        mirror["normal"] = spec["normal"]
    if k8s_of(ts).get("hostPorts"):
        mirror["hostPorts"] = k8s_of(ts)["hostPorts"]
    if spec.get("release"):
        mirror["release"] = spec["release"]
    body: Obj = {"apiVersion": meta.API_VERSION, "kind": "TEndpoint", "metadata": object_meta(ts), "spec": mirror}
    body["metadata"]["annotations"] = {HASH_ANNOTATION: spec_hash(body)}
    return body


def _condition(pod: Obj, kind: str) -> Obj | None:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            c: Obj = cond
            return c
    return None


def endpoint_pod(pod: Obj, tars: bool) -> Obj:
    """One entry of TEndpoint status.pods. settingState: what the operator wants (Active unless the pod is being
    deleted); presentState: what the pod is (its `tars.io/active` condition for TARS servers, set by the in-pod
    agent with reason = the TARS state; readiness for normal servers)."""
    md = pod.get("metadata") or {}
    st = pod.get("status") or {}
    deleting = bool(md.get("deletionTimestamp"))
    phase = st.get("phase", "Pending")
    present, message = "Inactive", ""
    gate = _condition(pod, meta.ACTIVE_GATE) if tars else _condition(pod, "Ready")
    if deleting:
        present, message = "Deactivating", "pod is terminating"
    elif gate is not None and gate.get("status") == "True":
        present, message = "Active", str(gate.get("message") or "")
    elif phase == "Running":
        present = str(gate.get("reason") or "Activating") if gate is not None else "Activating"
        message = str(gate.get("message") or "") if gate is not None else "waiting for the server to become active"
    elif phase == "Pending":
        present, message = "Inactive", "pod is pending"
    else:
        present, message = "Inactive", f"pod phase {phase}"
    return {
        "uid": md.get("uid", ""),
        "name": md.get("name", ""),
        "id": (md.get("labels") or {}).get(meta.SERVER_ID, ""),
        "pid": (md.get("annotations") or {}).get("tars.io/pid", ""),
        "podIP": st.get("podIP", ""),
        "hostIP": st.get("hostIP", ""),
        "startTime": st.get("startTime", ""),
        "containerStatuses": st.get("containerStatuses") or [],
        "settingState": "Inactive" if deleting else "Active",
        "presentState": present,
        "presentMessage": message,
    }


def endpoint_status(pods: list[Obj], tars: bool) -> Obj:
    return {"pods": [endpoint_pod(p, tars) for p in sorted(pods, key=lambda p: str(p["metadata"]["name"]))]}


def tserver_status(ts: Obj, workload: Obj | None) -> Obj:
    st = (workload or {}).get("status") or {}
    if (workload or {}).get("kind") == "DaemonSet":
        counts = (st.get("desiredNumberScheduled", 0), st.get("numberReady", 0), st.get("currentNumberScheduled", 0))
    else:
        counts = (st.get("replicas", 0), st.get("readyReplicas", 0), st.get("currentReplicas", 0))
    return {
        "replicas": int(counts[0] or 0),
        "readyReplicas": int(counts[1] or 0),
        "currentReplicas": int(counts[2] or 0),
        "selector": selector_string(ts),
    }


# --- TExitedRecord ----------------------------------------------------------------------------------------------
def exited_pod(pod: Obj) -> Obj:
    md = pod.get("metadata") or {}
    st = pod.get("status") or {}
    deleted = md.get("deletionTimestamp") or _now()
    return {
        "uid": str(md.get("uid", "")),
        "name": str(md.get("name", "")),
        "id": str((md.get("labels") or {}).get(meta.SERVER_ID, "")),
        "nodeIP": str(st.get("hostIP", "")),
        "podIP": str(st.get("podIP", "")),
        "createTime": str(md.get("creationTimestamp", "")),
        "deleteTime": str(deleted),
    }


def exited_record(ts: Obj, pods: list[Obj]) -> Obj:
    """K8SFramework's shape: named like the TServer, its selector labels, the TServer as controlling owner, `app`,
    `server`, and `pods` newest first (`[]` from the TServer's creation)."""
    spec = spec_of(ts)
    return {
        "apiVersion": meta.API_VERSION,
        "kind": "TExitedRecord",
        "metadata": object_meta(ts),
        "app": spec.get("app", ""),
        "server": spec.get("server", ""),
        "pods": pods,
    }


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# --- TTree, TImage ----------------------------------------------------------------------------------------------
def tree_app(app: str) -> Obj:
    return {"name": app, "businessRef": "", "createPerson": CREATE_PERSON, "createTime": _now()}


def tree(app: str) -> Obj:
    return {
        "apiVersion": meta.API_VERSION,
        "kind": "TTree",
        "metadata": {"name": TREE_NAME},
        "businesses": [],
        "apps": [tree_app(app)],
    }


def image_record(ts: Obj, releases: list[Obj], limit: int) -> Obj:
    """The TServer's TImage with its current release first (an id already recorded keeps its first entry)."""
    rel = release(ts)
    entry: Obj = {"id": str(rel["id"]), "image": str(rel["image"]), "createPerson": CREATE_PERSON, "createTime": _now()}
    if rel.get("secret"):
        entry["secret"] = str(rel["secret"])
    if not any(r.get("id") == entry["id"] for r in releases):
        releases = [entry, *releases]
    return {
        "apiVersion": meta.API_VERSION,
        "kind": "TImage",
        "metadata": {
            "name": ts["metadata"]["name"],
            "labels": {**selector_labels(ts), "tars.io/ImageType": "server"},
        },
        "imageType": "server",
        "releases": releases[:limit],
    }
