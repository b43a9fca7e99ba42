"""The k8stars-framework chart's web console (``helm template``): Deployment, Service tars-web on port 80, the
session key Secret, and a least-privilege Role, proven by driving the console in a browser as the chart's
ServiceAccount (impersonated) through every page and action."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped,unused-ignore]
from aiohttp import web
from helpers import Browser, add_account, until
from test_releases_configs import timage
from test_servers import tserver

from k8stars.kube.client import Kube, Resource
from k8stars.kube.resources import TACCOUNT, TCONFIG, TIMAGE, TSERVER, TTEMPLATE
from k8stars.testing.cluster import Cluster
from k8stars.web.accounts import object_name
from k8stars.web.app import make_app
from k8stars.web.session import Signer, key_from_secret

CHART = Path(__file__).resolve().parents[2] / "deploy" / "helm" / "k8stars-framework"
RBAC = {
    "ServiceAccount": Resource("", "v1", "serviceaccounts", "ServiceAccount"),
    "Secret": Resource("", "v1", "secrets", "Secret"),
    "Role": Resource("rbac.authorization.k8s.io", "v1", "roles", "Role"),
    "RoleBinding": Resource("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding"),
}


def render(namespace: str = "tars", *sets: str) -> dict[str, dict[str, Any]]:
    helm = os.environ.get("K8STARS_HELM") or shutil.which("helm") or str(Path.home() / ".cache/k8stars/tools/bin/helm")
    if not Path(helm).is_file():
        pytest.skip("no helm binary (see tests/operator/test_helm.py)")
    args = [a for s in sets for a in ("--set", s)]
    out = subprocess.run([helm, "template", "fw", str(CHART), "-n", namespace, *args], capture_output=True,
                         text=True, timeout=60, check=False)  # fmt: skip
    assert out.returncode == 0, out.stderr
    docs = [d for d in yaml.safe_load_all(out.stdout) if d and d["metadata"]["name"] == "tars-web"]
    return {d["kind"]: d for d in docs}


def test_chart_renders_the_console() -> None:
    docs = render()
    assert set(docs) == {"Deployment", "Service", "Secret", "ServiceAccount", "Role", "RoleBinding"}
    (container,) = docs["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["k8stars", "web"]
    assert {"--host=0.0.0.0", "--port=8080", "--namespace=tars", "--session-secret=tars-web"} <= set(container["args"])
    assert docs["Service"]["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": "http"}]
    rules = docs["Role"]["rules"]
    assert not any("*" in r["verbs"] or "*" in r["resources"] for r in rules)
    (secrets,) = [r for r in rules if "secrets" in r["resources"]]
    assert secrets == {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["tars-web"], "verbs": ["get"]}
    assert render("tars", "web.enabled=false") == {}
    assert "--secure-cookie" in render("tars", "web.secureCookie=true")["Deployment"]["spec"]["template"]["spec"][
        "containers"][0]["args"]  # fmt: skip
    # Upload -> build goes to the chart's image service (Service tars-tarsimage, port 80), with its upload limit.
    assert {"--image-url=http://tars-tarsimage.tars.svc.cluster.local", "--max-upload=200"} <= set(container["args"])
    alone = render("tars", "imageBuilder.enabled=false")["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert not any(a.startswith(("--image-url", "--max-upload")) for a in alone["args"])
    # The log service's files view asks for the token of Secret tars-log-token: mounted read-only (the kubelet reads
    # it for the pod; the Role still gets no Secret but tars-web), given as --log-token-file beside --log-url.
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    log_flags = {"--log-url=http://tars-log.tars.svc.cluster.local:9329", "--log-token-file=/etc/tars-log-token/token"}
    assert log_flags <= set(container["args"])
    assert container["volumeMounts"] == [{"name": "log-token", "mountPath": "/etc/tars-log-token", "readOnly": True}]
    assert pod["volumes"] == [{"name": "log-token", "secret": {"secretName": "tars-log-token", "defaultMode": 0o440}}]
    no_log = render("tars", "log.enabled=false")["Deployment"]["spec"]["template"]["spec"]
    assert not any(a.startswith("--log-") for a in no_log["containers"][0]["args"])
    assert "volumes" not in no_log and "volumeMounts" not in no_log["containers"][0]


async def test_the_role_is_enough(k8s_cluster: Cluster, kube: Kube, namespace: str, operator: None,
                                  browser: Any) -> None:  # fmt: skip
    """The chart's RBAC applied for real; the console runs as its ServiceAccount and every action works."""
    for kind, doc in render(namespace).items():
        if kind in RBAC:
            await kube.create(RBAC[kind], namespace, doc)
    await kube.create(TSERVER, namespace, tserver("Test", "HelloServer"))
    await kube.create(TIMAGE, namespace, timage("test-helloserver", "v2", "v20260101-1"))
    await add_account(kube, namespace, "admin", "admin-pass", ("admin", "*"))
    impersonate = {"Impersonate-User": f"system:serviceaccount:{namespace}:tars-web"}
    sa = Kube((await Kube.connect(str(k8s_cluster.kubeconfig))).api, "k8stars-web", impersonate)
    runner = web.AppRunner(make_app(sa, namespace, Signer(await key_from_secret(sa, namespace, "tars-web"))))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    b = await Browser.open(browser, f"http://127.0.0.1:{port}")
    b.page.on("dialog", lambda d: d.accept())
    try:
        await b.login("admin", "admin-pass")
        assert "HelloServer" in await b.page.inner_text("#tree")
        await b.goto("/servers/test-helloserver")
        await b.page.wait_for_selector("tr.pod[data-pod=test-helloserver-0]", timeout=20000)
        await b.page.fill("#scale input[name=replicas]", "2")
        await b.page.click("#scale button")
        await b.page.wait_for_load_state()
        ts = await kube.get(TSERVER, namespace, "test-helloserver")
        assert ts is not None and ts["spec"]["k8s"]["replicas"] == 2
        await b.page.click("tr.pod[data-pod=test-helloserver-0] button")
        await b.page.wait_for_load_state()
        assert "restarting" in await b.page.inner_text("main")
        await b.goto("/servers/test-helloserver/releases")
        await b.page.click("tr.release[data-id=v2] button")
        await b.page.wait_for_load_state()
        ts = await kube.get(TSERVER, namespace, "test-helloserver")
        assert ts is not None and ts["spec"]["release"]["id"] == "v2"
        for content in ("a=1", "a=2"):
            await b.goto("/servers/test-helloserver/configs")
            await b.page.fill("#new-config input[name=configName]", "a.conf")
            await b.page.fill("#new-config textarea[name=content]", content)
            await b.page.click("#new-config button")
            await b.page.wait_for_load_state()

        async def two_versions() -> bool:
            items = (await kube.list(TCONFIG, namespace))["items"]
            return sorted(bool(t.get("activated")) for t in items) == [False, True]

        await until(two_versions, what="two versions, one activated")
        await b.goto("/servers/test-helloserver/configs")
        await b.page.click("tr.version:not(.current) form button")
        await b.page.wait_for_load_state()

        async def rolled_back() -> bool:
            items = (await kube.list(TCONFIG, namespace))["items"]
            return {t["configContent"]: bool(t.get("activated")) for t in items} == {"a=1": True, "a=2": False}

        await until(rolled_back, what="a=1 activated again")
        await b.goto("/servers/test-helloserver/events")
        await b.goto("/framework")
        await b.goto("/templates")
        await b.page.fill("#new-template input[name=name]", "tars.mine")
        await b.page.click("#new-template button")
        await b.page.wait_for_load_state()
        assert await kube.get(TTEMPLATE, namespace, "tars.mine") is not None
        await b.goto("/accounts")
        await b.page.fill("#new-account input[name=username]", "bob")
        await b.page.fill("#new-account input[name=password]", "bob-initial")
        await b.page.click("#new-account button")
        await b.page.wait_for_load_state()
        assert await kube.get(TACCOUNT, namespace, object_name("bob")) is not None
        await b.page.click("tr.account[data-user=bob] button.danger")
        await b.page.wait_for_load_state()
        assert await kube.get(TACCOUNT, namespace, object_name("bob")) is None
        assert "Kubernetes refused" not in await b.page.inner_text("main")
        b.assert_clean()
    finally:
        await b.close()
        await runner.cleanup()
        await sa.close()
