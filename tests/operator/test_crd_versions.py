"""The older versions K8SFramework serves: TServer v1beta1/v1beta2 and TFrameworkConfig v1beta2 through the conversion
webhook (k8stars/operator/conversion.py), on the real apiserver and as pure functions (hypothesis round trips)."""

from __future__ import annotations

import copy
import json
import ssl
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st
from operator_helpers import free_port, load_examples, until

from k8stars.kube import crds, meta
from k8stars.kube.client import ApiException, Kube, Obj, Resource
from k8stars.kube.resources import CRD, TFRAMEWORKCONFIG, TSERVER
from k8stars.operator import conversion, webhook
from k8stars.operator.conversion import ConversionError, convert_object
from k8stars.testing.cluster import Cluster


def _resource(kind: str, version: str) -> Resource:
    return Resource(meta.GROUP, version, f"{kind.lower()}s", kind)


def _contains(stored: Any, sent: Any) -> bool:
    """Everything sent is there unchanged (the server may add defaults and metadata)."""
    if isinstance(sent, dict):
        return isinstance(stored, dict) and all(k in stored and _contains(stored[k], v) for k, v in sent.items())
    if isinstance(sent, list):
        return isinstance(stored, list) and len(stored) == len(sent) and all(map(_contains, stored, sent))
    return bool(stored == sent)


# A TServer as a K8SFramework v1beta1 user wrote it: one readinessGate, release.source, no nodeImage.
V1BETA1_TSERVER: Obj = {
    "apiVersion": "k8s.tars.io/v1beta1",
    "kind": "TServer",
    "metadata": {"name": "test-oldserver"},
    "spec": {
        "app": "Test",
        "server": "OldServer",
        "subType": "tars",
        "important": 5,
        "tars": {
            "template": "tars.cpp",
            "profile": "",
            "asyncThread": 3,
            "servants": [{"name": "OldObj", "port": 10000}],
        },
        "k8s": {
            "replicas": 1,
            "readinessGate": "example.com/warm",
            "mounts": [{"name": "log-dir", "mountPath": "/log", "source": {"emptyDir": {}}}],
        },
        "release": {"source": "upload/old-1.tgz", "id": "v1", "image": "registry.example.com/tars/test.oldserver:v1"},
    },
}

# A TFrameworkConfig as a K8SFramework v1beta2 user wrote it: imageRegistry (later imageUpload), no executor.
V1BETA2_TFC: Obj = {
    "apiVersion": "k8s.tars.io/v1beta2",
    "kind": "TFrameworkConfig",
    "metadata": {"name": "tars-framework"},
    "imageBuild": {"maxBuildTime": 400},
    "imageRegistry": {"registry": "registry.example.com/tars", "secret": "tars-image-secret"},
    "nodeImage": {"image": "registry.example.com/tars/tarsnode:v1.2.0"},
    "recordLimit": {"texitedPod": 60},
}


# --- on the apiserver -------------------------------------------------------------------------------------------
@pytest.fixture
async def converting(k8s_cluster: Cluster, kube: Kube) -> AsyncIterator[str]:
    """The operator's webhook server on a free loopback port and the TServer and TFrameworkConfig CRDs serving their
    older versions through it; afterwards the plain CRDs again (the same field manager takes the versions away)."""
    tls = k8s_cluster.webhook_tls("k8stars-conversion")
    port = free_port()
    runner = await webhook.serve(webhook.Admission(kube), "127.0.0.1", port, tls.server_context())
    base_url = f"https://127.0.0.1:{port}"
    plain = [c for c in crds.all_crds() if c["spec"]["names"]["kind"] in crds.CONVERTED]
    try:
        for manifest in plain:
            await kube.apply(CRD, None, crds.with_conversion(manifest, f"{base_url}/convert", tls.ca_bundle))
        for kind, versions in crds.CONVERTED.items():
            for version in versions:
                await until(_served(kube, _resource(kind, version)), what=f"{kind} {version} served")
        yield base_url
    finally:
        for manifest in plain:
            await kube.apply(CRD, None, manifest)
        await runner.cleanup()


def _served(kube: Kube, res: Resource) -> Any:
    async def probe() -> bool:
        try:
            await kube.request("GET", res.path("default", None))
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True

    return probe


async def test_v1beta1_tserver_is_stored_as_v1beta3_and_read_back_unchanged(
    kube: Kube, namespace: str, converting: str
) -> None:
    v1 = _resource("TServer", "v1beta1")
    await kube.create(v1, namespace, copy.deepcopy(V1BETA1_TSERVER))
    new = await kube.get(TSERVER, namespace, "test-oldserver")
    assert new is not None and new["apiVersion"] == "k8s.tars.io/v1beta3"
    k8s = new["spec"]["k8s"]
    # K8SFramework's conversion: the gate becomes the list (the mutating webhook, absent here, adds tars.io/active).
    assert k8s["readinessGates"] == ["example.com/warm"] and "readinessGate" not in k8s
    assert (k8s["imagePullPolicy"], k8s["launcherType"]) == ("Always", "background")  # v1beta3's defaults
    assert "source" not in new["spec"]["release"]  # v1beta3 has no place for it: kept in an annotation
    assert json.loads(new["metadata"]["annotations"][conversion.SOURCE_ANNOTATION]) == {"source": "upload/old-1.tgz"}

    old = await kube.get(v1, namespace, "test-oldserver")
    assert old is not None and old["apiVersion"] == "k8s.tars.io/v1beta1"
    assert _contains(old["spec"], V1BETA1_TSERVER["spec"]), old["spec"]
    assert "annotations" not in old["metadata"]  # nothing the v1beta1 client did not send
    as_v2 = await kube.get(_resource("TServer", "v1beta2"), namespace, "test-oldserver")
    assert as_v2 is not None and as_v2["spec"]["k8s"]["readinessGate"] == "example.com/warm"


async def test_v1beta3_fields_survive_an_old_clients_read_modify_write(
    kube: Kube, namespace: str, converting: str
) -> None:
    (doc,) = load_examples("tserver.yaml")
    doc["spec"]["k8s"].update(
        command=["/bin/hello"],
        args=["--verbose"],
        readinessGates=["tars.io/active", "example.com/a", "example.com/b"],
        imagePullPolicy="IfNotPresent",
        updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 1}},
    )
    doc["spec"]["release"]["nodeSecret"] = "node-secret"
    await kube.create(TSERVER, namespace, copy.deepcopy(doc))
    for version in ("v1beta1", "v1beta2"):
        res = _resource("TServer", version)
        seen = await kube.get(res, namespace, "test-helloserver")
        assert seen is not None and seen["spec"]["k8s"]["readinessGate"] == "tars.io/active"  # the first gate
        assert "command" not in seen["spec"]["k8s"] and "readinessGates" not in seen["spec"]["k8s"]
        if version == "v1beta1":
            assert "imagePullPolicy" not in seen["spec"]["k8s"] and "nodeImage" not in seen["spec"]["release"]
        seen["spec"]["important"] = 7 if version == "v1beta1" else 8
        await kube.request("PUT", res.path(namespace, "test-helloserver"), body=seen)
        after = await kube.get(TSERVER, namespace, "test-helloserver")
        assert after is not None and after["spec"]["important"] == seen["spec"]["important"]
        assert _contains(after["spec"]["k8s"], {k: v for k, v in doc["spec"]["k8s"].items()}), after["spec"]["k8s"]
        assert after["spec"]["release"] == doc["spec"]["release"]
        assert not any(k.startswith("k8stars.io/") for k in after["metadata"].get("annotations") or {})


async def test_old_client_changing_the_gate_replaces_the_first(kube: Kube, namespace: str, converting: str) -> None:
    """As K8SFramework converts: readinessGate is the first gate; the rest of the list stays (without the mutating
    webhook, which puts tars.io/active back first on a TARS server: see test_k8sframework_webhooks)."""
    (doc,) = load_examples("tserver.yaml")
    doc["spec"]["k8s"]["readinessGates"] = ["tars.io/active", "example.com/a", "example.com/b"]
    await kube.create(TSERVER, namespace, doc)
    v2 = _resource("TServer", "v1beta2")
    await kube.merge_patch(v2, namespace, "test-helloserver", {"spec": {"k8s": {"readinessGate": "example.com/c"}}})
    after = await kube.get(TSERVER, namespace, "test-helloserver")
    assert after is not None
    assert after["spec"]["k8s"]["readinessGates"] == ["example.com/c", "example.com/a", "example.com/b"]


async def test_v1beta1_schema_is_k8sframeworks(kube: Kube, namespace: str, converting: str) -> None:
    v1 = _resource("TServer", "v1beta1")
    bad = copy.deepcopy(V1BETA1_TSERVER)
    bad["spec"]["k8s"]["mounts"][0]["name"] = "m" * 49  # v1beta1 mount names: 2-48 characters
    with pytest.raises(ApiException) as err:
        await kube.create(v1, namespace, bad)
    assert err.value.status == 422 and "spec.k8s.mounts[0].name" in str(err.value.body), err.value.body
    unknown = copy.deepcopy(V1BETA1_TSERVER)
    unknown["spec"]["k8s"]["command"] = ["/x"]  # not a v1beta1 field: pruned, as by K8SFramework
    stored = await kube.create(v1, namespace, unknown)
    assert "command" not in stored["spec"]["k8s"]


async def test_v1beta2_tframeworkconfig_both_ways(kube: Kube, namespace: str, converting: str) -> None:
    v2 = _resource("TFrameworkConfig", "v1beta2")
    await kube.create(v2, namespace, copy.deepcopy(V1BETA2_TFC))
    new = await kube.get(TFRAMEWORKCONFIG, namespace, "tars-framework")
    assert new is not None and new["imageUpload"] == V1BETA2_TFC["imageRegistry"] and "imageRegistry" not in new
    assert new["imageBuild"]["maxBuildTime"] == 400 and "executor" not in new["imageBuild"]
    old = await kube.get(v2, namespace, "tars-framework")
    assert old is not None and _contains(old, {k: v for k, v in V1BETA2_TFC.items() if k != "metadata"})
    assert "annotations" not in old["metadata"]

    # A v1beta3 executor survives a v1beta2 client's update.
    executor = {"image": "registry.example.com/tars/kaniko:v1.9.0", "secret": ""}
    await kube.merge_patch(TFRAMEWORKCONFIG, namespace, "tars-framework", {"imageBuild": {"executor": executor}})
    seen = await kube.get(v2, namespace, "tars-framework")
    assert seen is not None and "executor" not in seen["imageBuild"]
    seen["recordLimit"]["texitedPod"] = 70
    await kube.request("PUT", v2.path(namespace, "tars-framework"), body=seen)
    after = await kube.get(TFRAMEWORKCONFIG, namespace, "tars-framework")
    assert after is not None and after["imageBuild"]["executor"] == executor
    assert after["recordLimit"]["texitedPod"] == 70


async def test_the_crds_still_store_v1beta3_only(kube: Kube, namespace: str, converting: str) -> None:
    await kube.create(_resource("TServer", "v1beta1"), namespace, copy.deepcopy(V1BETA1_TSERVER))
    for kind in crds.CONVERTED:
        crd = await kube.get(CRD, None, f"{kind.lower()}s.{meta.GROUP}")
        assert crd is not None and crd["status"]["storedVersions"] == ["v1beta3"]
        served = [v["name"] for v in crd["spec"]["versions"] if v["served"]]
        assert served == [*crds.CONVERTED[kind], "v1beta3"]


async def test_a_bad_conversion_request_gets_a_clear_failure(converting: str, k8s_cluster: Cluster) -> None:
    review = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "ConversionReview",
        "request": {
            "uid": "u1",
            "desiredAPIVersion": "k8s.tars.io/v1beta1",
            "objects": [{"apiVersion": "k8s.tars.io/v1beta3", "kind": "TFrameworkConfig", "metadata": {"name": "x"}}],
        },
    }
    ctx = ssl.create_default_context(cadata=k8s_cluster.webhook_tls("k8stars-conversion").ca_pem.decode())
    async with aiohttp.ClientSession() as session, session.post(f"{converting}/convert", json=review, ssl=ctx) as resp:
        answer = await resp.json()
    result = answer["response"]["result"]
    assert answer["response"]["uid"] == "u1" and result["status"] == "Failure"
    assert "TFrameworkConfig has no version 'v1beta1': served versions are v1beta2, v1beta3" in result["message"]


# --- pure functions ---------------------------------------------------------------------------------------------
def test_conversion_errors_say_what_is_wrong() -> None:
    tsrv = {"apiVersion": "k8s.tars.io/v1beta3", "kind": "TServer", "metadata": {"name": "x"}}
    with pytest.raises(ConversionError, match="TServer has no version 'v2'"):
        convert_object(tsrv, "v2")
    with pytest.raises(ConversionError, match=r"not of group k8s\.tars\.io"):
        convert_object({**tsrv, "apiVersion": "apps/v1"}, "v1beta2")
    with pytest.raises(ConversionError, match=r"kind 'Pod' is not a k8s\.tars\.io kind"):
        convert_object({**tsrv, "kind": "Pod"}, "v1beta2")


def test_unchanged_kinds_change_only_their_api_version() -> None:
    (cfg, _) = load_examples("tconfig.yaml")
    assert convert_object(cfg, "v1beta1") == {**cfg, "apiVersion": "k8s.tars.io/v1beta1"}


def test_a_mangled_annotation_does_not_fail_reads() -> None:
    old = copy.deepcopy(V1BETA1_TSERVER)
    old["metadata"]["annotations"] = {conversion.CONVERSION_ANNOTATION: "{not json"}
    new = convert_object(old, "v1beta3")
    assert new["spec"]["k8s"]["readinessGates"] == ["example.com/warm"]  # the gate alone, as K8SFramework
    assert conversion.CONVERSION_ANNOTATION not in new["metadata"].get("annotations", {})


_names = st.sampled_from(["a.io/x", "b.io/y", "c.io/z", meta.ACTIVE_GATE])
_strings = st.text("abc-", min_size=1, max_size=4)
_annotations = st.dictionaries(st.sampled_from(["x.io/a", "y.io/b"]), _strings, min_size=1, max_size=2)


def _optional(d: dict[str, Any], key: str, strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(st.just(d), strategy.map(lambda v: {**d, key: v}))


@st.composite
def _v1beta3_tservers(draw: st.DrawFn) -> Obj:
    sub_type = draw(st.sampled_from(["tars", "normal"]))
    k8s: Obj = {"replicas": draw(st.integers(0, 3))}
    for key, strategy in (
        ("readinessGates", st.lists(_names, max_size=3, unique=True)),
        ("command", st.lists(_strings, max_size=2)),
        ("args", st.lists(_strings, max_size=2)),
        ("imagePullPolicy", st.sampled_from(["Always", "Never", "IfNotPresent"])),
        ("launcherType", st.sampled_from(["foreground", "background"])),
        ("updateStrategy", st.fixed_dictionaries({"type": st.sampled_from(["RollingUpdate", "OnDelete"])})),
    ):
        k8s = draw(_optional(k8s, key, strategy))
    spec: Obj = {"app": "A", "server": "S", "subType": sub_type, "k8s": k8s}
    release = draw(st.one_of(st.none(), st.fixed_dictionaries({"id": _strings, "image": _strings})))
    if release is not None:
        for key in ("nodeImage", "nodeSecret"):
            release = draw(_optional(release, key, _strings))
        spec["release"] = release
    md: Obj = {"name": "a-s"}
    md = draw(_optional(md, "annotations", _annotations))
    return {"apiVersion": "k8s.tars.io/v1beta3", "kind": "TServer", "metadata": md, "spec": spec}


def _defaulted(obj: Obj) -> Obj:
    """What the apiserver makes of it when it reads v1beta3 (the CRD's defaults for the fields v1beta1 lacks)."""
    out = copy.deepcopy(obj)
    for key, value in conversion.K8S_DEFAULTS.items():
        out["spec"]["k8s"].setdefault(key, value)
    return out


@given(_v1beta3_tservers(), st.sampled_from(["v1beta1", "v1beta2"]))
def test_v1beta3_tserver_round_trips_through_older_versions(obj: Obj, version: str) -> None:
    down = convert_object(obj, version)
    assert down["apiVersion"] == f"k8s.tars.io/{version}"
    assert "readinessGates" not in down["spec"]["k8s"] and "command" not in down["spec"]["k8s"]
    back = convert_object(down, "v1beta3")
    assert _defaulted(back) == _defaulted(obj)
    # Down to v1beta2 through v1beta1 and back is just as lossless.
    assert _defaulted(convert_object(convert_object(down, "v1beta2"), "v1beta3")) == _defaulted(obj)


@st.composite
def _old_tservers(draw: st.DrawFn) -> Obj:
    """A TServer as a v1beta1 or v1beta2 client sends it (no annotations of ours)."""
    version = draw(st.sampled_from(["v1beta1", "v1beta2"]))
    k8s: Obj = {"replicas": draw(st.integers(0, 3))}
    # A gate of tars.io/active itself says nothing v1beta3 does not already say: left out.
    k8s = draw(_optional(k8s, "readinessGate", st.sampled_from(["a.io/x", "b.io/y"])))
    if version == "v1beta2":
        k8s = draw(_optional(k8s, "imagePullPolicy", st.sampled_from(["Never", "IfNotPresent"])))
    spec: Obj = {"app": "A", "server": "S", "subType": draw(st.sampled_from(["tars", "normal"])), "k8s": k8s}
    release = draw(st.one_of(st.none(), st.fixed_dictionaries({"id": _strings, "image": _strings})))
    if release is not None:
        key = "source" if version == "v1beta1" else "nodeImage"
        spec["release"] = draw(_optional(release, key, _strings))
    md = draw(_optional({"name": "a-s"}, "annotations", _annotations))
    return {"apiVersion": f"k8s.tars.io/{version}", "kind": "TServer", "metadata": md, "spec": spec}


@given(_old_tservers())
def test_old_tserver_round_trips_through_v1beta3(obj: Obj) -> None:
    version = obj["apiVersion"].rsplit("/", 1)[1]
    up = convert_object(obj, "v1beta3")
    assert "readinessGate" not in up["spec"]["k8s"] and "source" not in up["spec"].get("release", {})
    assert convert_object(up, version) == obj


@given(
    st.fixed_dictionaries(
        {
            "imageUpload": st.fixed_dictionaries({"registry": _strings}),
            "metadata": st.fixed_dictionaries({"name": _strings}, optional={"annotations": _annotations}),
        },
        optional={
            "imageBuild": _optional({"maxBuildTime": 300}, "executor", st.fixed_dictionaries({"image": _strings})),
        },
    )
)
def test_tframeworkconfig_round_trips(body: Obj) -> None:
    obj = {"apiVersion": "k8s.tars.io/v1beta3", "kind": "TFrameworkConfig", **body}
    down = convert_object(obj, "v1beta2")
    assert "imageUpload" not in down and down["imageRegistry"] == obj["imageUpload"]
    assert "executor" not in (down.get("imageBuild") or {})
    assert convert_object(down, "v1beta3") == obj
