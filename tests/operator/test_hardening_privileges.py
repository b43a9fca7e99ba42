"""Issue 16, item 3: a user who may create TServers but not pods got, through the operator, a pod on the host's
network and IPC namespace, with the host's / mounted and another ServiceAccount. Now the webhook takes such a TServer
only from an author who may create pods (a LocalSubjectAccessReview), and one reading a Secret only from an author
who may read it. Reproduced as restricted users (impersonation) against the real apiserver."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from operator_helpers import load_examples, serving_webhooks

from k8stars.kube.client import ApiException, Kube, Obj, Resource
from k8stars.kube.resources import TSERVER, TTEMPLATE
from k8stars.testing.cluster import Cluster

ROLE = Resource("rbac.authorization.k8s.io", "v1", "roles", "Role")
ROLE_BINDING = Resource("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding")
TSERVER_RIGHTS = {"apiGroups": ["k8s.tars.io"], "resources": ["tservers"],
                  "verbs": ["get", "list", "create", "update", "patch"]}  # fmt: skip


async def _user(kube: Kube, namespace: str, name: str, *rules: Obj) -> Kube:
    """A user with a Role of ``rules`` in ``namespace``, and a client acting as them."""
    await kube.create(ROLE, namespace, {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                                        "metadata": {"name": name}, "rules": list(rules)})  # fmt: skip
    await kube.create(ROLE_BINDING, namespace, {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": name}],
    })  # fmt: skip
    return Kube(kube.api, name, headers={"Impersonate-User": name})


def _tserver(server: str, **k8s: Any) -> Obj:
    (doc,) = load_examples("tserver.yaml")
    doc = copy.deepcopy(doc)
    doc["metadata"] = {"name": f"test-{server.lower()}"}
    doc["spec"]["server"] = server
    doc["spec"]["k8s"]["mounts"] = []
    doc["spec"]["k8s"].update(k8s)
    return doc


HOST_ROOT = [{"name": "root", "mountPath": "/host", "source": {"hostPath": {"path": "/", "type": "Directory"}}}]
SECRET = [{"name": "creds", "mountPath": "/creds", "source": {"secret": {"secretName": "db-password"}}}]


async def _refused(client: Kube, namespace: str, body: Obj, *expected: str) -> None:
    with pytest.raises(ApiException) as err:
        await client.create(TSERVER, namespace, body)
    text = str(err.value.body)
    assert err.value.status == 422 and "denied the request" in text, text
    for part in expected:
        assert part in text, text


async def test_tserver_never_yields_a_pod_its_author_could_not_create(
    k8s_cluster: Cluster, kube: Kube, namespace: str
) -> None:
    async with serving_webhooks(k8s_cluster, kube, namespace):
        for doc in load_examples("ttemplate.yaml"):
            await kube.create(TTEMPLATE, namespace, doc)
        mallory = await _user(kube, namespace, "mallory", TSERVER_RIGHTS)
        alice = await _user(kube, namespace, "alice", TSERVER_RIGHTS,
                            {"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]})  # fmt: skip
        reader = await _user(kube, namespace, "reader", TSERVER_RIGHTS,
                             {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"],
                              "resourceNames": ["db-password"]})  # fmt: skip

        # the attack of the issue: every host feature and another ServiceAccount, from a user without pods
        attack = _tserver("Evil", hostNetwork=True, hostIPC=True, mounts=HOST_ROOT, serviceAccount="tars-registry",
                          hostPorts=[{"nameRef": "HelloObj", "port": 10000}])  # fmt: skip
        await _refused(mallory, namespace, attack, "spec.k8s.hostNetwork", "spec.k8s.hostIPC", "spec.k8s.hostPorts",
                       "hostPath /", "spec.k8s.serviceAccount tars-registry", "mallory may not")  # fmt: skip
        await _refused(mallory, namespace, _tserver("Reads", mounts=SECRET), "Secret db-password", "mallory may not")
        envfrom = _tserver("Reads", envFrom=[{"secretRef": {"name": "db-password"}}])
        await _refused(mallory, namespace, envfrom, "Secret db-password")

        # an ordinary server is theirs to create; adding a host feature later is refused too
        plain = await mallory.create(TSERVER, namespace, _tserver("Plain"))
        assert plain["metadata"]["name"] == "test-plain"
        with pytest.raises(ApiException) as err:
            await mallory.merge_patch(TSERVER, namespace, "test-plain", {"spec": {"k8s": {"hostNetwork": True}}})
        assert err.value.status == 422 and "spec.k8s.hostNetwork" in str(err.value.body)

        # who may create pods may ask for them; who may read the Secret may mount it
        assert (await alice.create(TSERVER, namespace, attack))["spec"]["k8s"]["hostNetwork"] is True
        assert await reader.create(TSERVER, namespace, _tserver("Reads", mounts=SECRET))
        # an edit of the privileged server that adds nothing is anyone's with TServer rights
        edited = await mallory.merge_patch(TSERVER, namespace, "test-evil", {"spec": {"important": 3}})
        assert edited["spec"]["important"] == 3
