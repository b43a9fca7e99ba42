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
