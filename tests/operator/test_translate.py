"""TServer → manifests, as pure functions (no cluster): the K8SFramework conventions one by one."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from operator_helpers import load_examples

from k8stars.operator import translate


def _ts(**k8s: Any) -> dict[str, Any]:
    (doc,) = load_examples("tserver.yaml")
    doc = copy.deepcopy(doc)
    doc["metadata"].update(namespace="tars", uid="0000-1111")
    doc["spec"]["k8s"].update(k8s)
    return dict(doc)


def _affinity(ts: dict[str, Any], daemon: bool = False) -> dict[str, Any]:
    spec = translate.pod_template(ts, "tars", daemon=daemon)["spec"]
    affinity: dict[str, Any] = spec["affinity"]
    return affinity


@pytest.mark.parametrize(
    ("ability", "required", "preferred"),
    [
        ("AppRequired", ["tars.io/ability.tars.Test"], []),
        ("ServerRequired", ["tars.io/ability.tars.Test-HelloServer"], []),
        ("None", [], []),
        ("AppOrServerPreferred", [], ["tars.io/ability.tars.Test-HelloServer", "tars.io/ability.tars.Test"]),
    ],
)
def test_ability_affinity(ability: str, required: list[str], preferred: list[str]) -> None:
    selector = [{"key": "disk", "operator": "In", "values": ["ssd"]}]
    node = _affinity(_ts(abilityAffinity=ability, nodeSelector=selector))["nodeAffinity"]
    (term,) = node["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    keys = [e["key"] for e in term["matchExpressions"]]
    assert keys == ["disk", "tars.io/node.tars", *required]  # K8SFramework's order
    got = [
        p["preference"]["matchExpressions"][0]["key"]
        for p in node.get("preferredDuringSchedulingIgnoredDuringExecution", [])
    ]
    assert got == preferred


def test_not_stacked_and_daemonsets() -> None:
    affinity = _affinity(_ts(notStacked=True))
    (anti,) = affinity["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert anti["topologyKey"] == "kubernetes.io/hostname" and anti["namespaces"] == ["tars"]
    assert anti["labelSelector"]["matchLabels"] == {"tars.io/ServerApp": "Test", "tars.io/ServerName": "HelloServer"}
    daemon = _affinity(_ts(notStacked=True, abilityAffinity="AppRequired"), daemon=True)
    assert "podAntiAffinity" not in daemon
    (term,) = daemon["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert [e["key"] for e in term["matchExpressions"]] == ["tars.io/node.tars"]


def test_claim_templates_and_immutable_fields() -> None:
    pvc = {"spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}
    mounts = [
        {"name": "data", "mountPath": "/data", "source": {"persistentVolumeClaimTemplate": pvc}},
        {
            "name": "local",
            "mountPath": "/local",
            "source": {"tLocalVolume": {"uid": "1000", "gid": "1000", "mode": "750"}},
        },
        {"name": "cache", "mountPath": "/cache", "source": {"emptyDir": {}}},
    ]
    ts = _ts(mounts=mounts, podManagementPolicy="OrderedReady")
    sts = translate.statefulset(ts)
    claims = {c["metadata"]["name"]: c for c in sts["spec"]["volumeClaimTemplates"]}
    assert claims["data"]["spec"] == pvc["spec"]
    assert claims["local"]["spec"]["storageClassName"] == "tars-storage-class"
    assert claims["local"]["metadata"]["annotations"]["tars.io/LocalVolumeMode"] == "750"
    local_labels = {"tars.io/ServerApp": "Test", "tars.io/ServerName": "HelloServer", "tars.io/LocalVolume": "local"}
    assert claims["local"]["metadata"]["labels"] == local_labels  # K8SFramework's claim, selector included
    assert claims["local"]["spec"]["selector"] == {"matchLabels": local_labels}
    assert claims["local"]["spec"]["volumeMode"] == "Filesystem"
    volumes = [v["name"] for v in sts["spec"]["template"]["spec"]["volumes"]]
    assert "data" not in volumes and "local" not in volumes and "cache" in volumes  # claims are not volumes
    mounted = [m["name"] for m in sts["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]]
    assert {"data", "local", "cache"} <= set(mounted)
    assert sts["spec"]["podManagementPolicy"] == "OrderedReady"

    # An existing StatefulSet keeps its podManagementPolicy, which the apiserver does not let change; the hash still
    # follows the TServer. Claim templates, which cannot change either, are the TServer's: a change rebuilds it.
    existing = {"metadata": {}, "spec": {"podManagementPolicy": "Parallel", "volumeClaimTemplates": []}}
    again = translate.statefulset(ts, existing)
    assert again["spec"]["podManagementPolicy"] == "Parallel"
    assert again["spec"]["volumeClaimTemplates"] == sts["spec"]["volumeClaimTemplates"]
    assert again["metadata"]["annotations"] == sts["metadata"]["annotations"]
    assert translate.needs_rebuild(existing, again)  # from before the claims hash: compared by names
    assert not translate.needs_rebuild(sts, again)
    fewer = _ts(mounts=mounts[1:], podManagementPolicy="OrderedReady")
    assert translate.needs_rebuild(sts, translate.statefulset(fewer, sts))
    grown = {"spec": {**pvc["spec"], "resources": {"requests": {"storage": "2Gi"}}}}
    bigger = _ts(mounts=[{**mounts[0], "source": {"persistentVolumeClaimTemplate": grown}}, *mounts[1:]],
                 podManagementPolicy="OrderedReady")  # fmt: skip
    assert translate.needs_rebuild(sts, translate.statefulset(bigger, sts))


def test_env_ports_secrets_and_host_network() -> None:
    ts = _ts(env=[{"name": "TARS_SERVER", "value": "Override"}], hostNetwork=True,
             hostPorts=[{"nameRef": "HelloObj", "port": 20000}])  # fmt: skip
    ts["spec"]["release"]["nodeSecret"] = "tars-image-secret"  # the same secret twice is listed once
    ts["spec"]["tars"]["servants"][1]["isTcp"] = False
    pod = translate.pod_template(ts, "tars")["spec"]
    (container,) = pod["containers"]
    env = [e for e in container["env"] if e["name"] == "TARS_SERVER"]
    assert env == [{"name": "TARS_SERVER", "value": "Override"}]
    assert container["ports"] == [
        {"name": "p20000-10000", "containerPort": 10000, "hostPort": 20000, "protocol": "TCP"}
    ]
    assert pod["hostNetwork"] is True and pod["dnsPolicy"] == "ClusterFirstWithHostNet"
    assert pod["imagePullSecrets"] == [{"name": "tars-image-secret"}]
    svc = translate.service(ts)
    assert [(p["name"], p["protocol"]) for p in svc["spec"]["ports"]] == [("helloobj", "TCP"), ("adminhttpobj", "UDP")]


def test_rendering_is_deterministic_and_sensitive() -> None:
    a, b = translate.statefulset(_ts()), translate.statefulset(_ts())
    assert a == b
    hash_of = translate.HASH_ANNOTATION
    other = _ts()
    other["spec"]["important"] = 9  # not in the pod template
    assert translate.statefulset(other)["metadata"]["annotations"][hash_of] == a["metadata"]["annotations"][hash_of]
    other["spec"]["tars"]["servants"][0]["thread"] = 8  # in the server description: the pods roll
    rolled = translate.statefulset(other)
    assert rolled["metadata"]["annotations"][hash_of] != a["metadata"]["annotations"][hash_of]
    meta_hash = translate.SERVER_META_HASH
    assert (
        rolled["spec"]["template"]["metadata"]["annotations"][meta_hash]
        != a["spec"]["template"]["metadata"]["annotations"][meta_hash]
    )


def test_no_release_means_no_pods() -> None:
    ts = _ts(replicas=3)
    del ts["spec"]["release"]
    sts = translate.statefulset(ts)
    assert sts["spec"]["replicas"] == 0
    assert sts["spec"]["template"]["spec"]["containers"][0]["image"] == " "
    assert sts["spec"]["template"]["spec"]["initContainers"][0]["image"] == " "
    assert "imagePullSecrets" not in sts["spec"]["template"]["spec"]


# --- the server template -------------------------------------------------------------------------------------------
def _tt(name: str, parent: str, content: str) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"parent": parent, "content": content}}


def test_template_chain_merges_root_first_then_profile() -> None:
    templates = {
        "tars.default": _tt("tars.default", "tars.default", "<tars>\n  a=1\n  b=1\n  c=1\n</tars>\n"),
        "tars.cpp": _tt("tars.cpp", "tars.default", "<tars>\n  b=2\n  c=2\n</tars>\n"),
        "mine": _tt("mine", "tars.cpp", "<tars>\n  c=3\n</tars>\n"),
    }
    ts = _ts()
    ts["spec"]["tars"].update(template="mine", profile="<tars>\n  d=${app}\n</tars>\n")
    assert translate.server_template(ts, templates) == "<tars>\n  a=1\n  b=2\n  c=3\n  d=${app}\n</tars>\n"
    assert [t["metadata"]["name"] for t in translate.template_chain("mine", templates)] == [
        "tars.default", "tars.cpp", "mine"]  # fmt: skip


@pytest.mark.parametrize(
    ("templates", "message"),
    [
        ({}, "TTemplate 'tars.cpp' not found"),
        ({"tars.cpp": _tt("tars.cpp", "gone", "")}, "TTemplate 'gone' not found (parent of 'tars.cpp')"),
        ({"tars.cpp": _tt("tars.cpp", "x", ""), "x": _tt("x", "tars.cpp", "")}, "parents form a loop"),
        ({"tars.cpp": _tt("tars.cpp", "tars.cpp", "<tars>\n")}, "tars.cpp: <tars> is never closed"),
    ],
)
def test_template_errors_are_clear(templates: dict[str, Any], message: str) -> None:
    with pytest.raises(translate.TemplateError, match=message.replace("(", r"\(").replace(")", r"\)")):
        translate.server_template(_ts(), templates)


def test_template_is_not_part_of_the_pod_template_hash() -> None:
    ts = _ts()
    a = translate.server_meta_configmap(ts, "<tars>\n  a=1\n</tars>\n")
    b = translate.server_meta_configmap(ts, "<tars>\n  a=2\n</tars>\n")
    assert a["metadata"]["annotations"] != b["metadata"]["annotations"]  # the ConfigMap follows the template
    assert translate.TEMPLATE_KEY not in translate.server_meta_configmap(ts)["data"]
