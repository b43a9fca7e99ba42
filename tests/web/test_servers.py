"""The service tree (TTree + TServers, search, per-app visibility) and a server page (pods from the operator on the
kwok nodes, scale, restart, YAML), with each action's role checked, forged POSTs included."""

from __future__ import annotations

import copy
from typing import Any

import yaml  # type: ignore[import-untyped,unused-ignore]
from helpers import Browser, add_account, until

from k8stars.kube.client import Kube, Obj
from k8stars.kube.resources import POD, TSERVER, TTREE
from tests.conftest import ROOT

EXAMPLE = yaml.safe_load((ROOT / "examples" / "k8s" / "tserver.yaml").read_text())


def tserver(app: str, server: str, replicas: int = 1) -> Obj:
    body: Obj = copy.deepcopy(EXAMPLE)
    name = f"{app.lower()}-{server.lower()}"
    body["metadata"] = {"name": name, "labels": {"tars.io/ServerApp": app, "tars.io/ServerName": server}}
    body["spec"]["app"], body["spec"]["server"] = app, server
    body["spec"]["k8s"]["replicas"] = replicas
    body["spec"]["k8s"].pop("mounts")
    return body


async def add_tree(kube: Kube, namespace: str) -> None:
    tree = {"apiVersion": TTREE.api_version, "kind": "TTree", "metadata": {"name": "tars-tree"},
            "businesses": [{"name": "Shop", "show": "Online shop", "weight": 5}],
            "apps": [{"name": "Test", "businessRef": "Shop"}, {"name": "Pay", "businessRef": ""}]}  # fmt: skip
    await kube.create(TTREE, namespace, tree)
    for app, server in (("Test", "HelloServer"), ("Test", "CartServer"), ("Pay", "BillServer")):
        await kube.create(TSERVER, namespace, tserver(app, server))


async def activate(kube: Kube, namespace: str, pod: str) -> None:
    """What the in-pod agent does once its server is up: the pod's tars.io/active condition."""
    condition = {"type": "tars.io/active", "status": "True", "reason": "Active", "message": "server active"}
    await kube.request("PATCH", POD.path(namespace, pod, "status"), body={"status": {"conditions": [condition]}},
                       content_type="application/strategic-merge-patch+json")  # fmt: skip


async def replicas(kube: Kube, namespace: str, name: str) -> int:
    ts = await kube.get(TSERVER, namespace, name)
    assert ts is not None
    return int(ts["spec"]["k8s"]["replicas"])


async def test_tree_search_and_visibility(kube: Kube, namespace: str, console: str, browser: Any) -> None:
    await add_tree(kube, namespace)
    await add_account(kube, namespace, "admin", "admin-pass", ("admin", "*"))
    await add_account(kube, namespace, "payer", "payer-pass", ("developer", "Pay"))
    admin, payer = await Browser.open(browser, console), await Browser.open(browser, console)
    try:
        await admin.login("admin", "admin-pass")
        text = await admin.page.inner_text("#tree")
        assert "Online shop" in text and "HelloServer" in text and "BillServer" in text
        await admin.shot("tree.png")
        await admin.page.fill("#search", "cart")  # filters as one types
        assert await admin.page.locator("tr.server:visible").count() == 1
        await admin.page.press("#search", "Enter")  # and on the server
        await admin.page.wait_for_url("**/?q=cart")
        assert [await r.get_attribute("data-name") for r in await admin.page.locator("tr.server").all()] == [
            "Test.CartServer"
        ]
        # A developer of Pay sees Pay only, and no other app's server page.
        await payer.login("payer", "payer-pass")
        text = await payer.page.inner_text("#tree")
        assert "BillServer" in text and "HelloServer" not in text and "Online shop" not in text
        response = await payer.goto("/servers/test-helloserver")
        assert response.status == 404
        admin.assert_clean()
        payer.assert_clean("status of 404")
    finally:
        await admin.close()
        await payer.close()


async def test_server_page_scale_and_restart(kube: Kube, namespace: str, operator: None, console: str,
                                             browser: Any) -> None:  # fmt: skip
    await add_tree(kube, namespace)
    await add_account(kube, namespace, "ops", "ops-pass", ("operator", "Test.HelloServer"), ("developer", "Test"))
    await add_account(kube, namespace, "dev", "dev-pass", ("developer", "Test"))
    ops, dev = await Browser.open(browser, console), await Browser.open(browser, console)
    try:
        await ops.login("ops", "ops-pass")
        await ops.goto("/servers/test-helloserver")
        await ops.page.wait_for_selector("tr.pod >> text=Running", timeout=30000)  # the operator's pod, on kwok
        row = await ops.page.inner_text("tr.pod")
        assert "test-helloserver-0" in row and "127.64." in row and "v20260101-1" in row
        # The in-pod agent reports the server active: the live list shows it ready without a reload.
        await activate(kube, namespace, "test-helloserver-0")
        await ops.page.wait_for_selector("tr.pod >> text=Active", timeout=20000)
        assert "yes" in await ops.page.inner_text("tr.pod[data-pod=test-helloserver-0]")
        # Scale to 2: the TServer changes, the live list shows the second pod without a reload.
        await ops.page.fill("#scale input[name=replicas]", "2")
        await ops.page.click("#scale button")
        await ops.page.wait_for_load_state()
        assert "scaled to 2" in await ops.page.inner_text("main")
        assert await replicas(kube, namespace, "test-helloserver") == 2
        await ops.page.wait_for_selector("tr.pod[data-pod=test-helloserver-1]", timeout=20000)
        yaml_text = str(await ops.page.text_content("#yaml pre"))
        assert "managedFields" not in yaml_text and "replicas: 2" in yaml_text
        await ops.shot("server.png")
        # Restart a pod: it is deleted (a new uid comes back).
        pod = await kube.get(POD, namespace, "test-helloserver-0")
        assert pod is not None
        ops.page.on("dialog", lambda d: d.accept())
        await ops.page.click("tr.pod[data-pod=test-helloserver-0] button")
        await ops.page.wait_for_load_state()
        assert "restarting" in await ops.page.inner_text("main")

        async def recreated() -> bool:
            again = await kube.get(POD, namespace, "test-helloserver-0")
            return again is not None and again["metadata"]["uid"] != pod["metadata"]["uid"]

        await until(recreated, what="the restarted pod")
        # Operator of HelloServer only: scaling CartServer (seen as a developer) is refused, nothing changes.
        token = await ops.csrf()
        assert await ops.forge("/servers/test-cartserver/scale", {"_csrf": token, "replicas": "5"}) == 403
        # Without the CSRF token (or with another session's), nothing is done either.
        assert await ops.forge("/servers/test-helloserver/scale", {"replicas": "7"}) == 403
        # A developer sees the server but has no scale form, and a forged scale is refused.
        await dev.login("dev", "dev-pass")
        await dev.goto("/servers/test-helloserver")
        assert await dev.page.locator("#scale").count() == 0
        assert await dev.page.locator("tr.pod button").count() == 0
        assert await dev.forge("/servers/test-helloserver/scale", {"_csrf": token, "replicas": "6"}) == 403
        dev_token = await dev.csrf()
        assert await dev.forge("/servers/test-helloserver/scale", {"_csrf": dev_token, "replicas": "6"}) == 403
        restart = "/servers/test-helloserver/pods/test-helloserver-1/restart"
        assert await dev.forge(restart, {"_csrf": dev_token}) == 403
        assert await replicas(kube, namespace, "test-helloserver") == 2
        assert await replicas(kube, namespace, "test-cartserver") == 1
        ops.assert_clean()
        dev.assert_clean()
    finally:
        await ops.close()
        await dev.close()
