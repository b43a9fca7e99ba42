"""The TConfig life cycle, as K8SFramework has it, in one place: the rules the admission webhook enforces
(webhook/tconfig.py calls the `*_errors`/`delete_refusals`/`mutation` functions) and the plan the controller carries
out per group (controller.py calls `GroupReconciler`).

A group is (app, server, configName, podSeq): podSeq `m` is the server-level master, `"0"`, `"1"`, ... pod-level
slaves. In a group:

- at most one version is activated; the newest activation wins and the others are deactivated (`activated: false`,
  label `tars.io/Activated=false`, annotation `k8stars.io/superseded-by` naming the winner);
- an activated version cannot be deleted during a guard time after its activation (creation, or the update that
  re-activated an old version: annotation `k8stars.io/activated-at`), nor a master while pod-level configs of its
  name exist;
- once the activated version is deleted, the versions it superseded are labelled `tars.io/Deleting` and deleted:
  deleting the activated version deletes its history (K8SFramework's cascade);
- at most `recordLimit.tconfigHistory` deactivated versions are kept (TFrameworkConfig `tars-framework` of the
  namespace; 10 without one); older ones are deleted, oldest first.

Only the operator deactivates and sets `tars.io/Deactivate`/`tars.io/Deleting` (in K8SFramework: only the
controller's account). Every controller write is idempotent: merge patches of labels and fields, deletes with uid and
resourceVersion preconditions (a version changed meanwhile is left for the next pass).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from k8stars.kube import meta, tconfigs
from k8stars.kube.client import ApiException, Kube, Obj
from k8stars.kube.resources import TCONFIG
from k8stars.kube.tconfigs import ACTIVATED_AT

from . import records

log = logging.getLogger("k8stars.operator.tconfig")

DEFAULT_GUARD_SECONDS = 48.0  # K8SFramework's webhook refuses deleting an activated TConfig for 48 s
FRAMEWORK_CONFIG = "tars-framework"  # the one TFrameworkConfig of a namespace
SUPERSEDED_BY = "k8stars.io/superseded-by"  # set by the operator when it deactivates a version
DELETING_VALUE = "Deleting"  # K8SFramework's value of the tars.io/Deleting label
IMMUTABLE = ("app", "server", "configName", "configContent", "podSeq", "version")
FRAMEWORK_LABELS = (meta.DEACTIVATE, meta.DELETING)


# --- reading TConfigs -------------------------------------------------------------------------------------------
def group_of(obj: Obj) -> str:
    return "/".join(str(obj.get(k, "")) for k in ("app", "server", "configName", "podSeq"))


def labels_of(obj: Obj) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("labels") or {})


def annotations_of(obj: Obj) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("annotations") or {})


def is_activated(obj: Obj) -> bool:
    return bool(obj.get("activated", True))  # the CRD defaults activated to true


def is_master(obj: Obj) -> bool:
    return str(obj.get("podSeq", "m")) == "m"


def format_time(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def activated_since(obj: Obj) -> datetime:
    """When the version became activated: its creation, or its re-activation when later (now, for an object not
    yet stored)."""
    return tconfigs.activated_since(obj) or datetime.now(UTC)


def history_limit(framework: Obj | None) -> int:
    """recordLimit.tconfigHistory of the namespace's TFrameworkConfig, else K8SFramework's default."""
    return records.limit(framework, "tconfigHistory")


# --- admission rules (pure) -------------------------------------------------------------------------------------
def create_errors(obj: Obj) -> list[str]:
    errors = [
        f"label {label} is set by the framework and cannot be given on create"
        for label in FRAMEWORK_LABELS
        if label in labels_of(obj)
    ]
    if not obj.get("server") and not is_master(obj):
        errors.append("an app-level config (no server) applies to every server of the app: podSeq must be m")
    return errors


def update_errors(obj: Obj, old: Obj, authorized: bool) -> list[str]:
    """`authorized`: the request comes from the operator, which deactivates and labels versions."""
    changed = [key for key in IMMUTABLE if old.get(key) != obj.get(key)]
    errors = [f"{key} cannot change: create a new TConfig version instead" for key in changed]
    if authorized:
        return errors
    old_labels, new_labels = labels_of(old), labels_of(obj)
    if meta.DELETING in old_labels:
        return [f"it is being deleted (label {meta.DELETING}) and cannot be changed any more"]
    if is_activated(old) and not is_activated(obj):
        errors.append(
            "an activated TConfig cannot be deactivated by hand (only the k8stars operator deactivates): activate "
            "another version instead"
        )
    for label in FRAMEWORK_LABELS:
        if old_labels.get(label) != new_labels.get(label):
            errors.append(f"label {label} is managed by the k8stars operator and cannot be changed by hand")
    return errors


def delete_refusals(old: Obj, others: list[Obj], now: datetime, guard: float) -> list[str]:
    """Why an activated TConfig cannot be deleted now (empty: it can). `others`: the TConfigs of the same app,
    server and configName (any podSeq)."""
    labels = labels_of(old)
    if not is_activated(old) or meta.DELETING in labels or meta.DEACTIVATE in labels:
        return []  # history, or already on its way out
    reasons = []
    if is_master(old):
        slaves = sorted(
            str(o["metadata"]["name"])
            for o in others
            if not is_master(o) and meta.DELETING not in labels_of(o) and not o["metadata"].get("deletionTimestamp")
        )
        if slaves:
            reasons.append(f"the pod-level configs {', '.join(slaves)} override it; delete them first")
    since = activated_since(old)
    until = since + timedelta(seconds=guard)
    if now < until:
        wait = math.ceil((until - now).total_seconds())
        reasons.append(
            f"it was activated at {format_time(since)} and stays protected for the deletion guard time of {guard:g} s "
            f"(until {format_time(until)}, while pods may still be loading it); try again in {wait} s"
        )
    return reasons


def _pointer(*parts: str) -> str:
    return "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in parts)


def mutation(obj: Obj, old: Obj | None, now: datetime) -> list[Obj]:
    """JSON patch for `k8stars.io/activated-at`: stamped when an old version is re-activated, otherwise kept as it
    was (users cannot move their deletion guard)."""
    current = annotations_of(obj).get(ACTIVATED_AT)
    if old is not None and not is_activated(old) and is_activated(obj):
        wanted: str | None = format_time(now)
    else:
        wanted = annotations_of(old).get(ACTIVATED_AT) if old is not None else None
    if current == wanted:
        return []
    if wanted is None:
        return [{"op": "remove", "path": _pointer("metadata", "annotations", ACTIVATED_AT)}]
    if (obj.get("metadata") or {}).get("annotations") is None:
        return [{"op": "add", "path": "/metadata/annotations", "value": {ACTIVATED_AT: wanted}}]
    return [{"op": "add", "path": _pointer("metadata", "annotations", ACTIVATED_AT), "value": wanted}]


# --- the controller's plan for one group (pure) -----------------------------------------------------------------
@dataclass(frozen=True)
class Step:
    action: str  # "deactivate" | "deleting" (label tars.io/Deleting) | "delete"
    name: str
    uid: str
    resource_version: str
    superseded_by: str = ""


def _step(action: str, obj: Obj, superseded_by: str = "") -> Step:
    md = obj["metadata"]
    return Step(action, str(md["name"]), str(md.get("uid", "")), str(md.get("resourceVersion", "")), superseded_by)


def _activation_order(obj: Obj) -> tuple[datetime, int]:
    # creationTimestamp has whole seconds: within one second the later write (resourceVersion) wins.
    return activated_since(obj).replace(microsecond=0), int(obj["metadata"].get("resourceVersion") or 0)


def _age_order(obj: Obj) -> tuple[str, str, str]:
    return (str(obj["metadata"].get("creationTimestamp", "")), str(obj.get("version", "")), obj["metadata"]["name"])


def plan_group(members: list[Obj], limit: int) -> list[Step]:
    """What the operator does to the versions of one group (none being deleted already) to reach the rules above."""
    live = [m for m in members if not m["metadata"].get("deletionTimestamp")]
    steps = [_step("delete", m) for m in live if meta.DELETING in labels_of(m)]
    rest = [m for m in live if meta.DELETING not in labels_of(m)]
    candidates = [m for m in rest if is_activated(m) and meta.DEACTIVATE not in labels_of(m)]
    winner = max(candidates, key=_activation_order) if candidates else None
    winner_name = str(winner["metadata"]["name"]) if winner else ""
    losers = [m for m in rest if m is not winner and (is_activated(m) or meta.DEACTIVATE in labels_of(m))]
    steps += [_step("deactivate", m, winner_name) for m in losers]
    if winner is None and any(SUPERSEDED_BY in annotations_of(m) for m in rest):
        # The activated version was deleted: its history goes with it. As in K8SFramework, it is labelled
        # tars.io/Deleting first (visible to every reader), and the next pass deletes what carries the label.
        return steps + [_step("deleting", m) for m in rest]
    history = sorted((m for m in rest if m is not winner), key=_age_order)
    oldest = history[: max(0, len(history) - limit)]
    # A version deactivated in this pass changes its resourceVersion: the next pass deletes it if it is still due.
    return steps + [_step("delete", m) for m in oldest if not any(m is loser for loser in losers)]


# --- carrying it out --------------------------------------------------------------------------------------------
class GroupReconciler:
    """Executes plans; remembers what it did to which resourceVersion, so a pass run on a cache that has not yet
    seen its own earlier writes repeats none of them."""

    def __init__(self, kube: Kube) -> None:
        self.kube = kube
        self._done: dict[tuple[str, str], str] = {}  # (uid, action) -> resourceVersion acted on

    def forget(self, obj: Obj) -> None:
        uid = str(obj["metadata"].get("uid", ""))
        for action in ("deactivate", "deleting", "delete"):
            self._done.pop((uid, action), None)

    async def reconcile(self, namespace: str, members: list[Obj], limit: int) -> list[Step]:
        done = []
        for step in plan_group(members, limit):
            if self._done.get((step.uid, step.action)) == step.resource_version:
                continue
            await self._execute(namespace, step)
            self._done[(step.uid, step.action)] = step.resource_version
            done.append(step)
        return done

    async def _execute(self, namespace: str, step: Step) -> None:
        if step.action == "delete":
            await self._delete(namespace, step)
            return
        if step.action == "deactivate":
            md: Obj = {"labels": {meta.ACTIVATED: "false", meta.DEACTIVATE: None}}
            if step.superseded_by:
                md["annotations"] = {SUPERSEDED_BY: step.superseded_by}
            patch: Obj = {"activated": False, "metadata": md}
        else:
            patch = {"metadata": {"labels": {meta.DELETING: DELETING_VALUE}}}
        try:
            await self.kube.merge_patch(TCONFIG, namespace, step.name, patch)
        except ApiException as exc:
            if exc.status != 404:  # gone meanwhile: nothing left to do
                raise
        log.info("TConfig %s/%s: %s%s", namespace, step.name, step.action,
                 f" (superseded by {step.superseded_by})" if step.superseded_by else "")  # fmt: skip

    async def _delete(self, namespace: str, step: Step) -> None:
        # Preconditions: never delete a version re-created under the same name or changed (say, re-activated) since
        # the cache saw it; its watch event brings the group back with the new state.
        options = {"kind": "DeleteOptions", "apiVersion": "v1",
                   "preconditions": {"uid": step.uid, "resourceVersion": step.resource_version}}  # fmt: skip
        try:
            await self.kube.request("DELETE", TCONFIG.path(namespace, step.name), body=options)
        except ApiException as exc:
            if exc.status not in (404, 409):
                raise
            log.info("TConfig %s/%s changed or went away before its deletion: left for the next pass", namespace,
                     step.name)  # fmt: skip
            return
        log.info("TConfig %s/%s: deleted", namespace, step.name)
