"""K8SFramework's controller behaviour, on the real control plane, with the operator running under its own identity
(a ServiceAccount holding only the controller chart's ClusterRole, impersonated) and users acting as `alice`:
the pod template (the server container exactly the user's), claim-template changes rebuilding the StatefulSet, hand
edits undone, record limits from TFrameworkConfig, TAccount token expiry (issue 15, points 4, 5, 6, 9, 10)."""

from __future__ import annotations

import asyncio
import contextlib
import copy
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped,unused-ignore]
from operator_helpers import load_examples, resource_of, until
from test_crd_versions import converting

from k8stars.kube.client import Kube, Obj, Resource
from k8stars.kube.resources import DAEMONSET, POD, SERVICE, STATEFULSET, TSERVER
from k8stars.operator import Operator
from k8stars.testing.cluster import Cluster

RBAC = Path(__file__).resolve().parents[2] / "deploy" / "helm" / "k8stars-controller" / "templates" / "rbac.yaml"
NODE = Resource("", "v1", "nodes", "Node", namespaced=False)
ROLE = Resource("rbac.authorization.k8s.io", "v1", "roles", "Role")
CLUSTER_ROLE = Resource("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", namespaced=False)
ROLE_BINDING = Resource("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding")
ACCOUNT = Resource("", "v1", "serviceaccounts", "ServiceAccount")
NAME = "test-helloserver"
__all__ = ["converting"]  # the fixture serving TServer v1beta1/v1beta2 through the conversion webhook


def chart_operator_rules() -> list[Obj]:
    """The rules of the controller chart's operator role (the part that does not depend on values): the block after
    `rules:`, up to its first template directive."""
    text = RBAC.read_text()
    block = text[text.index("\nrules:\n") + len("\nrules:\n") :]
    lines = []
    for line in block.splitlines():
        if "{{" in line or not line.startswith(" "):
            break
        lines.append(line)
    loaded: list[Obj] = yaml.safe_load("\n".join(lines))
    return loaded


def alice(kube: Kube) -> Kube:
    """A user with every RBAC right (no admission webhook runs here: what a hand edit can do)."""
    return Kube(kube.api, "alice", headers={"Impersonate-User": "alice", "Impersonate-Group": "system:masters"})


async def operator_account(kube: Kube, namespace: str) -> str:
    """The ServiceAccount `k8stars-operator` of the namespace, with the chart's rules (and leases, for election)."""
    await kube.create(ACCOUNT, namespace, {"metadata": {"name": "k8stars-operator"}})
    leases = {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "update"]}
    role = {"metadata": {"name": "k8stars-operator"}, "rules": [*chart_operator_rules(), leases]}
    await kube.create(ROLE, namespace, role)
    subject = {"kind": "ServiceAccount", "name": "k8stars-operator", "namespace": namespace}
    ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "k8stars-operator"}
    binding = {"metadata": {"name": "k8stars-operator"}, "subjects": [subject], "roleRef": ref}
    await kube.create(ROLE_BINDING, namespace, binding)
    return f"system:serviceaccount:{namespace}:k8stars-operator"


async def account_kubeconfig(cluster: Cluster, kube: Kube, namespace: str, path: Path) -> Path:
    """A kubeconfig with a token of the operator's ServiceAccount (TokenRequest): a process runs as that account."""
    request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 3600}}
    token = await kube.request("POST", ACCOUNT.path(namespace, "k8stars-operator", "token"), body=request)
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    for entry in config["users"]:
        entry["user"] = {"token": token["status"]["token"]}
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
async def operator(kube: Kube, namespace: str) -> AsyncIterator[Operator]:
    """The operator as the ServiceAccount `k8stars-operator` of the namespace with the chart's rules only."""
    account = await operator_account(kube, namespace)
    label = f"tars.io/node.{namespace}"
    nodes = [n["metadata"]["name"] for n in (await kube.list(NODE))["items"]]
    for node in nodes:
        await kube.merge_patch(NODE, None, node, {"metadata": {"labels": {label: "true"}}})
    identity = {"Impersonate-User": account}
    op = Operator(Kube(kube.api, headers=identity), namespace=namespace, workers=2, resync=3600)
    task = asyncio.create_task(op.run())
    try:
        await asyncio.wait_for(op.ready.wait(), 20)
        yield op
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        for node in nodes:
            await kube.merge_patch(NODE, None, node, {"metadata": {"labels": {label: None}}})


async def _tserver(kube: Kube, namespace: str, example: str = "tserver.yaml", **k8s: Any) -> Obj:
    (doc,) = load_examples(example)
    doc = copy.deepcopy(doc)
    doc["spec"]["k8s"].update(k8s)
    return await kube.create(TSERVER, namespace, doc)


async def _get(kube: Kube, res: Resource, namespace: str, name: str = NAME) -> Obj:
    obj = await kube.get(res, namespace, name)
    assert obj is not None, f"{res.kind} {name} missing"
    return obj


# --- point 4 ------------------------------------------------------------------------------------------------------
async def test_server_container_is_exactly_the_users(kube: Kube, namespace: str, operator: Operator) -> None:
    """env = spec.k8s.env; volumes/mounts = the user's + host-timezone + tarsnode-work-dir; the agent's inputs are on
    the tarsnode init container (downward API, the server-meta ConfigMap), which writes them into the work dir."""
    ts = await _tserver(kube, namespace)
    sts = await until(lambda: kube.get(STATEFULSET, namespace, NAME), what="StatefulSet")
    pod = sts["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    user = ts["spec"]["k8s"]
    assert [e["name"] for e in container["env"]] == [e["name"] for e in user["env"]]
    assert [m["name"] for m in container["volumeMounts"]] == [*(m["name"] for m in user["mounts"]), "host-timezone",
                                                              "tarsnode-work-dir"]  # fmt: skip
    assert [v["name"] for v in pod["volumes"]] == [*(m["name"] for m in user["mounts"]), "host-timezone",
                                                   "tarsnode-work-dir"]  # fmt: skip
    (init,) = pod["initContainers"]
    assert init["volumeMounts"] == [{"name": "tarsnode-work-dir", "mountPath": "/usr/local/app/tars/tarsnode"}]
    sources = {e["name"]: e.get("valueFrom") or e.get("value") for e in init["env"]}
    assert sources["PodIP"] == {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.podIP"}}
    assert sources["PodName"] == {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}
    assert sources["Namespace"] == {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}
    assert (sources["ServerApp"], sources["ServerName"]) == ("Test", "HelloServer")
    assert sources["K8STARS_SERVER_META"] == {
        "configMapKeyRef": {"name": f"{NAME}-server-meta", "key": "_server_meta.yaml"}}  # fmt: skip
    # A normal server: no work dir, no init container, env still exactly the user's.
    normal = await _tserver(kube, namespace, "tserver-normal.yaml")
    name = normal["metadata"]["name"]
    nsts = await until(lambda: kube.get(STATEFULSET, namespace, name), what="normal StatefulSet")
    npod = nsts["spec"]["template"]["spec"]
    assert "initContainers" not in npod and [v["name"] for v in npod["volumes"]][-1] == "host-timezone"
    assert "env" not in npod["containers"][0] or npod["containers"][0]["env"] == normal["spec"]["k8s"].get("env")


# --- point 5 ------------------------------------------------------------------------------------------------------
async def test_claim_template_change_rebuilds_the_statefulset_keeping_pods(
    kube: Kube, namespace: str, operator: Operator
) -> None:
    await _tserver(kube, namespace)
    old = await until(lambda: kube.get(STATEFULSET, namespace, NAME), what="StatefulSet")

    async def first_pod() -> Obj | None:
        pod = await kube.get(POD, namespace, f"{NAME}-0")
        return pod if pod and (pod.get("status") or {}).get("phase") == "Running" else None

    pod = await until(first_pod, timeout=30, what="pod 0 running")
    claim = {"spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}
    mounts = [*((await _get(kube, TSERVER, namespace))["spec"]["k8s"]["mounts"]),
              {"name": "data", "mountPath": "/data", "source": {"persistentVolumeClaimTemplate": claim}},
              {"name": "local", "mountPath": "/local", "source": {"tLocalVolume": {}}}]  # fmt: skip
    await alice(kube).merge_patch(TSERVER, namespace, NAME, {"spec": {"k8s": {"mounts": mounts}}})

    async def rebuilt() -> Obj | None:
        sts = await kube.get(STATEFULSET, namespace, NAME)
        return sts if sts and sts["metadata"]["uid"] != old["metadata"]["uid"] else None

    new = await until(rebuilt, timeout=30, what="a new StatefulSet")
    assert [c["metadata"]["name"] for c in new["spec"]["volumeClaimTemplates"]] == ["data", "local"]
    assert new["spec"]["volumeClaimTemplates"][0]["spec"]["resources"] == claim["spec"]["resources"]
    container = new["spec"]["template"]["spec"]["containers"][0]
    assert {"data", "local"} <= {m["name"] for m in container["volumeMounts"]}

    async def adopted() -> bool:  # the running pod was orphaned, not deleted, and the new StatefulSet took it
        current = await kube.get(POD, namespace, f"{NAME}-0")
        refs = (current or {}).get("metadata", {}).get("ownerReferences") or []
        assert current is not None and current["metadata"]["uid"] == pod["metadata"]["uid"], "pod 0 was replaced"
        return any(r.get("uid") == new["metadata"]["uid"] for r in refs)

    await until(adopted, timeout=30, what="pod 0 adopted by the new StatefulSet")
    # Changing a claim again (its size) rebuilds again; the operator settles (no rebuild loop).
    claim["spec"]["resources"]["requests"]["storage"] = "2Gi"
    await alice(kube).merge_patch(TSERVER, namespace, NAME, {"spec": {"k8s": {"mounts": mounts}}})

    async def grown() -> bool:
        sts = await kube.get(STATEFULSET, namespace, NAME)
        claims = (sts or {}).get("spec", {}).get("volumeClaimTemplates") or []
        return bool(claims) and claims[0]["spec"]["resources"]["requests"]["storage"] == "2Gi"

    await until(grown, timeout=30, what="the StatefulSet with the 2Gi claim")
    settled = await _get(kube, STATEFULSET, namespace)
    done = operator.stats.reconciles
    operator.queue.add((namespace, NAME))
    await until(lambda: _reconciled(operator, done + 1), what="one more reconcile")
    assert (await _get(kube, STATEFULSET, namespace))["metadata"]["uid"] == settled["metadata"]["uid"]

    # The StatefulSet made the claims of its pods. Dropping the tLocalVolume mount rebuilds it again and, as in
    # K8SFramework, deletes that volume's PVCs (the other claim's stay).
    pvc = Resource("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim")
    await until(lambda: kube.get(pvc, namespace, f"local-{NAME}-0"), timeout=30, what="pod 0's local claim")
    await alice(kube).merge_patch(TSERVER, namespace, NAME, {"spec": {"k8s": {"mounts": mounts[:-1]}}})

    async def local_claims_gone() -> bool:
        local = await kube.get(pvc, namespace, f"local-{NAME}-0")
        data = await _get(kube, pvc, namespace, f"data-{NAME}-0")
        assert not data["metadata"].get("deletionTimestamp"), "the other claim's PVC was deleted"
        return local is None or bool(local["metadata"].get("deletionTimestamp"))

    await until(local_claims_gone, timeout=30, what="the dropped tLocalVolume's PVC deleted")

    async def data_only() -> bool:
        sts = await kube.get(STATEFULSET, namespace, NAME)
        return [c["metadata"]["name"] for c in (sts or {}).get("spec", {}).get("volumeClaimTemplates") or []] == [
            "data"
        ]

    await until(data_only, timeout=30, what="the StatefulSet with the data claim only")


async def test_a_v1beta2_clients_new_claim_rebuilds_too(
    kube: Kube, namespace: str, operator: Operator, converting: str
) -> None:
    """The same through K8SFramework's v1beta2 API (the conversion webhook serving it): a tLocalVolume mount added by
    a v1beta2 client's patch gives a StatefulSet with the claim."""
    v2 = Resource("k8s.tars.io", "v1beta2", "tservers", "TServer")
    await _tserver(kube, namespace)
    old = await until(lambda: kube.get(STATEFULSET, namespace, NAME), what="StatefulSet")
    ts = await _get(kube, v2, namespace)
    assert ts["apiVersion"] == "k8s.tars.io/v1beta2"
    mounts = [*ts["spec"]["k8s"]["mounts"], {"name": "local", "mountPath": "/local", "source": {"tLocalVolume": {}}}]
    await alice(kube).merge_patch(v2, namespace, NAME, {"spec": {"k8s": {"mounts": mounts}}})

    async def rebuilt() -> Obj | None:
        sts = await kube.get(STATEFULSET, namespace, NAME)
        return sts if sts and sts["metadata"]["uid"] != old["metadata"]["uid"] else None

    new = await until(rebuilt, timeout=30, what="a new StatefulSet")
    assert [c["metadata"]["name"] for c in new["spec"]["volumeClaimTemplates"]] == ["local"]
    assert new["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"] == "tars-storage-class"


# --- point 9 ------------------------------------------------------------------------------------------------------
async def test_hand_edits_of_owned_objects_are_undone(kube: Kube, namespace: str, operator: Operator) -> None:
    """A user's edits (no webhook to refuse them) of the StatefulSet, Service and DaemonSet: changed values come
    back, added fields go, removed ones return; what someone added outside spec (a label) stays."""
    ts = await _tserver(kube, namespace)
    sts = await until(lambda: kube.get(STATEFULSET, namespace, NAME), what="StatefulSet")
    svc = await until(lambda: kube.get(SERVICE, namespace, NAME), what="Service")
    assert sts["spec"]["replicas"] == 2
    user = alice(kube)
    await user.json_patch(STATEFULSET, namespace, NAME, [
        {"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "evil:latest"},
        {"op": "add", "path": "/spec/template/spec/containers/0/env/-", "value": {"name": "EXTRA", "value": "1"}},
        {"op": "add", "path": "/spec/template/spec/nodeSelector", "value": {"disk": "ssd"}},
        {"op": "remove", "path": "/spec/template/spec/readinessGates"},
        {"op": "replace", "path": "/spec/replicas", "value": 5},
        {"op": "add", "path": "/metadata/labels/team", "value": "blue"},
    ])  # fmt: skip
    await user.json_patch(SERVICE, namespace, NAME, [
        {"op": "add", "path": "/spec/ports/-", "value": {"name": "extra", "port": 9999, "protocol": "TCP"}},
        {"op": "replace", "path": "/spec/selector", "value": {"app": "other"}},
    ])  # fmt: skip

    async def sts_restored() -> bool:
        current = await _get(kube, STATEFULSET, namespace)
        spec = current["spec"]
        pod = spec["template"]["spec"]
        container = pod["containers"][0]
        assert container["image"] == ts["spec"]["release"]["image"], container["image"]
        assert [e["name"] for e in container["env"]] == [e["name"] for e in ts["spec"]["k8s"]["env"]]
        assert "nodeSelector" not in pod and pod["readinessGates"] == [{"conditionType": "tars.io/active"}]
        assert spec["replicas"] == 2
        return bool(current["metadata"]["labels"].get("team") == "blue")

    await until(sts_restored, timeout=20, what="the StatefulSet as the TServer says")

    async def svc_restored() -> bool:
        current = await _get(kube, SERVICE, namespace)
        assert [p["name"] for p in current["spec"]["ports"]] == [p["name"] for p in svc["spec"]["ports"]]
        return bool(current["spec"]["selector"] == svc["spec"]["selector"])

    await until(svc_restored, timeout=20, what="the Service as the TServer says")

    # A DaemonSet server: same.
    normal = await _tserver(kube, namespace, "tserver-normal.yaml", daemonSet=True)
    name = normal["metadata"]["name"]
    await until(lambda: kube.get(DAEMONSET, namespace, name), what="DaemonSet")
    await user.json_patch(DAEMONSET, namespace, name, [
        {"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "evil:latest"},
    ])  # fmt: skip

    async def ds_restored() -> bool:
        current = await _get(kube, DAEMONSET, namespace, name)
        image = ((normal["spec"].get("release") or {}).get("image")) or " "  # the placeholder before a release
        return bool(current["spec"]["template"]["spec"]["containers"][0]["image"] == image)

    await until(ds_restored, timeout=20, what="the DaemonSet as the TServer says")

    # Settled: the next reconcile (a resync) writes none of them again (pods still come and go after the scale-down,
    # so status and records may be written; the workloads' specs are not).
    def owned_writes() -> dict[str, int]:
        kinds = ("statefulset", "service", "daemonset")
        return {k: n for k, n in operator.stats.writes.items() if k.startswith(kinds)}

    async def generations() -> tuple[Any, ...]:
        sts, svc = await _get(kube, STATEFULSET, namespace), await _get(kube, SERVICE, namespace)
        return sts["metadata"]["generation"], svc["metadata"]["resourceVersion"]

    before, writes = await generations(), owned_writes()
    done = operator.stats.reconciles
    operator.queue.add((namespace, NAME))
    operator.queue.add((namespace, name))
    await until(lambda: _reconciled(operator, done + 2), what="two more reconciles")
    assert owned_writes() == writes
    assert await generations() == before

    # `kubectl rollout restart` is no drift: its annotation on the pod template stays.
    restart = {"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "now"}}}}}
    done = operator.stats.reconciles
    await user.merge_patch(STATEFULSET, namespace, NAME, restart)
    await until(lambda: _reconciled(operator, done + 1), what="the edit's reconcile")
    current = await _get(kube, STATEFULSET, namespace)
    assert current["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"] == "now"
    assert owned_writes() == writes


async def test_edits_the_protecting_webhook_lets_through_are_undone_too(
    k8s_cluster: Cluster, kube: Kube, namespace: str, operator: Operator
) -> None:
    """With the `protect` webhook (trusting the operator's ServiceAccount), a user's edit is refused; one it lets
    through (Kubernetes' own accounts may change anything) is undone all the same."""
    from operator_helpers import serving_webhooks

    from k8stars.operator import webhook

    for doc in load_examples("ttemplate.yaml"):
        await kube.create(resource_of("TTemplate"), namespace, doc)
    admission = webhook.Admission(kube, {f"system:serviceaccount:{namespace}:k8stars-operator"})
    async with serving_webhooks(k8s_cluster, kube, namespace, admission):
        ts = await _tserver(kube, namespace)
        await until(lambda: kube.get(STATEFULSET, namespace, NAME), what="StatefulSet")
        edit = [{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "evil:latest"}]
        with pytest.raises(Exception, match="managed by the k8stars operator"):
            await alice(kube).json_patch(STATEFULSET, namespace, NAME, edit)
        system = {"Impersonate-User": "system:serviceaccount:kube-system:fixer", "Impersonate-Group": "system:masters"}
        await Kube(kube.api, "fixer", headers=system).json_patch(STATEFULSET, namespace, NAME, edit)

        async def restored() -> bool:
            current = await _get(kube, STATEFULSET, namespace)
            return bool(current["spec"]["template"]["spec"]["containers"][0]["image"] == ts["spec"]["release"]["image"])

        await until(restored, timeout=20, what="the image the TServer says")


async def _reconciled(operator: Operator, count: int) -> bool:
    return operator.stats.reconciles >= count and not len(operator.queue)


# --- point 10 -----------------------------------------------------------------------------------------------------
async def test_record_limits_come_from_the_framework_config(kube: Kube, namespace: str, operator: Operator) -> None:
    framework = load_examples("tframework.yaml")
    (tfc,) = [d for d in framework if d["kind"] == "TFrameworkConfig"]
    tfc = copy.deepcopy(tfc)
    tfc["recordLimit"] = {"texitedPod": 10, "timageRelease": 11, "tconfigHistory": 12}
    await kube.create(resource_of("TFrameworkConfig"), namespace, tfc)
    ts = await _tserver(kube, namespace)
    # Records from before: 15 exited pods (newest first, as K8SFramework records them: u0 is the oldest), 15 releases.
    times = {"createTime": "2026-01-01T00:00:00Z", "deleteTime": "2026-01-01T00:00:01Z"}
    old_pods = [{"uid": f"u{i}", "name": f"{NAME}-{i}", "id": "v0", "nodeIP": "", "podIP": "", **times}
                for i in reversed(range(15))]  # fmt: skip
    # the operator created the (empty) record with the TServer
    await until(lambda: kube.get(resource_of("TExitedRecord"), namespace, NAME), what="TExitedRecord")
    await kube.merge_patch(resource_of("TExitedRecord"), namespace, NAME, {"pods": old_pods})
    image = await until(lambda: kube.get(resource_of("TImage"), namespace, NAME), what="TImage")
    image["releases"] = [*image["releases"], *({"id": f"old{i}", "image": f"r/x:old{i}"} for i in range(15))]
    await kube.request("PUT", resource_of("TImage").path(namespace, NAME), body=image)

    async def running() -> Obj | None:
        pod = await kube.get(POD, namespace, f"{NAME}-1")
        return pod if pod and (pod.get("status") or {}).get("phase") == "Running" else None

    pod = await until(running, timeout=30, what="pod 1 running")
    await kube.delete(POD, namespace, f"{NAME}-1")

    async def trimmed() -> bool:
        rec = await _get(kube, resource_of("TExitedRecord"), namespace)
        uids = [p["uid"] for p in rec["pods"]]
        kept = [u for u in uids if u.startswith("u")]  # the records from before (Kubernetes' uids are hex)
        # Newest first, the deleted pod among the new, the oldest records gone. Not "uids[0] is the deleted pod": kwok
        # (no real kubelet) ends a graceful deletion by a second DELETE by name, without a uid precondition, and under
        # load that can also remove the pod the StatefulSet has just recreated, a second exited pod, rightly recorded.
        assert len(uids) == 10 and pod["metadata"]["uid"] in uids[: 10 - len(kept)], (
            f"deleted {pod['metadata']['uid']}; record {[(p['uid'], p['name']) for p in rec['pods']]}"
        )
        assert kept == [f"u{i}" for i in range(14, 14 - len(kept), -1)]
        return True

    await until(trimmed, timeout=30, what="TExitedRecord trimmed to recordLimit.texitedPod")
    release = {**ts["spec"]["release"], "id": "v20260102-1", "image": "registry.example.com/tars/x:v2"}
    await kube.merge_patch(TSERVER, namespace, NAME, {"spec": {"release": release}})

    async def releases() -> bool:
        img = await _get(kube, resource_of("TImage"), namespace)
        return len(img["releases"]) == 11 and img["releases"][0]["id"] == "v20260102-1"

    await until(releases, timeout=30, what="TImage trimmed to recordLimit.timageRelease")


# --- point 6 ------------------------------------------------------------------------------------------------------
async def test_expired_taccount_tokens_are_removed(kube: Kube, namespace: str, operator: Operator) -> None:
    """As K8SFramework's account controller: tokens past their expirationTime (or without one) leave the list, each
    account looked at again when its next token expires."""
    now = datetime.now(UTC)

    def stamp(delta: float) -> str:
        return (now + timedelta(seconds=delta)).strftime("%Y-%m-%dT%H:%M:%SZ")

    tokens = [
        {"name": "old", "content": "a", "updateTime": stamp(-100), "expirationTime": stamp(-10), "valid": True},
        {"name": "soon", "content": "b", "updateTime": stamp(-100), "expirationTime": stamp(3), "valid": True},
        {"name": "later", "content": "c", "updateTime": stamp(-100), "expirationTime": stamp(3600), "valid": True},
    ]
    account = {"apiVersion": "k8s.tars.io/v1beta3", "kind": "TAccount", "metadata": {"name": "admin-account"},
               "spec": {"username": "admin", "authorization": [],
                        "authentication": {"bcryptPassword": "$2a$06$" + "x" * 53, "tokens": tokens}}}  # fmt: skip
    await kube.create(resource_of("TAccount"), namespace, account)

    async def names() -> list[str]:
        obj = await _get(kube, resource_of("TAccount"), namespace, "admin-account")
        return [t["name"] for t in obj["spec"]["authentication"].get("tokens") or []]

    await until(lambda: _equal(names, ["soon", "later"]), timeout=10, what="the expired token removed")
    await until(lambda: _equal(names, ["later"]), timeout=15, what="the second token removed when it expires")


async def test_a_new_bcrypt_password_empties_the_tokens(k8s_cluster: Cluster, kube: Kube, namespace: str) -> None:
    """K8SFramework's mutating webhook: writing bcryptPassword directly invalidates the tokens, as a new password
    does; other edits keep them."""
    from operator_helpers import serving_webhooks

    from k8stars.operator.webhook.taccount import hash_password

    pytest.importorskip("bcrypt")
    ta = resource_of("TAccount")
    token = {"name": "ci", "content": "t0ken", "expirationTime": "2030-01-01T00:00:00Z"}
    account = {"apiVersion": "k8s.tars.io/v1beta3", "kind": "TAccount", "metadata": {"name": "admin-account"},
               "spec": {"username": "admin", "authorization": [], "authentication": {
                   "bcryptPassword": hash_password("first-pass"), "tokens": [token]}}}  # fmt: skip
    async with serving_webhooks(k8s_cluster, kube, namespace):
        user = alice(kube)
        await user.create(ta, namespace, account)
        kept = await user.merge_patch(ta, namespace, "admin-account", {"spec": {"authentication": {"activated": True}}})
        assert [t["name"] for t in kept["spec"]["authentication"]["tokens"]] == ["ci"]
        new_hash = {"spec": {"authentication": {"bcryptPassword": hash_password("second-pass")}}}
        changed = await user.merge_patch(ta, namespace, "admin-account", new_hash)
        assert changed["spec"]["authentication"]["tokens"] == []
        again = await user.merge_patch(
            ta, namespace, "admin-account", {"spec": {"authentication": {"tokens": [token]}}}
        )
        assert len(again["spec"]["authentication"]["tokens"]) == 1  # the same hash: tokens may be added again


async def _equal(probe: Any, want: list[str]) -> bool:
    got = await probe()
    assert got == want or len(got) > len(want), got
    return bool(got == want)


# --- point 11 -----------------------------------------------------------------------------------------------------
LEASE = Resource("coordination.k8s.io", "v1", "leases", "Lease")


def _micro(stamp: str) -> datetime:
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


async def test_a_paused_leader_stops_before_another_takes_over(
    k8s_cluster: Cluster, kube: Kube, namespace: str, tmp_path: Path
) -> None:
    """Two `k8stars operator --leader-elect` processes, as the operator's ServiceAccount (a token in their
    kubeconfig). SIGSTOP the leader: the other takes over no sooner than the lease duration after the leader's last
    renewal; SIGCONT the first: past its renew deadline, it writes nothing (its log has no apply) and exits with
    status 1."""
    import os
    import signal
    import sys

    await operator_account(kube, namespace)
    kubeconfig = await account_kubeconfig(k8s_cluster, kube, namespace, tmp_path / "kubeconfig")
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    args = ["-m", "k8stars", "operator", "--namespace", namespace, "--workers", "2", "--no-install-crds",
            "--leader-elect", "--leader-election-namespace", namespace, "--lease-duration", "4"]  # fmt: skip
    procs: list[asyncio.subprocess.Process] = []
    logs: dict[int, list[bytes]] = {}

    async def spawn() -> asyncio.subprocess.Process:
        pipes: dict[str, Any] = {"stdout": asyncio.subprocess.DEVNULL, "stderr": asyncio.subprocess.PIPE}
        proc = await asyncio.create_subprocess_exec(sys.executable, *args, env=env, **pipes)
        procs.append(proc)
        logs[proc.pid] = []
        return proc

    async def pump(proc: asyncio.subprocess.Process) -> None:
        assert proc.stderr is not None
        while line := await proc.stderr.readline():
            logs[proc.pid].append(line)

    seen: list[tuple[str, str]] = []  # (holder, renewTime) as the Lease went

    async def holder() -> str | None:
        obj = await kube.get(LEASE, namespace, "k8stars-operator")
        spec = (obj or {}).get("spec") or {}
        if spec.get("holderIdentity") and (not seen or seen[-1] != (spec["holderIdentity"], spec["renewTime"])):
            seen.append((str(spec["holderIdentity"]), str(spec["renewTime"])))
        return str(spec.get("holderIdentity") or "") or None

    pumps = []
    try:
        first = await spawn()
        pumps.append(asyncio.create_task(pump(first)))
        await until(lambda: _holder_is(holder, first.pid), timeout=30, what="the first replica leading")
        await until(lambda: _logged(logs[first.pid], b"caches synced"), timeout=30, what="the first reconciling")
        second = await spawn()
        pumps.append(asyncio.create_task(pump(second)))
        await until(lambda: _logged(logs[second.pid], b"waiting for the lease"), timeout=30, what="the second waiting")

        first.send_signal(signal.SIGSTOP)
        await kube.create(TSERVER, namespace, load_examples("tserver.yaml")[0])
        await until(lambda: _holder_is(holder, second.pid), timeout=30, what="the second replica taking over")
        lease = await _get(kube, LEASE, namespace, "k8stars-operator")
        last_renewal = max(_micro(t) for who, t in seen if who.endswith(f"-{first.pid}"))
        assert _micro(lease["spec"]["acquireTime"]) - last_renewal >= timedelta(seconds=4), seen
        await until(lambda: kube.get(STATEFULSET, namespace, NAME), timeout=30, what="StatefulSet by #2")

        first.send_signal(signal.SIGCONT)  # it wakes up past its renew deadline, with events to handle
        await kube.merge_patch(TSERVER, namespace, NAME, {"spec": {"important": 7}})
        assert await asyncio.wait_for(first.wait(), 20) == 1
        await pumps[0]
        text = b"".join(logs[first.pid]).decode()
        assert "renew deadline" in text, text
        assert "applied " not in text, text  # no write at all: it never had anything to do while it led
        lease = await _get(kube, LEASE, namespace, "k8stars-operator")
        assert lease["spec"]["holderIdentity"].endswith(f"-{second.pid}")
        assert second.returncode is None
    finally:
        for proc in procs:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGCONT)
                    proc.kill()
                await proc.wait()
        for task in pumps:
            task.cancel()


async def _holder_is(holder: Any, pid: int) -> bool:
    name = await holder()
    return bool(name and name.endswith(f"-{pid}"))


async def _logged(lines: list[bytes], text: bytes) -> bool:
    return any(text in line for line in lines)


async def test_writes_are_fenced_by_the_renew_deadline(kube: Kube, namespace: str) -> None:
    """The operator's writes go through `kube.fenced(elector.check)`: once a leader is past its renew deadline
    without renewing, no write leaves, whatever the Lease says."""
    from k8stars.kube.resources import CONFIGMAP
    from k8stars.operator.leader import LeaderElector, LeadershipLost

    elector = LeaderElector(kube, namespace, "fenced", duration=1.5, renew=0.5, renew_deadline=1.0)
    await elector.acquire()
    fenced = kube.fenced(elector.check)
    await fenced.create(CONFIGMAP, namespace, {"metadata": {"name": "while-leading"}})
    await asyncio.sleep(1.2)  # no renewal (hold() is not running): past the deadline
    with pytest.raises(LeadershipLost, match="renew deadline"):
        await fenced.create(CONFIGMAP, namespace, {"metadata": {"name": "after-the-deadline"}})
    assert await kube.get(CONFIGMAP, namespace, "after-the-deadline") is None
    assert await fenced.get(CONFIGMAP, namespace, "while-leading") is not None  # reads are not fenced
    with pytest.raises(ValueError, match="renew deadline"):
        LeaderElector(kube, namespace, "bad", duration=2, renew=1, renew_deadline=3)


# --- point 10: K8SFramework's newer kinds -----------------------------------------------------------------------------
async def test_tframeworkkey_and_tplugin_exist_as_k8sframework_defines_them(kube: Kube, namespace: str) -> None:
    from k8stars.kube.resources import CRD

    key_crd = await _get(kube, CRD, "", "tframeworkkey.k8s.tars.io")
    names = {"plural": "tframeworkkey", "singular": "tframeworkkey", "shortNames": ["tfk"]}
    assert key_crd["spec"]["names"] == {"kind": "TFrameworkKey", "listKind": "TFrameworkKeyList", **names}
    assert [v["name"] for v in key_crd["spec"]["versions"]] == ["v1beta2", "v1beta3"]
    plugin_crd = await _get(kube, CRD, "", "tplugins.k8s.tars.io")
    assert plugin_crd["spec"]["names"]["shortNames"] == ["tp"]
    assert [v["name"] for v in plugin_crd["spec"]["versions"]] == ["v1beta1", "v1beta2", "v1beta3"]

    for version in ("v1beta2", "v1beta3"):
        res = Resource("k8s.tars.io", version, "tframeworkkey", "TFrameworkKey")
        spec = {"cuid": "c1", "pri_key": "-----BEGIN KEY-----", "autologin": 1, "unknown": "pruned"}
        body = {"apiVersion": res.api_version, "kind": res.kind, "metadata": {"name": f"k-{version}"}, "spec": spec}
        stored = await kube.create(res, namespace, body)
        assert stored["spec"] == {"cuid": "c1", "pri_key": "-----BEGIN KEY-----", "autologin": 1}
    v1 = Resource("k8s.tars.io", "v1beta1", "tplugins", "TPlugin")
    spec = {"name": "监控", "name_en": "monitor", "obj": "tars.monitor.WebObj", "type": 1, "path": "/m"}
    plugin = {"apiVersion": "k8s.tars.io/v1beta1", "kind": "TPlugin", "metadata": {"name": "monitor"}, "spec": spec}
    await kube.create(v1, namespace, plugin)
    v3 = await _get(kube, resource_of("TPlugin"), namespace, "monitor")
    assert v3["spec"]["obj"] == "tars.monitor.WebObj" and v3["apiVersion"] == "k8s.tars.io/v1beta3"
    extern = await kube.merge_patch(resource_of("TPlugin"), namespace, "monitor", {"spec": {"extern": 1}})
    assert extern["spec"]["extern"] == 1
