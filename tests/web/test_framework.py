"""The framework page: the namespace's framework services with their readiness (live), and its TFrameworkConfig."""

from __future__ import annotations

from typing import Any

import yaml  # type: ignore[import-untyped,unused-ignore]
from helpers import Browser, add_account

from k8stars.kube.client import Kube
from k8stars.kube.resources import TFRAMEWORKCONFIG
from k8stars.web.pages.framework import DEPLOYMENT
from tests.conftest import ROOT


def deployment(name: str, replicas: int) -> dict[str, Any]:
    labels = {"app": name}
    pod = {"containers": [{"name": "c", "image": "example.com/k8stars/tarscli:0.1.0"}]}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "labels": {"app.kubernetes.io/part-of": "k8stars"}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": pod}}}  # fmt: skip


async def test_framework_services_and_config(kube: Kube, namespace: str, console: str, browser: Any) -> None:
    (tfc,) = [d for d in yaml.safe_load_all((ROOT / "examples" / "k8s" / "tframework.yaml").read_text())
              if d and d["kind"] == "TFrameworkConfig"]  # fmt: skip
    await kube.create(TFRAMEWORKCONFIG, namespace, tfc)
    await kube.create(DEPLOYMENT, namespace, deployment("tars-registry", 1))
    unrelated = deployment("someone-else", 1)
    del unrelated["metadata"]["labels"]
    await kube.create(DEPLOYMENT, namespace, unrelated)
    await add_account(kube, namespace, "dev", "dev-pass", ("developer", "Test"))
    b = await Browser.open(browser, console)
    try:
        await b.login("dev", "dev-pass")
        await b.goto("/framework")
        assert await b.page.locator("tr.workload").count() == 1  # only the framework's workloads
        assert "tars-registry" in await b.page.inner_text("#services")
        # The Deployment's pod starts on a kwok node: the live list turns it ready without a reload.
        await b.page.wait_for_selector("tr.workload[data-name=tars-registry] td.ok", timeout=30000)
        assert "1/1" in await b.page.inner_text("tr.workload[data-name=tars-registry]")
        assert "recordLimit" in await b.page.inner_text("#framework-config")
        await b.shot("framework.png")
        b.assert_clean()
    finally:
        await b.close()


async def test_admins_edit_the_framework_config(kube: Kube, namespace: str, console: str, browser: Any) -> None:
    """An admin edits the TFrameworkConfig as YAML; bad YAML, the object's identity, a required field removed (the
    apiserver's refusal) and a stale form are refused with the reason and change nothing; a developer only reads it,
    a forged POST is 403."""
    (tfc,) = [d for d in yaml.safe_load_all((ROOT / "examples" / "k8s" / "tframework.yaml").read_text())
              if d and d["kind"] == "TFrameworkConfig"]  # fmt: skip
    await kube.create(TFRAMEWORKCONFIG, namespace, tfc)
    await add_account(kube, namespace, "admin", "admin-pass", ("admin", "*"))
    await add_account(kube, namespace, "dev", "dev-pass", ("developer", "*"))
    admin, dev = await Browser.open(browser, console), await Browser.open(browser, console)
    try:
        await admin.login("admin", "admin-pass")
        await admin.goto("/framework")
        text = await admin.page.input_value("#edit-framework textarea")
        settings = yaml.safe_load(text)
        assert settings["recordLimit"]["texitedPod"] == 60 and "metadata" not in settings
        settings["recordLimit"]["texitedPod"] = 90
        settings["nodeImage"]["image"] = "registry.example.com/tars/tarsnode:v1.4.1"
        await admin.page.fill("#edit-framework textarea", yaml.safe_dump(settings))
        await admin.page.click("#edit-framework button")
        await admin.page.wait_for_load_state()
        saved = await kube.get(TFRAMEWORKCONFIG, namespace, "tars-framework")
        assert saved is not None and saved["recordLimit"]["texitedPod"] == 90
        assert saved["nodeImage"]["image"].endswith(":v1.4.1") and saved["imageUpload"] == tfc["imageUpload"]
        # Refused, each with its reason, nothing changed; the last by the apiserver (a required field removed).
        del settings["imageBuild"]
        for bad, why in (("nodeImage: [", "not YAML"), ("- a list", "a mapping"), ("kind: Other", "not edited here"),
                         (yaml.safe_dump(settings), "imageBuild: Required value")):  # fmt: skip
            await admin.goto("/framework")
            await admin.page.fill("#edit-framework textarea", bad)
            await admin.page.click("#edit-framework button")
            await admin.page.wait_for_load_state()
            assert why in await admin.page.inner_text("#refusal")
        stale = str(saved["metadata"]["resourceVersion"])
        await admin.goto("/framework")
        await kube.merge_patch(TFRAMEWORKCONFIG, namespace, "tars-framework", {"recordLimit": {"texitedPod": 70}})
        await admin.page.fill("#edit-framework textarea", "recordLimit:\n  texitedPod: 10\n")
        await admin.page.click("#edit-framework button")
        await admin.page.wait_for_load_state()
        assert "changed it meanwhile" in await admin.page.inner_text("#refusal")
        after = await kube.get(TFRAMEWORKCONFIG, namespace, "tars-framework")
        assert after is not None and after["recordLimit"]["texitedPod"] == 70 and after["imageBuild"]
        # A developer reads, edits nothing.
        await dev.login("dev", "dev-pass")
        await dev.goto("/framework")
        assert await dev.page.locator("#edit-framework").count() == 0
        assert "texitedPod: 70" in await dev.page.inner_text("#framework-config")
        token = await dev.csrf()
        assert await dev.forge("/framework", {"_csrf": token, "settings": "recordLimit: {}", "resourceVersion": ""}
                               ) == 403  # fmt: skip
        assert await admin.forge("/framework", {"settings": "recordLimit: {}", "resourceVersion": stale}) == 403
        final = await kube.get(TFRAMEWORKCONFIG, namespace, "tars-framework")
        assert final is not None and final["recordLimit"]["texitedPod"] == 70
        admin.assert_clean("422")
        dev.assert_clean()
    finally:
        await admin.close()
        await dev.close()
