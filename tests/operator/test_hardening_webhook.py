"""Issue 16, items 5, 7, 8, 9: what a user could slip past the admission webhooks, reproduced through the real
apiserver (kubectl and the API) and refused or bounded now."""

from __future__ import annotations

import asyncio
import copy
import json
import os
import subprocess
from typing import Any

import pytest
from operator_helpers import free_port, load_examples, registered_webhooks, resource_of, serving_webhooks, until

from k8stars.kube.client import ApiException, Kube, Obj, Resource
from k8stars.kube.resources import TSERVER, TTEMPLATE
from k8stars.operator import webhook
from k8stars.testing.cluster import Cluster

NAMESPACE = Resource("", "v1", "namespaces", "Namespace", namespaced=False)


def _tserver(**k8s: Any) -> Obj:
    (doc,) = load_examples("tserver.yaml")
    doc = copy.deepcopy(doc)
    doc["spec"]["k8s"].update(k8s)
    return doc


async def _templates(kube: Kube, namespace: str) -> None:
    for doc in load_examples("ttemplate.yaml"):
        await kube.create(TTEMPLATE, namespace, doc)


async def _denial(kube: Kube, namespace: str, body: Obj) -> str:
    with pytest.raises(ApiException) as err:
        await kube.create(resource_of(body["kind"]), namespace, body)
    text = str(err.value.body)
    assert err.value.status == 422 and "denied the request" in text, text
    return text


async def test_wrong_types_get_a_readable_denial(k8s_cluster: Cluster, kube: Kube, namespace: str) -> None:
    """Item 9: before, readinessGates "warm" became ["tars.io/active","w","a","r","m"] and replicas "two" or
    release "x" failed inside the webhook; now each is refused naming the field, the type wanted and the value."""
    async with serving_webhooks(k8s_cluster, kube, namespace):
        await _templates(kube, namespace)
        text = await _denial(kube, namespace, _tserver(readinessGates="warm"))
        assert "spec.k8s.readinessGates must be an array, not a string ('warm')" in text
        text = await _denial(kube, namespace, _tserver(replicas="two"))
        assert "spec.k8s.replicas must be an integer, not a string ('two')" in text
        release = _tserver()
        release["spec"]["release"] = "x"
        assert "spec.release must be an object, not a string ('x')" in await _denial(kube, namespace, release)
        # the same object with the right types is taken, its gate first
        stored = await kube.create(TSERVER, namespace, _tserver(readinessGates=["example.com/warm"]))
        assert stored["spec"]["k8s"]["readinessGates"] == ["tars.io/active", "example.com/warm"]
        # an update with a wrong type is refused the same way
        with pytest.raises(ApiException) as err:
            await kube.merge_patch(TSERVER, namespace, "test-helloserver", {"spec": {"k8s": {"replicas": "two"}}})
        assert err.value.status == 422 and "spec.k8s.replicas must be an integer" in str(err.value.body)


async def test_scale_subresource_keeps_the_replica_bounds(k8s_cluster: Cluster, kube: Kube, namespace: str) -> None:
    """Item 8: `kubectl scale ts --replicas 50` went past tars.io/MaxReplicas (the scale subresource had no hook);
    now it gets the TServer's own rule, as a change of spec.k8s.replicas does."""
    async with serving_webhooks(k8s_cluster, kube, namespace):
        await _templates(kube, namespace)
        doc = _tserver(replicas=2)
        doc["metadata"]["annotations"] = {"tars.io/MaxReplicas": "3", "tars.io/MinReplicas": "1"}
        await kube.create(TSERVER, namespace, doc)
        env = {**os.environ, "KUBECONFIG": str(k8s_cluster.kubeconfig)}
        for asked, kept in ((50, 3), (0, 1), (2, 2)):
            done = await asyncio.to_thread(
                subprocess.run, ["kubectl", "-n", namespace, "scale", "tserver", "test-helloserver",
                                 f"--replicas={asked}"], capture_output=True, text=True, timeout=60, env=env,
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
            stored = await kube.get(TSERVER, namespace, "test-helloserver")
            assert stored is not None and stored["spec"]["k8s"]["replicas"] == kept, asked
        # the same through the API's scale subresource
        await kube.merge_patch(TSERVER, namespace, "test-helloserver", {"spec": {"replicas": 99}}, sub="scale")
        stored = await kube.get(TSERVER, namespace, "test-helloserver")
        assert stored is not None and stored["spec"]["k8s"]["replicas"] == 3


async def test_operator_down_never_blocks_deletion(k8s_cluster: Cluster, kube: Kube) -> None:
    """Item 7: with the operator down, deleting a namespace hung (its TConfigs and TTemplates could not be deleted:
    the DELETE hook failed closed). Now the deletion guard is ignored when the operator cannot answer."""
    name = f"t-del-{free_port()}"
    labels = {"k8stars.io/test": name}
    await kube.create(NAMESPACE, None, {"apiVersion": "v1", "kind": "Namespace",
                                        "metadata": {"name": name, "labels": labels}})  # fmt: skip
    tls = k8s_cluster.webhook_tls("k8stars-webhook")
    port = free_port()
    runner = await webhook.serve(webhook.Admission(kube, {await webhook.whoami(kube)}), "127.0.0.1", port,
                                 tls.server_context())  # fmt: skip
    try:
        async with registered_webhooks(kube, f"https://127.0.0.1:{port}", tls.ca_bundle, name):
            await _templates(kube, name)
            master, _ = load_examples("tconfig.yaml")
            await kube.create(resource_of("TConfig"), name, master)
            await runner.cleanup()  # the operator goes down; its webhook configurations stay
            await kube.delete(NAMESPACE, None, name)

            async def gone() -> bool:
                return await kube.get(NAMESPACE, None, name) is None

            await until(gone, timeout=60, what=f"namespace {name} deleted with the operator down")
    finally:
        await runner.cleanup()
        if await kube.get(NAMESPACE, None, name) is not None:
            await kube.delete(NAMESPACE, None, name)


async def test_no_plaintext_password_in_last_applied(k8s_cluster: Cluster, kube: Kube, namespace: str) -> None:
    """Item 5: `kubectl apply` of a TAccount with a password kept the password in the last-applied-configuration
    annotation after the webhook hashed the spec; now no plaintext is stored anywhere, and applying the same file
    again keeps the hash's password and the tokens."""
    pytest.importorskip("bcrypt")
    account: Obj = {
        "apiVersion": "k8s.tars.io/v1beta3",
        "kind": "TAccount",
        "metadata": {"name": "21232f297a57a5a743894a0e4a801fc3", "namespace": namespace},
        "spec": {"username": "admin", "authentication": {"password": "s3cret-pass-16", "activated": True},
                 "authorization": [{"role": "admin", "flag": "*"}]},
    }  # fmt: skip
    env = {**os.environ, "KUBECONFIG": str(k8s_cluster.kubeconfig)}

    def apply() -> None:
        done = subprocess.run(["kubectl", "apply", "-f", "-"], input=json.dumps(account), capture_output=True,
                              text=True, timeout=60, env=env)  # fmt: skip
        assert done.returncode == 0, done.stderr

    async with serving_webhooks(k8s_cluster, kube, namespace):
        for _ in range(2):
            await asyncio.to_thread(apply)
            stored = await kube.get(resource_of("TAccount"), namespace, account["metadata"]["name"])
            assert stored is not None
            assert "s3cret-pass-16" not in json.dumps(stored)
            auth = stored["spec"]["authentication"]
            assert "password" not in auth and webhook.check_password("s3cret-pass-16", auth["bcryptPassword"])
            applied = json.loads(stored["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"])
            assert applied["spec"]["authentication"] == {"activated": True}
