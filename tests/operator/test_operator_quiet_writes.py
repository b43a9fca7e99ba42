"""No needless writes (issue 20, item 6): K8SFramework's console (TarsWeb) saves a TServer by reading it and replacing
it whole (PUT) without retrying, so any write of ours in between — a status rewritten with nothing changed, a touch
of the spec — fails the user's save with 409. The operator writes a TServer's status only when it changes and never
its spec: reconciles triggered by pod, StatefulSet and Service events and a restart of the operator leave the
TServer's resourceVersion alone, and a PUT of the object read before them succeeds."""

from __future__ import annotations

import asyncio
import contextlib
import copy
from collections.abc import AsyncIterator

import pytest
from operator_helpers import OperatorRunner, load_examples, serving_webhooks, until

from k8stars.kube.client import Kube, Obj
from k8stars.kube.resources import POD, SERVICE, STATEFULSET, TSERVER, TTEMPLATE
from k8stars.testing.cluster import Cluster

NAME = "test-helloserver"
SELECTOR = "tars.io/ServerName=HelloServer"


async def _pods(kube: Kube, namespace: str) -> list[Obj]:
    items: list[Obj] = (await kube.list(POD, namespace, selector=SELECTOR))["items"]
    return items


async def _activate_running_pods(kube: Kube, namespace: str) -> int:
    """What the in-pod agent and the registry do once the server is up: the pod's tars.io/active condition."""
    active = 0
    for pod in await _pods(kube, namespace):
        conditions = {c["type"]: c["status"] for c in (pod.get("status") or {}).get("conditions") or []}
        if conditions.get("tars.io/active") == "True":
            active += 1
        elif (pod.get("status") or {}).get("phase") == "Running":
            condition = {"type": "tars.io/active", "status": "True", "reason": "Active", "message": "server active"}
            await kube.request("PATCH", POD.path(namespace, pod["metadata"]["name"], "status"),
                               body={"status": {"conditions": [condition]}},
                               content_type="application/strategic-merge-patch+json")  # fmt: skip
    return active


@contextlib.asynccontextmanager
async def tserver_events(kube: Kube, namespace: str, since: str) -> AsyncIterator[list[Obj]]:
    """Every watch event of the TServer after resourceVersion `since`, collected while the block runs."""
    events: list[Obj] = []

    async def collect() -> None:
        async for event in kube.watch(TSERVER, namespace, resource_version=since, timeout_seconds=120):
            if event.get("type") != "BOOKMARK" and event["object"]["metadata"]["name"] == NAME:
                events.append(event)

    task = asyncio.create_task(collect())
    try:
        yield events
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _summary(events: list[Obj]) -> list[tuple[str, str, Obj]]:
    return [(e["type"], e["object"]["metadata"]["resourceVersion"], e["object"].get("status") or {}) for e in events]


@pytest.mark.parametrize("webhooks", [False, True], ids=["operator", "operator+webhooks"])
async def test_console_save_after_reconciles_gets_no_conflict(
    k8s_cluster: Cluster, kube: Kube, namespace: str, operator: OperatorRunner, webhooks: bool
) -> None:
    """With the webhooks too: the console's PUTs pass the mutating webhook, which must not make a later one fail."""
    async with contextlib.AsyncExitStack() as stack:
        if webhooks:
            for template in load_examples("ttemplate.yaml"):  # the webhook checks the TServer's template exists
                await kube.create(TTEMPLATE, namespace, template)
            await stack.enter_async_context(serving_webhooks(k8s_cluster, kube, namespace))
        await _console_save(kube, namespace, operator)


async def _console_save(kube: Kube, namespace: str, operator: OperatorRunner) -> None:
    (doc,) = load_examples("tserver.yaml")
    await kube.create(TSERVER, namespace, copy.deepcopy(doc))

    async def settled() -> Obj | None:
        active = await _activate_running_pods(kube, namespace)
        ts = await kube.get(TSERVER, namespace, NAME)
        status = (ts or {}).get("status") or {}
        return ts if active == 2 and status.get("readyReplicas") == 2 and status.get("currentReplicas") == 2 else None

    await until(settled, timeout=60, what="two active pods and the TServer status saying so")
    await operator.idle(settle=1.0)
    seen = await kube.get(TSERVER, namespace, NAME)  # what the console shows, and later saves
    assert seen is not None

    async with tserver_events(kube, namespace, seen["metadata"]["resourceVersion"]) as events:
        # Reconciles of every kind: pod events, owned-object events, a full restart (every TServer reconciled).
        for pod in await _pods(kube, namespace):
            await kube.merge_patch(POD, namespace, pod["metadata"]["name"],
                                   {"metadata": {"annotations": {"example.com/poke": "1"}}})  # fmt: skip
        await operator.idle(settle=1.0)
        await kube.merge_patch(STATEFULSET, namespace, NAME, {"metadata": {"labels": {"example.com/poke": "1"}}})
        await kube.merge_patch(SERVICE, namespace, NAME, {"metadata": {"labels": {"example.com/poke": "1"}}})
        await operator.idle(settle=1.0)
        await operator.stop()
        restarted = await operator.start()
        await operator.idle(settle=1.5)
        assert restarted.stats.reconciles >= 1
        assert "tserver-status" not in restarted.stats.writes, restarted.stats.writes
        await asyncio.sleep(1.0)  # any event of a write would have arrived by now
        assert events == [], f"the TServer changed without a change: {_summary(events)}"

    # TarsWeb's save: the object read before, edited, replaced whole, no retry.
    edited = copy.deepcopy(seen)
    edited["spec"]["important"] = 3
    saved = await kube.request("PUT", TSERVER.path(namespace, NAME), body=edited)
    assert saved["spec"]["important"] == 3
    assert saved["spec"]["tars"] == seen["spec"]["tars"] and saved["spec"]["k8s"] == seen["spec"]["k8s"]

    # The save's own reconcile (a TEndpoint update, no StatefulSet write) changes nothing of the TServer either.
    async with tserver_events(kube, namespace, saved["metadata"]["resourceVersion"]) as events:
        await asyncio.sleep(0.5)
        await operator.idle(settle=1.5)
        assert events == [], f"the TServer changed after the save: {_summary(events)}"
    again = copy.deepcopy(saved)
    again["spec"]["important"] = 4
    resaved = await kube.request("PUT", TSERVER.path(namespace, NAME), body=again)
    assert resaved["spec"]["important"] == 4


async def test_status_is_written_when_it_changes(kube: Kube, namespace: str, operator: OperatorRunner) -> None:
    """The other half: a real change (scaling) still reaches the status, once per change."""
    (doc,) = load_examples("tserver.yaml")
    doc = copy.deepcopy(doc)
    doc["spec"]["k8s"]["replicas"] = 1
    await kube.create(TSERVER, namespace, doc)

    async def replicas(count: int) -> bool:
        ts = await kube.get(TSERVER, namespace, NAME)
        return ((ts or {}).get("status") or {}).get("replicas") == count

    await until(lambda: replicas(1), timeout=60, what="status.replicas 1")
    await kube.merge_patch(TSERVER, namespace, NAME, {"spec": {"k8s": {"replicas": 3}}})
    await until(lambda: replicas(3), timeout=60, what="status.replicas 3 after scaling")
    ts = await kube.get(TSERVER, namespace, NAME)
    assert ts is not None and ts["status"]["selector"] == "tars.io/ServerApp=Test,tars.io/ServerName=HelloServer"
