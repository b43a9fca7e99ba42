"""The TConfig life cycle on the real control plane (docs/operator.md, TConfig): the webhooks' deletion guard and
framework labels, the operator's cascade and history limit. Users act as `alice` (impersonated, any RBAC); the test's
admin identity is the operator's own."""

from __future__ import annotations

import asyncio
import contextlib
import copy
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime
from typing import Any

import pytest
from operator_helpers import OperatorRunner, load_examples, resource_of, serving_webhooks, until

from k8stars.kube.client import ApiException, Kube, Obj
from k8stars.operator import Operator, tconfig
from k8stars.testing.cluster import Cluster

TCONFIG = resource_of("TConfig")
TFRAMEWORKCONFIG = resource_of("TFrameworkConfig")
GUARD = 5.0  # seconds; short, but far longer than the few calls made before a refusal is expected


@pytest.fixture
async def webhooks(k8s_cluster: Cluster, kube: Kube, namespace: str) -> AsyncIterator[None]:
    """The webhooks with a short TConfig guard time, registered for the test's namespace only."""
    async with serving_webhooks(k8s_cluster, kube, namespace, tconfig_guard=GUARD):
        yield


@pytest.fixture
def alice(kube: Kube) -> Kube:
    """A user who may do anything RBAC allows, but is not the operator."""
    return Kube(kube.api, "alice", headers={"Impersonate-User": "alice", "Impersonate-Group": "system:masters"})


def version(base: Obj, ver: str, **fields: object) -> Obj:
    doc = copy.deepcopy(base)
    doc.update(version=ver, configContent=f"<hello>\n  version={ver}\n</hello>\n", **fields)
    doc["metadata"] = {"name": f"test-helloserver-hello.conf-{doc.get('podSeq', 'm')}-{ver}"}
    return doc


async def refused(action: Awaitable[Any]) -> str:
    with pytest.raises(ApiException) as err:
        await action
    text = str(err.value.body)
    assert "denied the request" in text, text
    return text


async def dry_run_delete(client: Kube, namespace: str, name: str) -> bool:
    """Whether a delete would be admitted now (the webhooks see dry runs; nothing is deleted)."""
    try:
        await client.request("DELETE", TCONFIG.path(namespace, name), query={"dryRun": "All"})
    except ApiException as exc:
        if "deletion guard time" in str(exc.body):
            return False
        raise
    return True


async def get(kube: Kube, namespace: str, name: str) -> Obj | None:
    return await kube.get(TCONFIG, namespace, name)


async def names(kube: Kube, namespace: str) -> set[str]:
    return {c["metadata"]["name"] for c in (await kube.list(TCONFIG, namespace))["items"]}


async def test_guard_time_reactivation_and_cascade(
    kube: Kube, alice: Kube, namespace: str, webhooks: None, operator: OperatorRunner
) -> None:
    master, _ = load_examples("tconfig.yaml")
    v0, v1, v2 = (version(master, v) for v in ("v0", "v1", "v2"))
    for doc in (v0, v1, v2):
        await alice.create(TCONFIG, namespace, doc)
    # The activated version cannot be deleted during its guard time.
    text = await refused(alice.delete(TCONFIG, namespace, v2["metadata"]["name"]))
    assert f"TConfig {v2['metadata']['name']} cannot be deleted: it was activated at " in text
    assert f"stays protected for the deletion guard time of {GUARD:g} s" in text
    assert "try again in " in text

    async def only_v2_activated() -> bool:
        docs = [await get(kube, namespace, d["metadata"]["name"]) for d in (v0, v1, v2)]
        return [bool(d and d["activated"]) for d in docs] == [False, False, True]

    await until(only_v2_activated, what="v0 and v1 deactivated by v2")
    stored_v1 = await get(kube, namespace, v1["metadata"]["name"])
    assert stored_v1 is not None
    assert stored_v1["metadata"]["labels"]["tars.io/Activated"] == "false"
    assert stored_v1["metadata"]["annotations"]["k8stars.io/superseded-by"] == v2["metadata"]["name"]

    # History may go at once.
    await alice.delete(TCONFIG, namespace, v0["metadata"]["name"])

    # Re-activating the older v1 (a rollback) starts its guard anew, although it was created long enough ago (before
    # v2, now past its guard).
    await until(lambda: dry_run_delete(alice, namespace, v2["metadata"]["name"]), timeout=30, what="v2 past guard")
    again = await alice.merge_patch(TCONFIG, namespace, v1["metadata"]["name"], {"activated": True})
    text = await refused(alice.delete(TCONFIG, namespace, v1["metadata"]["name"]))
    assert "stays protected for the deletion guard time" in text
    assert "k8stars.io/activated-at" in again["metadata"]["annotations"]
    assert again["metadata"]["labels"]["tars.io/Activated"] == "true"

    async def v2_deactivated() -> bool:
        doc = await get(kube, namespace, v2["metadata"]["name"])
        return bool(doc and doc["activated"] is False)

    await until(v2_deactivated, what="v2 superseded by the re-activated v1")
    # Users cannot move the stamp.
    moved = await alice.merge_patch(TCONFIG, namespace, v1["metadata"]["name"],
                                    {"metadata": {"annotations": {"k8stars.io/activated-at": None}}})  # fmt: skip
    assert (
        moved["metadata"]["annotations"]["k8stars.io/activated-at"]
        == again["metadata"]["annotations"]["k8stars.io/activated-at"]
    )

    # Deleting the activated version after its guard time: the versions it superseded get tars.io/Deleting and go.
    await until(lambda: dry_run_delete(alice, namespace, v1["metadata"]["name"]), timeout=30, what="v1 past guard")
    seen: list[tuple[str, str, Obj]] = []
    watcher = asyncio.create_task(_collect(kube, namespace, seen))
    try:
        await asyncio.sleep(0.3)  # the watch is open
        await alice.delete(TCONFIG, namespace, v1["metadata"]["name"])

        async def all_gone() -> bool:
            return not await names(kube, namespace)

        await until(all_gone, what="the history of v1 deleted")
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    v2_events = [(kind, labels) for kind, name, labels in seen if name == v2["metadata"]["name"]]
    assert ("MODIFIED", "Deleting") in [(k, lab.get("tars.io/Deleting", "")) for k, lab in v2_events]
    assert v2_events[-1][0] == "DELETED"
    op = await operator.idle()
    assert op.stats.errors == 0


async def _collect(kube: Kube, namespace: str, seen: list[tuple[str, str, Obj]]) -> None:
    async for event in kube.watch(TCONFIG, namespace, timeout_seconds=60):
        md = event["object"].get("metadata") or {}
        seen.append((event["type"], str(md.get("name")), dict(md.get("labels") or {})))


async def test_pod_level_configs_block_the_master_and_take_their_history(
    kube: Kube, alice: Kube, namespace: str, webhooks: None, operator: OperatorRunner
) -> None:
    master, slave = load_examples("tconfig.yaml")
    await alice.create(TCONFIG, namespace, master)
    s1, s2 = version(slave, "v1"), version(slave, "v2")
    await alice.create(TCONFIG, namespace, s1)
    await alice.create(TCONFIG, namespace, s2)
    # Pod-level configs block the master; inside its guard time both reasons are given.
    text = await refused(alice.delete(TCONFIG, namespace, master["metadata"]["name"]))
    pods = ", ".join(sorted((s1["metadata"]["name"], s2["metadata"]["name"])))
    assert f"TConfig {master['metadata']['name']} cannot be deleted: the pod-level configs {pods} override it" in text
    assert "; it was activated at " in text

    async def s1_deactivated() -> bool:
        doc = await get(kube, namespace, s1["metadata"]["name"])
        return bool(doc and doc["activated"] is False)

    await until(s1_deactivated, what="pod-level v1 superseded by v2")
    # Any pod-level version of the name blocks the master, deactivated ones included.
    await until(lambda: dry_run_delete(alice, namespace, s2["metadata"]["name"]), timeout=30, what="v2 past guard")
    text = await refused(alice.delete(TCONFIG, namespace, master["metadata"]["name"]))
    assert f"the pod-level configs {pods} override it; delete them first" in text
    assert "guard time" not in text

    # Deleting the activated pod-level version takes its history; then the master may go.
    await alice.delete(TCONFIG, namespace, s2["metadata"]["name"])

    async def only_master_left() -> bool:
        return await names(kube, namespace) == {master["metadata"]["name"]}

    await until(only_master_left, what="pod-level history deleted")
    await alice.delete(TCONFIG, namespace, master["metadata"]["name"])
    assert not await names(kube, namespace)


async def test_framework_labels_and_deactivation_are_the_operators(
    kube: Kube, alice: Kube, namespace: str, webhooks: None
) -> None:
    master, slave = load_examples("tconfig.yaml")
    for label in ("tars.io/Deactivate", "tars.io/Deleting"):
        bad = copy.deepcopy(master)
        bad["metadata"]["labels"][label] = "x"
        text = await refused(alice.create(TCONFIG, namespace, bad))
        assert f"label {label} is set by the framework and cannot be given on create" in text

    name = master["metadata"]["name"]
    await alice.create(TCONFIG, namespace, master)
    text = await refused(alice.merge_patch(TCONFIG, namespace, name, {"activated": False}))
    assert "an activated TConfig cannot be deactivated by hand (only the k8stars operator deactivates)" in text
    text = await refused(
        alice.merge_patch(TCONFIG, namespace, name, {"metadata": {"labels": {"tars.io/Deactivate": "Deactivating"}}})
    )
    assert "label tars.io/Deactivate is managed by the k8stars operator and cannot be changed by hand" in text

    # The operator's identity may label a version tars.io/Deleting: then nobody else may change it, a pod-level
    # config no longer finds it as its master, and it may be deleted at once.
    await kube.merge_patch(TCONFIG, namespace, name, {"metadata": {"labels": {"tars.io/Deleting": "Deleting"}}})
    text = await refused(alice.merge_patch(TCONFIG, namespace, name, {"updateReason": "keep it"}))
    assert f"TConfig {name} is invalid: it is being deleted (label tars.io/Deleting)" in text
    text = await refused(alice.create(TCONFIG, namespace, slave))
    assert "create and activate 'hello.conf' with podSeq m for Test.HelloServer first" in text
    await alice.delete(TCONFIG, namespace, name)

    # The operator's identity may deactivate.
    other = version(master, "v9")
    await alice.create(TCONFIG, namespace, other)
    done = await kube.merge_patch(TCONFIG, namespace, other["metadata"]["name"], {"activated": False})
    assert done["activated"] is False and done["metadata"]["labels"]["tars.io/Activated"] == "false"


async def test_history_limit_follows_the_framework_config(kube: Kube, namespace: str, operator: OperatorRunner) -> None:
    """At most recordLimit.tconfigHistory deactivated versions per group, oldest deleted first; the limit is read
    from TFrameworkConfig tars-framework (10 without one); a restart writes nothing."""
    (framework, *_) = load_examples("tframework.yaml")
    framework["recordLimit"] = {"tconfigHistory": 12}
    await kube.create(TFRAMEWORKCONFIG, namespace, framework)
    master, slave = load_examples("tconfig.yaml")
    await kube.create(TCONFIG, namespace, version(slave, "v1", podSeq="0"))  # another group: never touched
    versions = [f"v{n:02d}" for n in range(1, 16)]
    for ver in versions:
        await kube.create(TCONFIG, namespace, version(master, ver))

    async def kept(expected: list[str]) -> bool:
        have = {n.rsplit("-", 1)[-1] for n in await names(kube, namespace) if "-m-" in n}
        assert have == set(expected), sorted(have)
        return True

    await until(lambda: kept(versions[2:]), what="12 deactivated versions + the activated one")
    await kube.merge_patch(TFRAMEWORKCONFIG, namespace, "tars-framework", {"recordLimit": {"tconfigHistory": 10}})
    await until(lambda: kept(versions[4:]), what="the lower limit applied to the existing history")
    await kube.delete(TFRAMEWORKCONFIG, namespace, "tars-framework")  # K8SFramework's default: 10
    await kube.create(TCONFIG, namespace, version(master, "v16"))
    await until(lambda: kept([*versions[5:], "v16"]), what="v05 deleted for v16 under the default limit")
    activated = [c for c in (await kube.list(TCONFIG, namespace))["items"] if c["activated"]]
    assert sorted(c["metadata"]["name"] for c in activated) == [
        "test-helloserver-hello.conf-0-v1",
        "test-helloserver-hello.conf-m-v16",
    ]
    op = await operator.idle()
    await until(lambda: _configs_idle(op), what="TConfig queue drained")
    assert op.stats.errors == 0

    await operator.stop()
    op = await operator.start()
    await operator.idle()
    await until(lambda: _configs_idle(op), what="TConfig queue drained")
    assert not {k: v for k, v in op.stats.writes.items() if k.startswith("tconfig-")}


async def _configs_idle(op: Operator) -> bool:
    await asyncio.sleep(0.5)
    return len(op.config_queue) == 0


def _cfg(name: str, created: str, rv: int, activated: bool, **md: object) -> Obj:
    metadata = {"name": name, "uid": f"uid-{name}", "resourceVersion": str(rv), "creationTimestamp": created, **md}
    return {"metadata": metadata, "version": name, "activated": activated}


def test_plan_of_a_group() -> None:
    """The pure rules: a migrated tars.io/Deactivate is honoured, losers are not deleted in the pass that
    deactivates them, a bad limit falls back to K8SFramework's default."""
    t = "2026-01-01T00:00:0{}Z"
    old = _cfg("a", t.format(1), 1, False)
    marked = _cfg("b", t.format(2), 2, True, labels={"tars.io/Deactivate": "Deactivating"})
    new = _cfg("c", t.format(3), 3, True)
    steps = tconfig.plan_group([old, marked, new], limit=0)
    assert [(s.action, s.name, s.superseded_by) for s in steps] == [("deactivate", "b", "c"), ("delete", "a", "")]
    # Nothing activated, nothing superseded: drafts stay.
    assert tconfig.plan_group([old], limit=10) == []
    superseded = _cfg("a", t.format(1), 1, False, annotations={tconfig.SUPERSEDED_BY: "c"})
    assert [(s.action, s.name) for s in tconfig.plan_group([superseded], limit=10)] == [("deleting", "a")]
    assert tconfig.history_limit(None) == 10
    assert tconfig.history_limit({"recordLimit": {"tconfigHistory": "many"}}) == 10
    assert tconfig.history_limit({"recordLimit": {"tconfigHistory": 30}}) == 30
    # A stamp given on create is dropped: the guard starts at the creation.
    stamped = {"metadata": {"annotations": {tconfig.ACTIVATED_AT: "2099-01-01T00:00:00Z"}}, "activated": True}
    assert tconfig.mutation(stamped, None, datetime.now(UTC)) == [
        {"op": "remove", "path": "/metadata/annotations/k8stars.io~1activated-at"}
    ]
