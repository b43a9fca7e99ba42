"""Issue 16, item 3 (chart): an operator that serves one namespace had a ClusterRole, so its ServiceAccount could
read and write TServers, StatefulSets and ConfigMaps of every namespace. Now the chart gives it a Role in that
namespace only (and its webhooks judge that namespace only); with it, the operator still does its work."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess

import yaml  # type: ignore[import-untyped,unused-ignore]
from operator_helpers import load_examples, until
from test_helm import HELM, pytestmark, render

from k8stars.kube.client import Kube, Resource
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
