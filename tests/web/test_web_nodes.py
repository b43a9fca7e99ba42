"""Nodes and abilities: an admin adds and removes K8SFramework's node labels (``tars.io/node.<ns>``,
``tars.io/ability.<ns>.<App>[-<Server>]``) in the browser, the console running as the chart's ServiceAccount with
the chart's ClusterRole (get, list, patch nodes) and admission policy (only this namespace's labels); lower roles
and forged POSTs change nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped,unused-ignore]
from aiohttp import web
from helpers import Browser, add_account, until
from test_servers import tserver

from k8stars.kube.client import ApiException, Kube, Resource
from k8stars.kube.resources import NODE, TSERVER, TTEMPLATE
from k8stars.testing.cluster import Cluster
from k8stars.web.app import make_app
from k8stars.web.session import Signer, key_from_secret

TEMPLATES = [d for d in yaml.safe_load_all((Path(__file__).resolve().parents[2] / "examples" / "k8s" / "ttemplate.yaml")
              .read_text()) if d]  # fmt: skip
CHART = Path(__file__).resolve().parents[2] / "deploy" / "helm" / "k8stars-framework"
RBAC = "rbac.authorization.k8s.io"
ADMISSION = "admissionregistration.k8s.io"
KINDS = {
    "ServiceAccount": Resource("", "v1", "serviceaccounts", "ServiceAccount"),
    "Secret": Resource("", "v1", "secrets", "Secret"),
    "Role": Resource(RBAC, "v1", "roles", "Role"),
    "RoleBinding": Resource(RBAC, "v1", "rolebindings", "RoleBinding"),
    "ClusterRole": Resource(RBAC, "v1", "clusterroles", "ClusterRole", namespaced=False),
    "ClusterRoleBinding": Resource(RBAC, "v1", "clusterrolebindings", "ClusterRoleBinding", namespaced=False),
    "ValidatingAdmissionPolicy": Resource(
        ADMISSION, "v1", "validatingadmissionpolicies", "ValidatingAdmissionPolicy", namespaced=False
    ),
    "ValidatingAdmissionPolicyBinding": Resource(
        ADMISSION, "v1", "validatingadmissionpolicybindings", "ValidatingAdmissionPolicyBinding", namespaced=False
    ),
}


def web_docs(namespace: str) -> list[dict[str, Any]]:
    """The chart's console RBAC for ``namespace`` (``helm template``)."""
    helm = os.environ.get("K8STARS_HELM") or shutil.which("helm") or str(Path.home() / ".cache/k8stars/tools/bin/helm")
    if not Path(helm).is_file():
        pytest.skip("no helm binary (see tests/operator/test_helm.py)")
    out = subprocess.run([helm, "template", "fw", str(CHART), "-n", namespace], capture_output=True, text=True,
                         timeout=60, check=False)  # fmt: skip
    assert out.returncode == 0, out.stderr
    names = {"tars-web", f"tars-web-nodes.{namespace}"}
    return [d for d in yaml.safe_load_all(out.stdout) if d and d["metadata"]["name"] in names and d["kind"] in KINDS]


def test_chart_gives_nodes_get_list_patch_only() -> None:
    docs = {d["kind"]: d for d in web_docs("tars") if d["metadata"]["name"] == "tars-web-nodes.tars"}
    assert set(docs) == {"ClusterRole", "ClusterRoleBinding", "ValidatingAdmissionPolicy",
                         "ValidatingAdmissionPolicyBinding"}  # fmt: skip
    assert docs["ClusterRole"]["rules"] == [
        {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "patch"]}
    ]
    assert docs["ClusterRoleBinding"]["subjects"] == [
        {"kind": "ServiceAccount", "name": "tars-web", "namespace": "tars"}
    ]


@pytest.fixture
async def sa_console(k8s_cluster: Cluster, kube: Kube, namespace: str) -> AsyncIterator[tuple[str, Kube]]:
    """The console as the chart's ServiceAccount (impersonated), with the chart's RBAC and policy applied; the
    cluster-wide ones are deleted after."""
    made: list[tuple[Resource, str]] = []
    for doc in web_docs(namespace):
        res = KINDS[doc["kind"]]
        await kube.create(res, namespace if res.namespaced else None, doc)
        if not res.namespaced:
            made.append((res, doc["metadata"]["name"]))
    impersonate = {"Impersonate-User": f"system:serviceaccount:{namespace}:tars-web"}
    sa = Kube((await Kube.connect(str(k8s_cluster.kubeconfig))).api, "k8stars-web", impersonate)
    runner = web.AppRunner(make_app(sa, namespace, Signer(await key_from_secret(sa, namespace, "tars-web"))))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}", sa
    finally:
        await runner.cleanup()
        await sa.close()
        for res, name in made:
            await kube.delete(res, None, name)


async def labels(kube: Kube, node: str, namespace: str) -> dict[str, str]:
    obj = await kube.get(NODE, None, node)
    assert obj is not None
    mine = (f"tars.io/node.{namespace}", f"tars.io/ability.{namespace}.")
    return {k: v for k, v in (obj["metadata"].get("labels") or {}).items() if k.startswith(mine)}


async def submit(b: Browser, selector: str) -> None:
    await b.page.click(selector)
    await b.page.wait_for_load_state()


async def test_nodes_and_abilities(kube: Kube, namespace: str, sa_console: tuple[str, Kube], browser: Any) -> None:
    base, sa = sa_console
    await kube.create(TSERVER, namespace, tserver("Test", "HelloServer"))
    for doc in TEMPLATES:  # the new server's template
        await kube.create(TTEMPLATE, namespace, doc)
    await add_account(kube, namespace, "admin", "admin-pass", ("admin", "*"))
    await add_account(kube, namespace, "ops", "ops-pass", ("operator", "Test"))
    node = sorted(n["metadata"]["name"] for n in (await kube.list(NODE))["items"])[0]
    framework, prefix = f"tars.io/node.{namespace}", f"tars.io/ability.{namespace}."
    admin, ops = await Browser.open(browser, base), await Browser.open(browser, base)
    admin.page.on("dialog", lambda d: d.accept())
    row = f"tr.node[data-node='{node}']"
    try:
        await admin.login("admin", "admin-pass")
        await admin.goto("/nodes")
        assert node in await admin.page.inner_text("#nodes")
        # This namespace on the node, then two abilities: the server's and the app's
        await submit(admin, f"{row} td.framework button")
        assert await labels(kube, node, namespace) == {framework: ""}
        await admin.page.select_option(f"{row} form.grant select", "Test-HelloServer")
        await submit(admin, f"{row} form.grant button")
        await admin.page.select_option(f"{row} form.grant select", "Test")
        await submit(admin, f"{row} form.grant button")
        assert await labels(kube, node, namespace) == {
            framework: "",
            f"{prefix}Test-HelloServer": "",
            f"{prefix}Test": "",
        }
        assert "Test-HelloServer" in await admin.page.inner_text(f"{row} td.abilities")
        await admin.shot("nodes.png")
        # Revoke one
        await submit(admin, f"{row} span.ability[data-ability=Test] button")
        assert await labels(kube, node, namespace) == {framework: "", f"{prefix}Test-HelloServer": ""}
        # An ability for no TServer, or a name that is not one, is refused and writes nothing
        token = await admin.csrf()
        path = f"/nodes/{node}/labels"
        for pool in ("Evil", "../x", "Test-HelloServer/x", ""):
            assert await admin.forge(path, {"_csrf": token, "what": "ability", "op": "add", "pool": pool}) == 303
        assert await admin.forge(path, {"_csrf": token, "what": "taint", "op": "add"}) == 303
        assert await labels(kube, node, namespace) == {framework: "", f"{prefix}Test-HelloServer": ""}
        # An operator sees the nodes, without forms; a forged POST (with or without a token) changes nothing
        await ops.login("ops", "ops-pass")
        await ops.goto("/nodes")
        assert await ops.page.locator("#nodes form").count() == 0
        ops_token = await ops.csrf()
        assert await ops.forge(path, {"_csrf": ops_token, "what": "framework", "op": "remove"}) == 403
        assert await ops.forge(path, {"_csrf": ops_token, "what": "ability", "op": "add", "pool": "Test"}) == 403
        assert await admin.forge(path, {"what": "framework", "op": "remove"}) == 403  # no CSRF token
        assert await labels(kube, node, namespace) == {framework: "", f"{prefix}Test-HelloServer": ""}

        # Beyond the console: its ServiceAccount may write no other label, nor taints (the chart's policy)
        async def refused() -> bool:
            try:
                await sa.merge_patch(NODE, None, node, {"metadata": {"labels": {"tars.io/node.other": ""}}})
            except ApiException as e:
                return e.status in (403, 422) and "tars-web changes only" in str(e.body)
            await kube.merge_patch(NODE, None, node, {"metadata": {"labels": {"tars.io/node.other": None}}})
            return False  # the policy is not in force yet

        await until(refused, what="the admission policy in force")
        with pytest.raises(ApiException):
            await sa.merge_patch(NODE, None, node, {"spec": {"unschedulable": True}})
        await submit(admin, f"{row} td.framework button")  # and off again, through the console
        assert await labels(kube, node, namespace) == {f"{prefix}Test-HelloServer": ""}
        # The chart's Role is enough for the other new pages: settings, a new server, monitoring, logs
        await admin.goto("/servers/test-helloserver/edit")
        await admin.page.fill("input[name=replicas]", "2")
        await submit(admin, "#edit button[type=submit]")
        assert "saved" in await admin.page.inner_text("main")
        await admin.goto("/new-server")
        for field, value in {"app": "Test", "server": "Two", "s0.name": "TwoObj", "s0.port": "10000"}.items():
            await admin.page.fill(f"#new-server input[name='{field}']", value)
        await submit(admin, "#new-server button")
        assert "created" in await admin.page.inner_text("main"), await admin.page.inner_text("main")
        assert await kube.get(TSERVER, namespace, "test-two") is not None
        for page in ("monitoring", "logs"):
            assert (await admin.goto(f"/servers/test-helloserver/{page}")).status == 200
        admin.assert_clean()
        ops.assert_clean("status of 403")
    finally:
        await admin.close()
        await ops.close()
        left = await labels(kube, node, namespace)
        await kube.merge_patch(NODE, None, node, {"metadata": {"labels": dict.fromkeys(left)}})
