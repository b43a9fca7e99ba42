"""The TServer's `status.conditions`: what keeps the server from serving its release, in words, from what the
operator already caches (the TServer, its StatefulSet/DaemonSet, its pods). K8SFramework's status has the replica
counts only; its users find an image that cannot be pulled or a crash loop pod by pod. Here one condition says it:

    Ready  True   Active            2 pods of release v2 active
    Ready  False  ImagePullBackOff  pod test-echoserver-1: image 127.0.0.1:5000/test/x:nope cannot be pulled: ...

Level-based and stable: the message names no counters that move by themselves (restart counts, back-off times), so
the status is written when the situation changes, not at every kubelet retry; `lastTransitionTime` moves only when
`status` flips (the Kubernetes convention)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from k8stars.kube import meta
from k8stars.kube.client import Obj

READY = "Ready"
IMAGE_PULL = frozenset({"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"})
CRASH = frozenset({"CrashLoopBackOff", "RunContainerError"})
# kubelet's back-off messages carry the delay ("back-off 20s restarting ..."), which grows at every retry
BACK_OFF = re.compile(r"\bback-off \d+\S*", re.IGNORECASE)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _pod_condition(pod: Obj, kind: str) -> Obj | None:
    return next((c for c in (pod.get("status") or {}).get("conditions") or [] if c.get("type") == kind), None)


def _container_problem(pod: Obj) -> tuple[str, str] | None:
    """(reason, message) for a container of the pod that waits on an error: image pull, crash loop, bad config."""
    name = pod["metadata"]["name"]
    st = pod.get("status") or {}
    for cs in (st.get("initContainerStatuses") or []) + (st.get("containerStatuses") or []):
        waiting = (cs.get("state") or {}).get("waiting") or {}
        reason = str(waiting.get("reason") or "")
        detail = BACK_OFF.sub("back-off", str(waiting.get("message") or "")).strip()
        if reason in IMAGE_PULL:
            # kubelet alternates ErrImagePull / ImagePullBackOff: one reason, so the status does not flap
            return "ImagePullBackOff", f"pod {name}: image {cs.get('image')} cannot be pulled" + _cause(detail)
        last = (cs.get("lastState") or {}).get("terminated") or {}
        # between two back-offs the container runs for a moment: still a crash loop until it is ready
        if reason in CRASH or (last.get("exitCode") and cs.get("restartCount") and not cs.get("ready")):
            return "CrashLoopBackOff", (f"pod {name}: container {cs.get('name')} keeps exiting (exit code "
                                        f"{last.get('exitCode', '?')})")  # fmt: skip
        if reason and reason not in ("ContainerCreating", "PodInitializing"):
            return reason, f"pod {name}: container {cs.get('name')}: {reason}" + _cause(detail)
    return None


def _cause(detail: str) -> str:
    return f": {detail[:300]}" if detail else ""


def _pod_problem(pod: Obj, tars: bool) -> tuple[str, str] | None:
    """Why a live pod does not serve, if it is stuck (not merely starting)."""
    name = pod["metadata"]["name"]
    scheduled = _pod_condition(pod, "PodScheduled")
    if scheduled is not None and scheduled.get("reason") == "Unschedulable":
        return "Unschedulable", f"pod {name} cannot be scheduled: {scheduled.get('message', '')}".rstrip(": ")
    if found := _container_problem(pod):
        return found
    gate = _pod_condition(pod, meta.ACTIVE_GATE) if tars else None
    if gate is not None and gate.get("status") != "True" and gate.get("reason") == "Inactive":
        # the agent restarts a server that exits (launcherType background): the container runs, the server not
        return "ServerInactive", (f"pod {name}: the TARS server is inactive (it exits or fails its health checks; "
                                  f"kubectl logs {name})")  # fmt: skip
    return None


def _serving(pod: Obj, tars: bool) -> bool:
    gate = _pod_condition(pod, meta.ACTIVE_GATE if tars else READY)
    return gate is not None and gate.get("status") == "True"


def ready_condition(ts: Obj, workload: Obj | None, pods: list[Obj], tars: bool) -> tuple[str, str, str]:
    """(status, reason, message) of the Ready condition."""
    spec = ts.get("spec") or {}
    release = spec.get("release") or {}
    desired = int(((spec.get("k8s") or {}).get("replicas")) or 0)
    if not release.get("image"):
        return "False", "NoRelease", "no release published yet (spec.release)"
    rid = str(release.get("id", ""))
    live = sorted((p for p in pods if not p["metadata"].get("deletionTimestamp")), key=lambda p: p["metadata"]["name"])
    for pod in live:
        if found := _pod_problem(pod, tars):
            return "False", *found
    if workload is None:
        return "False", "Pending", "no workload yet"
    if not (spec.get("k8s") or {}).get("daemonSet"):  # (a listed object has no "kind")
        current = [p for p in live if (p["metadata"].get("labels") or {}).get(meta.SERVER_ID) == rid]
        if len(current) < len(live):
            return "False", "Updating", f"{len(current)} of {desired} pods run release {rid}"
    else:
        desired = int(((workload.get("status") or {}).get("desiredNumberScheduled")) or 0)
    serving = sum(1 for p in live if _serving(p, tars))
    if serving < desired or len(live) > desired:
        return "False", "Activating", f"{serving} of {desired} pods of release {rid} active"
    return "True", "Active", f"{desired} pods of release {rid} active"


def conditions(ts: Obj, workload: Obj | None, pods: list[Obj], tars: bool) -> list[Obj]:
    """`status.conditions`: the Ready condition, keeping the previous lastTransitionTime while its status holds."""
    status, reason, message = ready_condition(ts, workload, pods, tars)
    previous: Obj = next((c for c in (ts.get("status") or {}).get("conditions") or [] if c.get("type") == READY), {})
    since = previous.get("lastTransitionTime") if previous.get("status") == status else None
    return [{"type": READY, "status": status, "reason": reason, "message": message,
             "lastTransitionTime": since or _now()}]  # fmt: skip
