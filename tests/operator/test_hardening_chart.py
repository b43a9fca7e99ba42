"""Issue 16, the charts: an operator that serves one namespace had a ClusterRole, so its ServiceAccount could read
and write TServers, StatefulSets and ConfigMaps of every namespace (item 3); now a Role in that namespace (and
webhooks for that namespace only), with which the operator still does its work. Framework pods ran as root with a
writable root and every capability, some with a token they never use, and the registry could delete any Lease in
its namespace ("also"); now they are hardened and an admission policy keeps it to its own Leases."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess

import pytest
import yaml  # type: ignore[import-untyped,unused-ignore]
from operator_helpers import load_examples, until
from test_helm import FRAMEWORK, HELM, pytestmark, render, render_chart

from k8stars.kube.client import ApiException, Kube, Resource
from k8stars.kube.resources import STATEFULSET, TSERVER
from k8stars.operator import Operator
from k8stars.testing.cluster import Cluster

__all__ = ["pytestmark"]  # skipped without helm, as test_helm
NODE = Resource("", "v1", "nodes", "Node", False)


def test_one_namespace_operator_has_no_cluster_rights() -> None:
    assert HELM is not None
    docs = render("k8stars", "tars-system", "--set", "operator.namespace=team-a")
    kinds = {(d["kind"], d["metadata"].get("namespace")) for d in docs if "Role" in d["kind"]}
    assert kinds == {
        ("Role", "team-a"),
        ("RoleBinding", "team-a"),
        ("Role", "tars-system"),
        ("RoleBinding", "tars-system"),
    }  # fmt: skip  (the last two: the leader Lease)
    selectors = [
        h["namespaceSelector"] for d in docs if d["kind"].endswith("WebhookConfiguration") for h in d["webhooks"]
    ]
    assert selectors and all(s == {"matchLabels": {"kubernetes.io/metadata.name": "team-a"}} for s in selectors)
    # installing the CRDs is the only cluster right it may get, and only when asked
    docs = render("k8stars", "tars-system", "--set", "operator.namespace=team-a", "--set", "operator.installCRDs=true")
    (cluster_role,) = [d for d in docs if d["kind"] == "ClusterRole"]
    assert [r["resources"] for r in cluster_role["rules"]] == [["customresourcedefinitions"]]


async def test_one_namespace_operator_works_with_its_role(k8s_cluster: Cluster, kube: Kube, namespace: str) -> None:
    """The chart's Role for `namespace`, applied to the cluster: the operator as that ServiceAccount reconciles a
    TServer there, and may not even list TServers elsewhere (kubectl auth can-i)."""
    release = f"one-{namespace}"
    docs = render(release, namespace, "--set", f"operator.namespace={namespace}", "--set", "webhook.enabled=false")
    rbac = [d for d in docs if d["kind"] in ("ServiceAccount", "Role", "RoleBinding", "ClusterRole",
                                             "ClusterRoleBinding")]  # fmt: skip
    assert not [d for d in rbac if d["kind"].startswith("Cluster")]
    env = {**os.environ, "KUBECONFIG": str(k8s_cluster.kubeconfig)}
    applied = subprocess.run(["kubectl", "apply", "--server-side", "-f", "-"], input=yaml.safe_dump_all(rbac),
                             capture_output=True, text=True, timeout=60, env=env)  # fmt: skip
    assert applied.returncode == 0, applied.stderr
    (account,) = [d["metadata"]["name"] for d in rbac if d["kind"] == "ServiceAccount"]
    user = f"system:serviceaccount:{namespace}:{account}"
    for where, expected in ((namespace, "yes"), ("default", "no"), ("kube-system", "no")):
        can = subprocess.run(["kubectl", "auth", "can-i", "list", "tservers.k8s.tars.io", "-n", where, "--as", user],
                             capture_output=True, text=True, timeout=60, env=env)  # fmt: skip
        assert can.stdout.strip() == expected, (where, can.stdout, can.stderr)

    label = f"tars.io/node.{namespace}"
    nodes = [n["metadata"]["name"] for n in (await kube.list(NODE))["items"]]
    restricted = Kube(kube.api, headers={"Impersonate-User": user})
    try:
        for node in nodes:
            await kube.merge_patch(NODE, None, node, {"metadata": {"labels": {label: "true"}}})
        operator = Operator(restricted, namespace=namespace, workers=2, resync=3600)
        task = asyncio.create_task(operator.run())
        try:
            await asyncio.wait_for(operator.ready.wait(), 20)
            (doc,) = load_examples("tserver.yaml")
            await kube.create(TSERVER, namespace, doc)

            async def reconciled() -> bool:
                return await kube.get(STATEFULSET, namespace, "test-helloserver") is not None

            await until(reconciled, timeout=30, what="the StatefulSet made under the one-namespace Role")
            assert operator.stats.errors == 0
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    finally:
        for node in nodes:
            await kube.merge_patch(NODE, None, node, {"metadata": {"labels": {label: None}}})


HARDENED = ("tars-registry", "tars-config", "tars-log", "tars-notify")
RESTRICTED = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}}
LEASE = Resource("coordination.k8s.io", "v1", "leases", "Lease")


def test_framework_pods_are_hardened() -> None:
    """Non-root, read-only, no capability, no privilege escalation; no ServiceAccount token where the API is never
    called; AdminObj on the pod's loopback."""
    for store in ("kubernetes", "sqlite"):
        docs = render_chart(FRAMEWORK, "fw", "tars", "--set", f"registry.store={store}")
        pods = {d["metadata"]["name"]: d["spec"]["template"]["spec"] for d in docs if d["kind"] == "Deployment"}
        # every framework pod, the image builder, stat/query/kevent and the console included
        assert set(HARDENED) | {"tars-stat", "tars-tarsimage", "tars-web"} <= set(pods)
        for name, pod in pods.items():
            assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0, name
            for container in pod["containers"]:
                where = (name, container["name"])
                assert container["securityContext"] == RESTRICTED, where
        for name in HARDENED:
            (container,) = pods[name]["containers"]
            assert "--admin-endpoint=tcp -h 127.0.0.1 -p 19385" in container["args"]
        assert pods["tars-log"]["automountServiceAccountToken"] is False
        if store == "sqlite":
            assert pods["tars-registry"]["automountServiceAccountToken"] is False


async def test_registry_writes_only_its_own_leases(k8s_cluster: Cluster, kube: Kube, namespace: str) -> None:
    """The registry's Role may write Leases (their names are made at run time); the chart's admission policy keeps it
    to the Leases of its registrations: another program's Lease in the namespace is neither changed nor deleted."""
    docs = render_chart(FRAMEWORK, "fw", namespace, "--set", "registry.store=kubernetes")
    wanted = ("ServiceAccount", "Role", "RoleBinding", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding")
    objects = [d for d in docs if d["kind"] in wanted and d["metadata"]["name"].startswith("tars-registry")]
    assert {d["kind"] for d in objects} == set(wanted)
    env = {**os.environ, "KUBECONFIG": str(k8s_cluster.kubeconfig)}

    def kubectl(*args: str, body: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(["kubectl", *args], input=body, capture_output=True, text=True, timeout=60, env=env)

    assert kubectl("apply", "--server-side", "-f", "-", body=yaml.safe_dump_all(objects)).returncode == 0
    registry = Kube(kube.api, headers={"Impersonate-User": f"system:serviceaccount:{namespace}:tars-registry"})

    def lease(name: str, labels: dict[str, str]) -> dict[str, object]:
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": name, "labels": labels}, "spec": {"holderIdentity": name}}  # fmt: skip

    try:
        await kube.create(LEASE, namespace, lease("someones-leader", {}))

        async def policy_in_effect() -> bool:
            try:
                # a patch that changes nothing, in case it still goes through before the policy is in effect
                await registry.merge_patch(LEASE, namespace, "someones-leader", {"metadata": {"labels": {"a": None}}})
            except ApiException as exc:
                return exc.status in (403, 422) and "k8stars.io/registration" in str(exc.body)
            return False

        await until(policy_in_effect, timeout=20, what="the lease policy in effect")
        relabel = {"metadata": {"labels": {"k8stars.io/registration": "true"}}}
        for attempt in (registry.delete(LEASE, namespace, "someones-leader"),
                        registry.create(LEASE, namespace, lease("unlabelled", {})),
                        registry.merge_patch(LEASE, namespace, "someones-leader", relabel)):  # fmt: skip
            with pytest.raises(ApiException) as err:
                await attempt
            assert "k8stars.io/registration" in str(err.value.body)
        own = lease("reg-ext-gateway", {"k8stars.io/registration": "true"})
        await registry.create(LEASE, namespace, own)
        await registry.merge_patch(LEASE, namespace, "reg-ext-gateway", {"spec": {"holderIdentity": "r2"}})
        await registry.delete(LEASE, namespace, "reg-ext-gateway")
        still = await kube.get(LEASE, namespace, "someones-leader")
        assert still is not None and still["spec"]["holderIdentity"] == "someones-leader"
    finally:
        cluster_scoped = [d for d in objects if d["kind"].startswith("ValidatingAdmission")]
        kubectl("delete", "--ignore-not-found", "-f", "-", body=yaml.safe_dump_all(cluster_scoped))
