"""The admission webhooks, called by the real apiserver over HTTPS on 127.0.0.1: defaults and clear refusals."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from typing import Any

import pytest
from operator_helpers import OperatorRunner, load_examples, resource_of, serving_webhooks, until

from k8stars.kube import crds
from k8stars.kube.client import ApiException, Kube, Obj, Resource
from k8stars.kube.resources import CRD, SERVICE, STATEFULSET, TSERVER, TTEMPLATE
from k8stars.operator import webhook
from k8stars.testing.cluster import Cluster


@pytest.fixture
async def webhooks(k8s_cluster: Cluster, kube: Kube, namespace: str) -> AsyncIterator[tuple[str, str]]:
    """The webhook server on a free loopback port, registered for the test's namespace only."""
    async with serving_webhooks(k8s_cluster, kube, namespace) as url:
        yield url, k8s_cluster.webhook_tls("k8stars-webhook").ca_bundle


async def _templates(kube: Kube, namespace: str) -> None:
    for doc in load_examples("ttemplate.yaml"):
        await kube.create(TTEMPLATE, namespace, doc)


def _tserver(**spec: Any) -> Obj:
    (doc,) = load_examples("tserver.yaml")
    doc = copy.deepcopy(doc)
    doc["spec"].update(spec)
    return doc


async def _refused(kube: Kube, namespace: str, body: Obj) -> str:
    with pytest.raises(ApiException) as err:
        await kube.create(resource_of(body["kind"]), namespace, body)
    text = str(err.value.body)
    assert "denied the request" in text, text
    return text


async def test_mutations_fill_labels_and_readiness_gate(kube: Kube, namespace: str, webhooks: tuple[str, str]) -> None:
    await _templates(kube, namespace)
    doc = _tserver()
    del doc["metadata"]["labels"]
    doc["spec"]["k8s"]["readinessGates"] = ["example.com/warm"]
    ts = await kube.create(TSERVER, namespace, doc)
    assert ts["metadata"]["labels"] == {
        "tars.io/ServerApp": "Test",
        "tars.io/ServerName": "HelloServer",
        "tars.io/SubType": "tars",
        "tars.io/Template": "tars.cpp",
        "tars.io/ServerID": "v20260101-1",
    }
    assert ts["spec"]["k8s"]["readinessGates"] == ["tars.io/active", "example.com/warm"]
    # Removing the list gives back the gate; a removed label is put back.
    patched = await kube.request(
        "PATCH",
        TSERVER.path(namespace, "test-helloserver"),
        body=[
            {"op": "remove", "path": "/spec/k8s/readinessGates"},
            {"op": "remove", "path": "/metadata/labels/tars.io~1ServerApp"},
        ],
        content_type="application/json-patch+json",
    )
    assert patched["spec"]["k8s"]["readinessGates"] == ["tars.io/active"]
    assert patched["metadata"]["labels"]["tars.io/ServerApp"] == "Test"

    master, slave = load_examples("tconfig.yaml")
    stored = await kube.create(resource_of("TConfig"), namespace, master)
    assert stored["metadata"]["labels"] == {
        "tars.io/ServerApp": "Test",
        "tars.io/ServerName": "HelloServer",
        "tars.io/ConfigName": "hello.conf",
        "tars.io/PodSeq": "m",
        "tars.io/Activated": "true",
        "tars.io/Version": stored["version"],  # K8SFramework's version of a new TConfig, not the one sent
    }
    assert stored["version"] != master["version"]
    stored = await kube.create(resource_of("TConfig"), namespace, slave)  # its master now exists
    assert stored["metadata"]["labels"]["tars.io/PodSeq"] == "1"


async def test_invalid_tservers_are_refused_with_clear_messages(
    kube: Kube, namespace: str, webhooks: tuple[str, str]
) -> None:
    await _templates(kube, namespace)
    servants = [{"name": "HelloObj", "port": 10000}, {"name": "AdminObj", "port": 10000}]
    text = await _refused(kube, namespace, _tserver(tars={"template": "tars.cpp", "servants": servants}))
    assert "port 10000 is used by servant HelloObj and servant AdminObj" in text
    assert "binds its own endpoint" in text  # says why

    servants = [{"name": "HelloObj", "port": 19385}]
    text = await _refused(kube, namespace, _tserver(tars={"template": "tars.cpp", "servants": servants}))
    assert "19385" in text and "reserved for the in-pod node servant" in text

    servants = [{"name": "HelloObj", "port": 10000}, {"name": "helloobj", "port": 10001}]
    text = await _refused(kube, namespace, _tserver(tars={"template": "tars.cpp", "servants": servants}))
    assert "'helloobj' is used more than once" in text

    wrong_name = _tserver()
    wrong_name["metadata"]["name"] = "hello"
    text = await _refused(kube, namespace, wrong_name)
    assert "metadata.name must be lower(app)-lower(server) = 'test-helloserver'" in text

    text = await _refused(kube, namespace, _tserver(tars={"template": "tars.nope", "servants": []}))
    assert "spec.tars.template 'tars.nope' does not exist" in text

    host_ports = _tserver()
    host_ports["spec"]["k8s"]["hostPorts"] = [{"nameRef": "NoSuchObj", "port": 20000}]
    text = await _refused(kube, namespace, host_ports)
    assert "nameRef 'NoSuchObj' names no servant or port (known: AdminHttpObj, HelloObj)" in text

    on_host = _tserver()  # Kubernetes would refuse its pods: with hostNetwork a hostPort must be the containerPort
    on_host["spec"]["k8s"].update(hostNetwork=True, hostPorts=[{"nameRef": "HelloObj", "port": 20000}])
    text = await _refused(kube, namespace, on_host)
    assert "maps 'HelloObj' to 20000, but with spec.k8s.hostNetwork the host port is the port 'HelloObj'" in text

    await kube.create(TSERVER, namespace, _tserver())
    with pytest.raises(ApiException) as err:
        await kube.merge_patch(TSERVER, namespace, "test-helloserver", {"spec": {"app": "Other"}})
    assert "spec.app cannot change ('Test' → 'Other')" in str(err.value.body)


async def test_tconfig_and_ttemplate_rules(kube: Kube, namespace: str, webhooks: tuple[str, str]) -> None:
    master, slave = load_examples("tconfig.yaml")
    text = await _refused(kube, namespace, slave)
    assert "create and activate 'hello.conf' with podSeq m for Test.HelloServer first" in text

    app_level = copy.deepcopy(slave)
    app_level["server"] = ""
    text = await _refused(kube, namespace, app_level)
    assert "podSeq must be m" in text

    stored = await kube.create(resource_of("TConfig"), namespace, master)
    with pytest.raises(ApiException) as err:
        await kube.merge_patch(resource_of("TConfig"), namespace, stored["metadata"]["name"], {"configContent": "x"})
    assert "configContent cannot change" in str(err.value.body)

    orphan = {"apiVersion": "k8s.tars.io/v1beta3", "kind": "TTemplate", "metadata": {"name": "tars.go"},
              "spec": {"parent": "tars.missing", "content": "<tars/>"}}  # fmt: skip
    text = await _refused(kube, namespace, orphan)
    assert "spec.parent 'tars.missing' does not exist" in text


async def test_owned_objects_are_protected(
    kube: Kube, namespace: str, webhooks: tuple[str, str], operator: OperatorRunner
) -> None:
    """Only the operator (and Kubernetes' controllers) may change or delete the StatefulSets/Services it owns."""
    await _templates(kube, namespace)
    await kube.create(TSERVER, namespace, _tserver())
    await until(lambda: kube.get(SERVICE, namespace, "test-helloserver"), what="Service")
    sts = await until(lambda: kube.get(STATEFULSET, namespace, "test-helloserver"), what="StatefulSet")
    alice = {"Impersonate-User": "alice", "Impersonate-Group": "system:masters"}  # may do anything RBAC-wise

    with pytest.raises(ApiException) as err:
        await kube.request(
            "PATCH",
            STATEFULSET.path(namespace, "test-helloserver"),
            body={"spec": {"replicas": 5}},
            content_type="application/merge-patch+json",
            headers=alice,
        )
    text = str(err.value.body)
    assert "StatefulSet test-helloserver is managed by the k8stars operator for TServer test-helloserver" in text
    assert "cannot be changed by alice: edit the TServer instead" in text

    with pytest.raises(ApiException) as err:
        await kube.request("DELETE", SERVICE.path(namespace, "test-helloserver"), headers=alice)
    assert "cannot be deleted by alice" in str(err.value.body)

    # The operator's own identity (here the same admin as this client) may; deleting the TServer cascades.
    await kube.merge_patch(TSERVER, namespace, "test-helloserver", {"spec": {"k8s": {"replicas": 3}}})
    await until(lambda: _replicas(kube, namespace, 3), what="StatefulSet scaled by the operator")
    assert (
        sts["metadata"]["uid"] == (await kube.get(STATEFULSET, namespace, "test-helloserver") or {})["metadata"]["uid"]
    )
    await kube.delete(TSERVER, namespace, "test-helloserver")

    async def collected() -> bool:
        return await kube.get(STATEFULSET, namespace, "test-helloserver") is None

    # the garbage collector learns kinds of CRDs installed after it started at its 30 s discovery resync
    await until(collected, timeout=60, what="garbage collection of the StatefulSet")


async def _replicas(kube: Kube, namespace: str, count: int) -> bool:
    sts = await kube.get(STATEFULSET, namespace, "test-helloserver")
    return bool(sts and sts["spec"]["replicas"] == count)


async def test_v1beta2_tservers_are_converted(kube: Kube, namespace: str, webhooks: tuple[str, str]) -> None:
    """TServer served as v1beta2 too (readinessGate string, no command/args) through the conversion webhook; a
    v1beta2 round trip keeps the v1beta3-only fields; as K8SFramework's v1beta2 webhook, a TARS server's gate is
    tars.io/active whatever the v1beta2 client sends."""
    await _templates(kube, namespace)
    base_url, ca_bundle = webhooks
    (plain,) = [c for c in crds.all_crds() if c["spec"]["names"]["kind"] == "TServer"]
    await kube.apply(CRD, None, crds.with_conversion(plain, f"{base_url}/convert", ca_bundle))
    v2 = Resource("k8s.tars.io", "v1beta2", "tservers", "TServer")
    try:
        old = _tserver()
        old["apiVersion"] = "k8s.tars.io/v1beta2"
        old["spec"]["k8s"]["readinessGate"] = "example.com/warm"

        async def created() -> Obj | None:
            try:
                return await kube.create(v2, namespace, copy.deepcopy(old))
            except ApiException as exc:
                if exc.status == 404:  # v1beta2 not served yet
                    return None
                raise

        await until(created, what="v1beta2 TServer created")
        new = await kube.get(TSERVER, namespace, "test-helloserver")
        assert new is not None and new["apiVersion"] == "k8s.tars.io/v1beta3"
        assert new["spec"]["k8s"]["readinessGates"] == ["tars.io/active"]
        assert "readinessGate" not in new["spec"]["k8s"]

        # v1beta3-only fields survive a v1beta2 client's read-modify-write.
        await kube.merge_patch(TSERVER, namespace, "test-helloserver", {"spec": {"k8s": {"command": ["/bin/hello"]}}})
        seen = await kube.get(v2, namespace, "test-helloserver")
        assert seen is not None and "command" not in seen["spec"]["k8s"]
        assert seen["spec"]["k8s"]["readinessGate"] == "tars.io/active"
        seen["spec"]["important"] = 9
        await kube.request("PUT", v2.path(namespace, "test-helloserver"), body=seen)
        after = await kube.get(TSERVER, namespace, "test-helloserver")
        assert after is not None and after["spec"]["important"] == 9
        assert after["spec"]["k8s"]["command"] == ["/bin/hello"]
        assert after["spec"]["k8s"]["readinessGates"] == ["tars.io/active"]
        assert "k8stars.io/v1beta3-k8s" not in (after["metadata"].get("annotations") or {})
    finally:
        await kube.delete(TSERVER, namespace, "test-helloserver")
        await kube.apply(CRD, None, plain)  # the same field manager: v1beta2 and the webhook go away again


def test_conversion_is_lossless_both_ways() -> None:
    (doc,) = load_examples("tserver.yaml")
    doc["spec"]["k8s"].update(command=["/x"], args=["-v"], readinessGates=["tars.io/active", "a.io/b"])
    down = webhook.convert_tserver(doc, "v1beta2")
    assert down["apiVersion"] == "k8s.tars.io/v1beta2" and down["spec"]["k8s"]["readinessGate"] == "tars.io/active"
    assert "command" not in down["spec"]["k8s"] and "readinessGates" not in down["spec"]["k8s"]
    assert webhook.convert_tserver(down, "v1beta3") == doc
    other = webhook.convert_object({"apiVersion": "k8s.tars.io/v1beta3", "kind": "TConfig", "app": "A"}, "v1beta1")
    assert other == {"apiVersion": "k8s.tars.io/v1beta1", "kind": "TConfig", "app": "A"}


async def test_more_defaults_and_deletion_guards(kube: Kube, namespace: str, webhooks: tuple[str, str]) -> None:
    await _templates(kube, namespace)
    cpp = await kube.get(TTEMPLATE, namespace, "tars.cpp")
    default = await kube.get(TTEMPLATE, namespace, "tars.default")
    assert cpp is not None and cpp["metadata"]["labels"] == {"tars.io/Parent": "tars.default"}
    assert default is not None and "tars.io/Parent" not in (default["metadata"].get("labels") or {})

    # A template in use cannot be deleted (by a child template, by a TServer).
    with pytest.raises(ApiException) as err:
        await kube.delete(TTEMPLATE, namespace, "tars.default")
    assert "TTemplate tars.default cannot be deleted: it is used by TTemplate tars.cpp" in str(err.value.body)
    await kube.create(TSERVER, namespace, _tserver())
    with pytest.raises(ApiException) as err:
        await kube.delete(TTEMPLATE, namespace, "tars.cpp")
    assert "it is used by TServer test-helloserver" in str(err.value.body)

    # A server-level config with an activated pod-level override cannot be deleted.
    master, slave = load_examples("tconfig.yaml")
    await kube.create(resource_of("TConfig"), namespace, master)
    await kube.create(resource_of("TConfig"), namespace, slave)
    with pytest.raises(ApiException) as err:
        await kube.delete(resource_of("TConfig"), namespace, master["metadata"]["name"])
    assert f"the pod-level configs {slave['metadata']['name']} override it" in str(err.value.body)

    # TTree: only tars-tree; a businessRef naming no business becomes "".
    tree: Obj = {"apiVersion": "k8s.tars.io/v1beta3", "kind": "TTree", "metadata": {"name": "my-tree"}}
    tree.update(businesses=[{"name": "Demo", "show": "Demo"}], apps=[{"name": "Test", "businessRef": "Nope"}])
    text = await _refused(kube, namespace, tree)
    assert "the TTree of a namespace is named 'tars-tree'" in text
    tree["metadata"]["name"] = "tars-tree"
    stored = await kube.create(resource_of("TTree"), namespace, tree)
    assert stored["apps"][0]["businessRef"] == ""

    # TImage: duplicate release ids keep the first.
    image: Obj = {"apiVersion": "k8s.tars.io/v1beta3", "kind": "TImage", "metadata": {"name": "img"}}
    image["imageType"] = "server"
    image["releases"] = [{"id": "v1", "image": "a/b:1"}, {"id": "v1", "image": "a/b:2"}, {"id": "v2", "image": "a/b:3"}]
    stored = await kube.create(resource_of("TImage"), namespace, image)
    assert [(r["id"], r["image"]) for r in stored["releases"]] == [("v1", "a/b:1"), ("v2", "a/b:3")]


async def test_taccount_password_is_hashed(kube: Kube, namespace: str, webhooks: tuple[str, str]) -> None:
    pytest.importorskip("bcrypt")
    account: Obj = {
        "apiVersion": "k8s.tars.io/v1beta3",
        "kind": "TAccount",
        "metadata": {"name": "21232f297a57a5a743894a0e4a801fc3"},
        "spec": {
            "username": "admin",
            "authentication": {"password": "s3cret-pass", "activated": True},
            "authorization": [{"role": "admin", "flag": "*"}],
        },
    }
    stored = await kube.create(resource_of("TAccount"), namespace, account)
    auth = stored["spec"]["authentication"]
    assert "password" not in auth and len(auth["bcryptPassword"]) == 60
    assert webhook.check_password("s3cret-pass", auth["bcryptPassword"])

    token = {"name": "ci", "content": "t0ken", "expirationTime": "2030-01-01T00:00:00Z"}
    await kube.merge_patch(resource_of("TAccount"), namespace, account["metadata"]["name"],
                           {"spec": {"authentication": {"tokens": [token]}}})  # fmt: skip
    same = await kube.merge_patch(resource_of("TAccount"), namespace, account["metadata"]["name"],
                                  {"spec": {"authentication": {"password": "s3cret-pass"}}})  # fmt: skip
    assert len(same["spec"]["authentication"]["tokens"]) == 1  # the same password keeps the tokens
    changed = await kube.merge_patch(resource_of("TAccount"), namespace, account["metadata"]["name"],
                                     {"spec": {"authentication": {"password": "n3w-pass!"}}})  # fmt: skip
    assert changed["spec"]["authentication"]["tokens"] == []  # a new password invalidates them
    assert webhook.check_password("n3w-pass!", changed["spec"]["authentication"]["bcryptPassword"])


async def test_large_objects_pass_the_webhooks(kube: Kube, namespace: str, webhooks: tuple[str, str]) -> None:
    """A TConfig with a megabyte of content (the schema allows 1.5 MB): the review is larger than aiohttp's
    default request limit of 1 MiB."""
    master, _ = load_examples("tconfig.yaml")
    master["configContent"] = "<big>\n" + ("x" * 99 + "\n") * 12_000 + "</big>\n"
    stored = await kube.create(resource_of("TConfig"), namespace, master)
    assert stored["metadata"]["labels"]["tars.io/ConfigName"] == "hello.conf"
    patched = await kube.merge_patch(resource_of("TConfig"), namespace, master["metadata"]["name"],
                                     {"updateReason": "bigger"})  # fmt: skip
    assert patched["updateReason"] == "bigger"


async def test_tserver_defaults_as_k8sframework(kube: Kube, namespace: str, webhooks: tuple[str, str]) -> None:
    """No release, no pods; a release gets its time and, for a TARS server, the namespace's default node image (or a
    clear refusal when there is none); host ports imply notStacked; tars.io/Min/MaxReplicas bound the replicas."""
    await _templates(kube, namespace)
    unreleased = _tserver()
    del unreleased["spec"]["release"]
    ts = await kube.create(TSERVER, namespace, unreleased)
    assert ts["spec"]["k8s"]["replicas"] == 0 and "tars.io/ServerID" not in ts["metadata"]["labels"]
    await kube.delete(TSERVER, namespace, "test-helloserver")

    no_node = _tserver()
    del no_node["spec"]["release"]["nodeImage"]
    text = await _refused(kube, namespace, no_node)
    assert "spec.release.nodeImage is empty and TFrameworkConfig tars-framework of this namespace sets no" in text

    framework = next(d for d in load_examples("tframework.yaml") if d["kind"] == "TFrameworkConfig")
    framework["nodeImage"]["secret"] = "node-pull"
    await kube.create(resource_of("TFrameworkConfig"), namespace, framework)
    no_node["spec"]["k8s"]["hostPorts"] = [{"nameRef": "HelloObj", "port": 20000}]
    no_node["metadata"]["annotations"] = {"tars.io/MaxReplicas": "1"}
    ts = await kube.create(TSERVER, namespace, no_node)
    release = ts["spec"]["release"]
    assert (release["nodeImage"], release["nodeSecret"]) == ("registry.example.com/tars/tarsnode:v1.4.0", "node-pull")
    assert release["time"].endswith("Z")
    assert ts["spec"]["k8s"]["notStacked"] is True
    assert ts["spec"]["k8s"]["replicas"] == 1  # 2 asked, at most 1 allowed
    patched = await kube.merge_patch(TSERVER, namespace, "test-helloserver", {
        "metadata": {"annotations": {"tars.io/MaxReplicas": None, "tars.io/MinReplicas": "3"}}})  # fmt: skip
    assert patched["spec"]["k8s"]["replicas"] == 3
    with pytest.raises(ApiException) as err:
        await kube.merge_patch(TSERVER, namespace, "test-helloserver",
                               {"metadata": {"annotations": {"tars.io/MaxReplicas": "many"}}})  # fmt: skip
    assert "annotation tars.io/MaxReplicas='many' must be a whole number from 0 to 99" in str(err.value.body)

    (normal,) = load_examples("tserver-normal.yaml")
    normal["spec"]["release"] = {"id": "v1", "image": "example.com/web:v1", "nodeImage": "x", "nodeSecret": "y"}
    ts = await kube.create(TSERVER, namespace, normal)
    assert "nodeImage" not in ts["spec"]["release"] and "nodeSecret" not in ts["spec"]["release"]  # no in-pod node
