"""The framework chart's default objects, as K8SFramework's tarsframework chart ships them (issue 20, item 5): the
TImage `node` and the base TImages (tars.io/ImageType, tars.io/Supported.<type>) pointing at the images `k8stars
image bases` pushes, the TTemplate `tars.es` and the TTree `tars-tree`. Rendered with `helm template`, then a real
`helm install` / `helm upgrade` on the control plane with our admission webhooks judging every object: all accepted,
releases recorded since the install and an edited tree kept by the upgrade."""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import Any

import pytest
from operator_helpers import resource_of, serving_webhooks
from test_helm import FRAMEWORK, HELM, render_chart

from k8stars.image import bases
from k8stars.kube.client import Kube
from k8stars.kube.resources import TIMAGE, TTEMPLATE, TTREE
from k8stars.testing.cluster import Cluster

pytestmark = pytest.mark.skipif(HELM is None, reason="no helm binary (see test_helm.py)")

REGISTRY = "127.0.0.1:5000"
# What the framework chart ships of K8SFramework's objects, beside its own TTemplates.
IMAGES = {"node": ("node", []), "cppbase": ("base", ["cpp", "go"]), "pythonbase": ("base", ["python"]),
          "nodejsbase": ("base", ["nodejs", "nodejs-pkg"])}  # fmt: skip


def _by_name(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def test_default_objects_render_as_k8sframework_ships_them() -> None:
    values = ("--set", f"defaultObjects.images.registry={REGISTRY}", "--set", "defaultObjects.images.tag=v1",
              "--set", "defaultObjects.images.secret=pull")  # fmt: skip
    docs = render_chart(FRAMEWORK, "fw", "tars", *values)
    images = _by_name(docs, "TImage")
    assert sorted(images) == sorted(IMAGES)
    for name, (image_type, supported) in IMAGES.items():
        image = images[name]
        labels = image["metadata"]["labels"]
        assert labels["tars.io/ImageType"] == image_type == image["imageType"]
        assert sorted(k for k in labels if k.startswith("tars.io/Supported.")) == [
            f"tars.io/Supported.{t}" for t in sorted(supported)
        ]
        assert image.get("supportedType", []) == supported
        (release,) = image["releases"]
        assert release["id"] == f"builtin-{name}-v1" and release["secret"] == "pull"
        assert release["image"] == f"{REGISTRY}/tars/{name}:v1"  # where `k8stars image bases REGISTRY` pushes it
    # The chart and `k8stars image bases` name the same TImages with the same types.
    assert {(k.timage, k.image_type, tuple(k.supported)) for k in bases.KINDS.values()} == {
        (name, t, tuple(s)) for name, (t, s) in IMAGES.items()
    }
    es = _by_name(docs, "TTemplate")["tars.es"]
    assert es["spec"]["parent"] == "tars.default"
    content = es["spec"]["content"]
    assert "<elk>" in content and "notify=tars_notify_" in content and "kevent=tars_kevent_" in content
    tree = _by_name(docs, "TTree")["tars-tree"]
    assert tree["businesses"][0]["name"] == "TarsFramework"
    assert [(a["name"], a["businessRef"]) for a in tree["apps"]] == [
        ("tars", "TarsFramework"),
        ("base", "TarsFramework"),
    ]
    assert not _by_name(render_chart(FRAMEWORK, "fw", "tars", "--set", "defaultObjects.enabled=false"), "TImage")


async def test_default_objects_install_through_the_webhooks(k8s_cluster: Cluster, kube: Kube, namespace: str) -> None:
    assert HELM is not None
    env = {**os.environ, "KUBECONFIG": str(k8s_cluster.kubeconfig)}
    release = f"fw-{namespace}"
    values = ("--set", f"defaultObjects.images.registry={REGISTRY}", "--set", "registry.leasePolicy=false",
              "--set", "web.enabled=false")  # fmt: skip

    async def helm(*args: str) -> None:
        """helm as a child process: the loop keeps serving the webhooks the apiserver calls meanwhile."""
        pipe = asyncio.subprocess.PIPE
        proc = await asyncio.create_subprocess_exec(HELM, *args, "--namespace", namespace, env=env, stdout=pipe,
                                                    stderr=pipe)  # fmt: skip
        _, err = await asyncio.wait_for(proc.communicate(), 180)
        assert proc.returncode == 0, (args, err.decode())

    async with serving_webhooks(k8s_cluster, kube, namespace):
        try:
            await helm("install", release, str(FRAMEWORK), *values)
            for name in IMAGES:
                image = await kube.get(TIMAGE, namespace, name)
                assert image is not None, f"TImage {name} missing"
                assert image["releases"][0]["image"] == f"{REGISTRY}/tars/{name}:latest"
            es = await kube.get(TTEMPLATE, namespace, "tars.es")
            assert es is not None and es["spec"]["parent"] == "tars.default"
            tree = await kube.get(TTREE, namespace, "tars-tree")
            assert tree is not None and {a["name"] for a in tree["apps"]} == {"tars", "base"}

            # Since the install: a base image pushed and recorded (`k8stars image bases -n`), the tree edited.
            await bases.register(kube, namespace, "cpp", f"{REGISTRY}/tars/cppbase:0123456789ab")
            tree["apps"].append({"name": "Test", "businessRef": ""})
            await kube.request("PUT", TTREE.path(namespace, "tars-tree"), body=tree)
            await helm("upgrade", release, str(FRAMEWORK), *values, "--set", "defaultObjects.images.tag=v2")
            image = await kube.get(TIMAGE, namespace, "cppbase")
            assert image is not None
            ids = [r["id"] for r in image["releases"]]
            assert ids[0] == "builtin-cppbase-v2" and "0123456789ab" in ids, ids
            tree = await kube.get(TTREE, namespace, "tars-tree")
            assert tree is not None and "Test" in {a["name"] for a in tree["apps"]}
            templates = (await kube.list(resource_of("TTemplate"), namespace))["items"]
            assert sorted(t["metadata"]["name"] for t in templates) == [
                "tars.cpp", "tars.default", "tars.es", "tars.go", "tars.java", "tars.nodejs", "tars.python"
            ]  # the root first (a hook), then its children: the webhook checked each parent  # fmt: skip
        finally:
            with contextlib.suppress(AssertionError, TimeoutError):
                await helm("uninstall", release)
