"""The k8s.tars.io CRDs: current files, all Established, K8SFramework-style YAML applies, bad objects refused."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from operator_helpers import load_examples, resource_of

from k8stars.kube import crds
from k8stars.kube.client import ApiException, Kube
from k8stars.kube.resources import CRD, TARS_KINDS, TSERVER


def test_crd_files_are_generated_from_the_code() -> None:
    assert crds.main(["check"]) == 0, "deploy/crds is stale: run python -m k8stars.kube.crds write"


def test_write_and_check_a_directory(tmp_path: Any) -> None:
    assert crds.main(["write", str(tmp_path)]) == 0 and crds.main(["check", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(crds.files())
    stray = tmp_path / "tgone.yaml"  # a kind no longer generated: check says so, write removes it
    stray.write_text(crds.HEADER + "kind: CustomResourceDefinition\n")
    (tmp_path / "mine.yaml").write_text("kind: ConfigMap\n")  # not generated: left alone
    assert crds.main(["check", str(tmp_path)]) == 1
    assert crds.main(["write", str(tmp_path)]) == 0 and not stray.exists() and (tmp_path / "mine.yaml").exists()
    assert crds.main(["nonsense"]) == 2


def test_conversion_manifests() -> None:
    by_kind = {c["spec"]["names"]["kind"]: c for c in crds.all_crds()}
    ts = crds.with_conversion(by_kind["TServer"], "https://127.0.0.1:1/convert", "Q0E=")
    assert [v["name"] for v in ts["spec"]["versions"]] == ["v1beta1", "v1beta2", "v1beta3"]
    assert [v["storage"] for v in ts["spec"]["versions"]] == [False, False, True]
    assert ts["spec"]["conversion"]["webhook"]["clientConfig"] == {
        "url": "https://127.0.0.1:1/convert",
        "caBundle": "Q0E=",
    }
    v1 = ts["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    assert "source" in v1["release"]["properties"] and "nodeImage" not in v1["release"]["properties"]
    assert "readinessGate" in v1["k8s"]["properties"] and "launcherType" not in v1["k8s"]["properties"]
    tfc = crds.with_conversion(by_kind["TFrameworkConfig"], service={"name": "w", "namespace": "n", "path": "/convert"})
    v2 = tfc["spec"]["versions"][0]
    assert v2["name"] == "v1beta2" and v2["schema"]["openAPIV3Schema"]["required"] == ["imageRegistry", "nodeImage"]
    with pytest.raises(ValueError, match="TConfig needs no conversion webhook"):
        crds.with_conversion(by_kind["TConfig"], "https://x")
    with pytest.raises(ValueError, match="either url or service"):
        crds.with_conversion(by_kind["TServer"])


def test_every_kind_has_a_crd() -> None:
    kinds = {c["spec"]["names"]["kind"] for c in crds.all_crds()}
    assert kinds == {r.kind for r in TARS_KINDS}
    ts = next(c for c in crds.all_crds() if c["spec"]["names"]["kind"] == "TServer")
    assert ts["spec"]["names"]["shortNames"] == ["ts"]
    (version,) = ts["spec"]["versions"]
    assert version["name"] == "v1beta3" and version["served"] and version["storage"]
    assert version["subresources"]["scale"]["specReplicasPath"] == ".spec.k8s.replicas"


async def test_all_crds_are_established_and_stored_as_v1beta3(kube: Kube) -> None:
    for res in TARS_KINDS:
        crd = await kube.get(CRD, None, f"{res.plural}.{res.group}")
        assert crd is not None, res.plural
        assert crd["status"]["storedVersions"] == ["v1beta3"]
        conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
        assert conditions.get("Established") == "True" and conditions.get("NamesAccepted") == "True"
        assert "NonStructuralSchema" not in conditions


def _contains(stored: Any, sent: Any) -> bool:
    """Everything sent is stored unchanged (the server may add defaults and metadata)."""
    if isinstance(sent, dict):
        return isinstance(stored, dict) and all(k in stored and _contains(stored[k], v) for k, v in sent.items())
    if isinstance(sent, list):
        return isinstance(stored, list) and len(stored) == len(sent) and all(map(_contains, stored, sent))
    return bool(stored == sent)


@pytest.mark.parametrize(
    "example",
    ["ttemplate.yaml", "tserver.yaml", "tserver-normal.yaml", "tconfig.yaml", "timage.yaml", "tframework.yaml"],
)
async def test_k8sframework_style_yaml_applies_unchanged(kube: Kube, namespace: str, example: str) -> None:
    for doc in load_examples(example):
        res = resource_of(doc["kind"])
        stored = await kube.create(res, namespace, copy.deepcopy(doc))
        sent = {k: v for k, v in doc.items() if k != "metadata"}
        assert _contains(stored, sent), (doc["kind"], stored)
        assert _contains(stored["metadata"], doc["metadata"])


async def test_schema_defaults_match_k8sframework(kube: Kube, namespace: str) -> None:
    (doc,) = load_examples("tserver.yaml")
    ts = await kube.create(TSERVER, namespace, doc)
    admin = ts["spec"]["tars"]["servants"][1]
    assert (admin["thread"], admin["capacity"], admin["connection"], admin["timeout"], admin["isTcp"]) == (
        3,
        10000,
        10000,
        60000,
        True,
    )
    k8s = ts["spec"]["k8s"]
    assert k8s["abilityAffinity"] == "AppOrServerPreferred"
    assert k8s["podManagementPolicy"] == "Parallel" and k8s["imagePullPolicy"] == "Always"
    assert k8s["launcherType"] == "background" and k8s["daemonSet"] is False
    assert k8s["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    assert k8s["env"][1]["valueFrom"]["fieldRef"] == {"fieldPath": "metadata.name"}
    assert ts["spec"]["important"] == 5
    scale = await kube.request("GET", TSERVER.path(namespace, "test-helloserver", "scale"))
    assert scale["spec"]["replicas"] == 2

    (cfg, _) = load_examples("tconfig.yaml")
    cfg = {k: v for k, v in cfg.items() if k not in ("podSeq", "activated")}
    cfg["metadata"] = {"name": "defaults"}
    stored = await kube.create(resource_of("TConfig"), namespace, cfg)
    assert stored["podSeq"] == "m" and stored["activated"] is True


def _tserver(**spec_changes: Any) -> dict[str, Any]:
    (doc,) = load_examples("tserver.yaml")
    doc["metadata"] = {"name": "bad"}
    doc["spec"].update(spec_changes)
    return dict(doc)


BAD_TSERVERS = {
    "server name with a dash": (_tserver(server="Hello-Server"), "spec.server"),
    "subType unknown": (_tserver(subType="grpc"), "spec.subType"),
    "servant port out of range": (
        _tserver(tars={"template": "tars.cpp", "servants": [{"name": "HelloObj", "port": 70000}]}),
        "spec.tars.servants[0].port",
    ),
    "servant without port": (
        _tserver(tars={"template": "tars.cpp", "servants": [{"name": "HelloObj"}]}),
        "spec.tars.servants[0].port",
    ),
    "replicas above 99": (_tserver(k8s={"replicas": 100}), "spec.k8s.replicas"),
    "upper-case image": (_tserver(release={"id": "v1", "image": "Registry/Hello:1"}), "spec.release.image"),
    "both tars and normal missing": (
        {"apiVersion": "k8s.tars.io/v1beta3", "kind": "TServer", "metadata": {"name": "bad"},
         "spec": {"app": "Test", "server": "Hello", "subType": "tars"}},
        "spec",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(BAD_TSERVERS))
async def test_tserver_violating_the_schema_is_rejected(kube: Kube, namespace: str, case: str) -> None:
    body, field = BAD_TSERVERS[case]
    with pytest.raises(ApiException) as err:
        await kube.create(TSERVER, namespace, copy.deepcopy(body))
    assert err.value.status == 422, err.value.body
    assert field in str(err.value.body), err.value.body


async def test_tconfig_violating_the_schema_is_rejected(kube: Kube, namespace: str) -> None:
    (cfg, _) = load_examples("tconfig.yaml")
    for key, value in [("podSeq", "x"), ("configName", "-bad"), ("app", "1abc")]:
        bad = copy.deepcopy(cfg)
        bad[key] = value
        with pytest.raises(ApiException) as err:
            await kube.create(resource_of("TConfig"), namespace, bad)
        assert err.value.status == 422 and key in str(err.value.body), err.value.body
    missing = {k: v for k, v in cfg.items() if k != "configContent"}
    with pytest.raises(ApiException) as err:
        await kube.create(resource_of("TConfig"), namespace, missing)
    assert "configContent" in str(err.value.body)


async def test_older_versions_of_unchanged_kinds_are_served(kube: Kube, namespace: str) -> None:
    """K8SFramework's v1beta1/v1beta2 TConfig, TTemplate, ... YAML applies too (same schema; stored as v1beta3)."""
    from k8stars.kube.client import Resource

    master, _ = load_examples("tconfig.yaml")
    for version in ("v1beta1", "v1beta2"):
        doc = copy.deepcopy(master)
        doc["apiVersion"] = f"k8s.tars.io/{version}"
        doc["metadata"] = {"name": f"cfg-{version}"}
        stored = await kube.create(Resource("k8s.tars.io", version, "tconfigs", "TConfig"), namespace, doc)
        assert stored["apiVersion"] == f"k8s.tars.io/{version}"
        again = await kube.get(resource_of("TConfig"), namespace, f"cfg-{version}")
        assert again is not None and again["configContent"] == master["configContent"]


async def test_timage_server_type_python(kube: Kube, namespace: str) -> None:
    """TImage serverType and supportedType take `python` besides K8SFramework's types (old YAML stays valid); an
    unknown type is still refused by the schema."""
    timage = resource_of("TImage")
    build = {"id": "v1", "baseImage": "tarscloud/tars.python", "image": "reg/app:v1", "serverType": "python"}
    doc = {
        "apiVersion": "k8s.tars.io/v1beta3",
        "kind": "TImage",
        "metadata": {"name": "python-base"},
        "imageType": "base",
        "supportedType": ["python", "cpp"],
        "build": {"last": build},
    }
    stored = await kube.create(timage, namespace, copy.deepcopy(doc))
    assert stored["supportedType"] == ["python", "cpp"] and stored["build"]["last"]["serverType"] == "python"
    bad = copy.deepcopy(doc)
    bad["metadata"]["name"], bad["supportedType"] = "rust-base", ["rust"]
    with pytest.raises(ApiException) as err:
        await kube.create(timage, namespace, bad)
    assert err.value.status == 422 and "supportedType" in str(err.value.body), err.value.body
