"""K8SFramework's webhook behaviour on the real control plane, through the Kubernetes API (issue 15: TConfig version
and deletion guard message, who may bypass the guards, validation no stricter than K8SFramework's, the v1beta2
readinessGate, clear answers under failure). Users act as `alice` (impersonated, every RBAC right); the operator as
its own ServiceAccount where it matters."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import re
import ssl
import zlib
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from operator_helpers import (
    OperatorRunner,
    free_port,
    load_examples,
    registered_webhooks,
    resource_of,
    serving_webhooks,
    until,
)

from k8stars.kube import crds
from k8stars.kube.client import ApiException, Kube, Obj, Resource
from k8stars.kube.resources import CRD, STATEFULSET, TSERVER, TTEMPLATE
from k8stars.operator import WebhookOptions, run_operator, webhook
from k8stars.testing.cluster import Cluster

TCONFIG = resource_of("TConfig")
TCONFIG_V2 = Resource("k8s.tars.io", "v1beta2", "tconfigs", "TConfig")
TSERVER_V2 = Resource("k8s.tars.io", "v1beta2", "tservers", "TServer")
NAMESPACE = Resource("", "v1", "namespaces", "Namespace", namespaced=False)
ACCOUNT = Resource("", "v1", "serviceaccounts", "ServiceAccount")
CLUSTER_ROLE_BINDING = Resource(
    "rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", namespaced=False
)
GUARD = 5.0  # seconds; short, but far longer than the few calls made before a refusal is expected
GENERATED = re.compile(r"^([0-9]{14})-([0-9a-f]{1,8})$")


@pytest.fixture
def alice(kube: Kube) -> Kube:
    """A user who may do anything RBAC allows, but is not the operator."""
    return Kube(kube.api, "alice", headers={"Impersonate-User": "alice", "Impersonate-Group": "system:masters"})


@pytest.fixture
async def webhooks(k8s_cluster: Cluster, kube: Kube, namespace: str) -> AsyncIterator[str]:
    async with serving_webhooks(k8s_cluster, kube, namespace, tconfig_guard=GUARD) as url:
        yield url


async def refused(action: Awaitable[Any]) -> str:
    with pytest.raises(ApiException) as err:
        await action
    text = str(err.value.body)
    assert "denied the request" in text, text
    return text


async def admitted_delete(client: Kube, res: Resource, namespace: str, name: str) -> bool:
    """Whether a delete would be admitted now (a dry run: the webhooks see it, nothing is deleted)."""
    try:
        await client.request("DELETE", res.path(namespace, name), query={"dryRun": "All"})
    except ApiException as exc:
        if "denied the request" in str(exc.body):
            return False
        raise
    return True


def check_version(stored: Obj, before: datetime, after: datetime) -> None:
    """K8SFramework's version of a new TConfig: creation time in Go's layout 20060102030405 (a 12-hour clock), then
    the CRC-32 of the name in lower-case hex; the label tars.io/Version the same."""
    match = GENERATED.match(stored["version"])
    assert match, stored["version"]
    assert match[2] == f"{zlib.crc32(stored['metadata']['name'].encode()):x}"
    seconds = int((after - before).total_seconds()) + 2
    stamps = {(before + timedelta(seconds=s - 1)).strftime("%Y%m%d%I%M%S") for s in range(seconds + 1)}
    assert match[1] in stamps, (match[1], sorted(stamps))
    assert stored["metadata"]["labels"]["tars.io/Version"] == stored["version"]


def _tconfig(doc: Obj, name: str, version: str = "v1beta3") -> Obj:
    out = copy.deepcopy(doc)
    out.update(apiVersion=f"k8s.tars.io/{version}", version="")  # as a Go client sends it
    out["metadata"] = {"name": name}
    return out


# --- 1, 2: TConfig version on create, deletion guard message ----------------------------------------------------
async def test_tconfig_version_is_k8sframeworks_and_the_life_cycle_works_with_it(
    kube: Kube, alice: Kube, namespace: str, webhooks: str, operator: OperatorRunner
) -> None:
    master, slave = load_examples("tconfig.yaml")
    before = datetime.now(UTC)
    first = await alice.create(TCONFIG, namespace, _tconfig(master, "hello-m-first"))
    second = await alice.create(TCONFIG_V2, namespace, _tconfig(master, "hello-m-second", "v1beta2"))
    mine = copy.deepcopy(master)
    mine["metadata"] = {"name": "hello-m-mine"}
    mine["activated"] = False
    third = await alice.create(TCONFIG, namespace, mine)  # a version the client chose is replaced too
    after = datetime.now(UTC)
    for stored in (first, second, third):
        check_version(stored, before, after)
    assert third["version"] != "v1"

    # Activation: the newest activated version wins, the operator deactivates the other.
    async def first_deactivated() -> bool:
        doc = await kube.get(TCONFIG, namespace, "hello-m-first")
        return bool(doc and doc["activated"] is False and doc["metadata"]["labels"]["tars.io/Activated"] == "false")

    await until(first_deactivated, what="the first version deactivated by the second")

    # A pod-level config finds its activated master; the master is guarded by it and by its guard time, with
    # K8SFramework's words first.
    pod_level = await alice.create(TCONFIG, namespace, _tconfig(slave, "hello-0-first"))
    check_version(pod_level, before, datetime.now(UTC))
    text = await refused(alice.delete(TCONFIG, namespace, "hello-m-second"))
    assert f"tconfig during deletion guard time({GUARD:g}s): TConfig hello-m-second cannot be deleted:" in text
    assert "the pod-level configs hello-0-first override it" in text

    # History: deleting the activated versions after their guard time takes the history with them.
    await until(lambda: admitted_delete(alice, TCONFIG, namespace, "hello-0-first"), timeout=30, what="guard time")
    await alice.delete(TCONFIG, namespace, "hello-0-first")
    await until(lambda: admitted_delete(alice, TCONFIG, namespace, "hello-m-second"), timeout=30, what="guard time")
    await alice.delete(TCONFIG, namespace, "hello-m-second")

    async def history_gone() -> bool:
        return not (await kube.list(TCONFIG, namespace))["items"]

    await until(history_gone, what="the versions superseded by the activated one deleted with it")
    assert (await operator.idle()).stats.errors == 0


async def test_the_schema_accepts_an_empty_version(kube: Kube, namespace: str) -> None:
    """Without any webhook (another namespace): `"version": ""` is valid for the schema itself."""
    plain = f"{namespace}-plain"
    await kube.create(NAMESPACE, None, {"metadata": {"name": plain}})
    try:
        master, _ = load_examples("tconfig.yaml")
        stored = await kube.create(TCONFIG, plain, _tconfig(master, "hello-m-empty"))
        assert stored["version"] == ""
    finally:
        await kube.delete(NAMESPACE, None, plain)


# --- 3: only the operator's ServiceAccount bypasses the guards ---------------------------------------------------
@pytest.fixture
async def operator_account(kube: Kube, namespace: str) -> AsyncIterator[str]:
    """A ServiceAccount for the operator (bound to cluster-admin: rights are not what this is about)."""
    await kube.create(ACCOUNT, namespace, {"metadata": {"name": "k8stars-operator"}})
    subject = {"kind": "ServiceAccount", "name": "k8stars-operator", "namespace": namespace}
    ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"}
    name = f"k8stars-operator-{namespace}"
    binding: Obj = {"metadata": {"name": name}, "subjects": [subject], "roleRef": ref}
    await kube.create(CLUSTER_ROLE_BINDING, None, binding)
    try:
        yield f"system:serviceaccount:{namespace}:k8stars-operator"
    finally:
        await kube.delete(CLUSTER_ROLE_BINDING, None, name)


async def test_only_the_operator_account_bypasses_the_guards(
    k8s_cluster: Cluster, kube: Kube, namespace: str, operator_account: str
) -> None:
    """`k8stars operator` run with a person's kubeconfig (the test's admin) and --operator-account: the operator acts
    as its ServiceAccount (it deactivates TConfigs, updates its StatefulSets), the person gets none of its rights."""
    person = await webhook.whoami(kube)
    assert person != operator_account
    tls = k8s_cluster.webhook_tls("k8stars-account")
    port = free_port()
    options = WebhookOptions(port, str(tls.cert_file), str(tls.key_file), tconfig_guard=GUARD,
                             operator_account=operator_account)  # fmt: skip
    task = asyncio.create_task(run_operator(str(k8s_cluster.kubeconfig), namespace=namespace, workers=2,
                                            install_crds=False, resync=3600, webhook=options))  # fmt: skip
    try:
        async with registered_webhooks(kube, f"https://127.0.0.1:{port}", tls.ca_bundle, namespace):
            master, _ = load_examples("tconfig.yaml")
            await kube.create(TCONFIG, namespace, _tconfig(master, "hello-m-old"))
            await kube.create(TCONFIG, namespace, _tconfig(master, "hello-m-new"))

            async def old_deactivated() -> bool:  # by the operator, as its ServiceAccount
                doc = await kube.get(TCONFIG, namespace, "hello-m-old")
                return bool(doc and doc["activated"] is False)

            await until(old_deactivated, what="the operator's deactivation of the old version")
            text = await refused(kube.merge_patch(TCONFIG, namespace, "hello-m-new", {"activated": False}))
            assert "an activated TConfig cannot be deactivated by hand" in text
            deleting = {"metadata": {"labels": {"tars.io/Deleting": "Deleting"}}}
            text = await refused(kube.merge_patch(TCONFIG, namespace, "hello-m-new", deleting))
            assert "label tars.io/Deleting is managed by the k8stars operator" in text

            # The StatefulSet the operator owns: the person may not change it, the operator may.
            for doc in load_examples("ttemplate.yaml"):
                await kube.create(TTEMPLATE, namespace, doc)
            (server,) = load_examples("tserver.yaml")
            await kube.create(TSERVER, namespace, server)
            await until(lambda: kube.get(STATEFULSET, namespace, "test-helloserver"), what="the StatefulSet")
            text = await refused(
                kube.merge_patch(STATEFULSET, namespace, "test-helloserver", {"metadata": {"labels": {"x": "y"}}})
            )
            assert f"cannot be changed by {person}" in text
            env = [{"name": "GREETING", "value": "hello"}]
            await kube.merge_patch(TSERVER, namespace, "test-helloserver", {"spec": {"k8s": {"env": env}}})

            async def updated() -> bool:
                sts = await kube.get(STATEFULSET, namespace, "test-helloserver")
                containers = (sts or {})["spec"]["template"]["spec"]["containers"]
                return any(e.get("name") == "GREETING" for e in containers[0].get("env") or [])

            await until(updated, what="the StatefulSet updated by the operator")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_identity_rules(kube: Kube, namespace: str, operator_account: str) -> None:
    """Without --operator-account a person's identity is trusted by nobody, a ServiceAccount's is; with it, the
    operator acts as that account; an account must be a ServiceAccount."""
    _, owners = await webhook.operator_identity(kube, None)
    assert owners == set()
    acting, owners = await webhook.operator_identity(kube, operator_account)
    assert owners == {operator_account} and await webhook.whoami(acting) == operator_account
    same, owners = await webhook.operator_identity(acting, None)  # the operator in its pod
    assert same is acting and owners == {operator_account}
    with pytest.raises(ValueError, match="not system:serviceaccount"):
        await webhook.operator_identity(kube, "alice")


# --- 7, 8: validation no stricter than K8SFramework's; the v1beta2 readinessGate ----------------------------------
async def _templates(kube: Kube, namespace: str) -> None:
    for doc in load_examples("ttemplate.yaml"):
        await kube.create(TTEMPLATE, namespace, doc)


def _normal_ports_on_a_tars_server(name: str = "Mixed") -> Obj:
    (doc,) = load_examples("tserver.yaml")
    doc["metadata"] = {"name": f"test-{name.lower()}"}
    del doc["spec"]["tars"]
    doc["spec"].update(server=name, normal={"ports": [{"name": "http", "port": 8080}]})
    return doc


async def test_validation_is_not_stricter_than_k8sframeworks(alice: Kube, namespace: str, webhooks: str) -> None:
    await _templates(alice, namespace)
    mixed = await alice.create(TSERVER, namespace, _normal_ports_on_a_tars_server())
    assert mixed["spec"]["subType"] == "tars" and "tars" not in mixed["spec"]
    (normal,) = load_examples("tserver-normal.yaml")
    normal["spec"]["normal"]["ports"][0]["port"] = 19385  # reserved for TARS servants and ports only
    await alice.create(TSERVER, namespace, normal)
    (tars,) = load_examples("tserver.yaml")
    tars["spec"]["tars"]["ports"] = [{"name": "raw", "port": 19385}]
    text = await refused(alice.create(TSERVER, namespace, tars))
    assert "port raw uses port 19385, which is reserved for the in-pod node servant" in text


@pytest.fixture
async def converting(k8s_cluster: Cluster, kube: Kube, webhooks: str) -> AsyncIterator[None]:
    """TServer served as v1beta1 and v1beta2 too, through the webhook server's /convert."""
    (plain,) = [c for c in crds.all_crds() if c["spec"]["names"]["kind"] == "TServer"]
    ca_bundle = k8s_cluster.webhook_tls("k8stars-webhook").ca_bundle  # the cluster CA signs every webhook's cert
    await kube.apply(CRD, None, crds.with_conversion(plain, f"{webhooks}/convert", ca_bundle))
    try:
        yield
    finally:
        await kube.apply(CRD, None, plain)  # the same field manager: the older versions go away again


async def _create_v2(client: Kube, namespace: str, doc: Obj) -> Obj:
    async def created() -> Obj | None:
        try:
            return await client.create(TSERVER_V2, namespace, copy.deepcopy(doc))
        except ApiException as exc:
            if exc.status == 404:  # v1beta2 not served yet
                return None
            raise

    stored: Obj = await until(created, what="a v1beta2 TServer created")
    return stored


async def test_v1beta2_readiness_gate_is_k8sframeworks(
    kube: Kube, alice: Kube, namespace: str, converting: None, operator: OperatorRunner
) -> None:
    await _templates(kube, namespace)
    (doc,) = load_examples("tserver.yaml")
    doc["apiVersion"] = "k8s.tars.io/v1beta2"
    doc["spec"]["k8s"]["readinessGate"] = "example.com/warm"
    seen = await _create_v2(alice, namespace, doc)
    assert seen["spec"]["k8s"]["readinessGate"] == "tars.io/active"  # the v1beta2 webhook's
    stored = await kube.get(TSERVER, namespace, "test-helloserver")
    assert stored is not None and stored["spec"]["k8s"]["readinessGates"] == ["tars.io/active"]

    # Removing it (a v1beta2 read-modify-write) or replacing it leaves the gate, and the pods' gates, as they were.
    current = await alice.get(TSERVER_V2, namespace, "test-helloserver")
    assert current is not None and current["spec"]["k8s"]["readinessGate"] == "tars.io/active"
    del current["spec"]["k8s"]["readinessGate"]
    await alice.request("PUT", TSERVER_V2.path(namespace, "test-helloserver"), body=current)
    replaced = {"spec": {"k8s": {"readinessGate": "example.com/other", "replicas": 2}}}
    seen = await alice.merge_patch(TSERVER_V2, namespace, "test-helloserver", replaced)
    assert seen["spec"]["k8s"]["readinessGate"] == "tars.io/active"
    stored = await kube.get(TSERVER, namespace, "test-helloserver")
    assert stored is not None and stored["spec"]["k8s"]["readinessGates"] == ["tars.io/active"]

    async def pod_gates() -> bool:
        sts = await kube.get(STATEFULSET, namespace, "test-helloserver")
        if sts is None or sts["spec"]["replicas"] != 2:
            return False
        return bool(sts["spec"]["template"]["spec"]["readinessGates"] == [{"conditionType": "tars.io/active"}])

    await until(pod_gates, what="the pods' readiness gates")

    # A normal server's gate is the client's, both ways; K8SFramework's looser rules hold for v1beta2 clients too.
    (normal,) = load_examples("tserver-normal.yaml")
    normal["apiVersion"] = "k8s.tars.io/v1beta2"
    normal["spec"]["k8s"]["readinessGate"] = "example.com/warm"
    await _create_v2(alice, namespace, normal)
    stored = await kube.get(TSERVER, namespace, "test-webgateway")
    assert stored is not None and stored["spec"]["k8s"]["readinessGates"] == ["example.com/warm"]
    as_v2 = await alice.get(TSERVER_V2, namespace, "test-webgateway")
    assert as_v2 is not None and as_v2["spec"]["k8s"]["readinessGate"] == "example.com/warm"
    mixed = _normal_ports_on_a_tars_server()
    mixed["apiVersion"] = "k8s.tars.io/v1beta2"
    await _create_v2(alice, namespace, mixed)
    for name in ("test-helloserver", "test-webgateway", "test-mixed"):
        await kube.delete(TSERVER, namespace, name)


# --- 12: clear answers under failure --------------------------------------------------------------------------
async def test_a_request_that_cannot_be_judged_gets_an_answer(k8s_cluster: Cluster, kube: Kube) -> None:
    """Straight to the webhook server: a body that is no AdmissionReview, and a request whose handling fails, are
    answered with an AdmissionReview saying so, never an HTTP 500."""
    tls = k8s_cluster.webhook_tls("k8stars-webhook")
    port = free_port()
    runner = await webhook.serve(webhook.Admission(kube), "127.0.0.1", port, tls.server_context())
    client_ssl = ssl.create_default_context(cadata=tls.ca_pem.decode())
    try:
        async with aiohttp.ClientSession() as session:
            for path in ("/validate", "/mutate"):
                url = f"https://127.0.0.1:{port}{path}"
                async with session.post(url, data=b"{not json", ssl=client_ssl) as resp:
                    assert resp.status == 400
                    body = await resp.json()
                assert body["response"]["allowed"] is False
                assert "not JSON" in body["response"]["status"]["message"]
                review = {"request": {"uid": "u1", "kind": {"kind": "TServer"}, "operation": "CREATE", "object": "?"}}
                async with session.post(url, json=review, ssl=client_ssl) as resp:
                    assert resp.status == 200
                    body = await resp.json()
                assert body["response"]["uid"] == "u1" and body["response"]["allowed"] is False
                assert "k8stars webhook could not" in body["response"]["status"]["message"]
    finally:
        await runner.cleanup()


async def test_failed_lookups_are_refusals_that_say_why(
    k8s_cluster: Cluster, kube: Kube, alice: Kube, namespace: str
) -> None:
    """The webhooks' client may read nothing: what needs a lookup is refused with the reason, through the API."""
    await _templates(kube, namespace)
    nobody = Kube(kube.api, headers={"Impersonate-User": "nobody"})
    admission = webhook.Admission(nobody, set(), tconfig_guard=GUARD)
    async with serving_webhooks(k8s_cluster, kube, namespace, admission=admission):
        (doc,) = load_examples("tserver.yaml")
        text = await refused(alice.create(TSERVER, namespace, doc))
        assert "k8stars webhook could not validate TServer test-helloserver:" in text
        assert "403" in text or "forbidden" in text.lower()


async def test_lookups_come_from_the_caches(k8s_cluster: Cluster, kube: Kube, alice: Kube, namespace: str) -> None:
    """Once the caches have synced the webhooks answer from them: with its client cut off from the API, a TServer
    whose template the cache holds is still admitted; what the cache cannot answer is refused with the reason."""
    await _templates(kube, namespace)
    client = Kube(kube.api, headers={})
    admission = webhook.Admission(client, set(), tconfig_guard=GUARD)
    async with serving_webhooks(k8s_cluster, kube, namespace, admission=admission):
        lookups = admission.context.lookups
        assert lookups is not None

        async def cached() -> bool:
            return lookups.synced() and await lookups.get(TTEMPLATE, namespace, "tars.cpp") is not None

        await until(cached, what="the caches synced")
        client.headers["Impersonate-User"] = "nobody"  # from now on every new request of the webhooks is refused
        (doc,) = load_examples("tserver.yaml")
        doc["spec"]["k8s"]["mounts"] = []  # a hostPath needs a LocalSubjectAccessReview, which no cache answers
        await alice.create(TSERVER, namespace, doc)
        other = copy.deepcopy(doc)
        other["metadata"] = {"name": "test-otherserver"}
        other["spec"].update(server="OtherServer")
        other["spec"]["tars"]["template"] = "tars.missing"
        text = await refused(alice.create(TSERVER, namespace, other))
        assert "k8stars webhook could not validate TServer test-otherserver:" in text
