"""Editing a TServer from forms (servants, replicas, resources, env) and creating one, with the operator's admission
webhooks registered: their refusals (the node servant's reserved port, a port used twice, a bad quantity) are shown
on the form with what was typed and change nothing; an edit made meanwhile is refused; roles per action, forged
POSTs included."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import yaml  # type: ignore[import-untyped,unused-ignore]
from helpers import Browser, add_account
from test_servers import add_tree

from k8stars.kube.client import Kube, Obj
from k8stars.kube.resources import TSERVER, TTEMPLATE
from k8stars.testing.cluster import Cluster
from tests.conftest import ROOT
from tests.operator.operator_helpers import serving_webhooks

PROFILE = "<tars>\n  <application>\n    <server>\n      mine=1\n    </server>\n  </application>\n</tars>\n"
TEMPLATES = [d for d in yaml.safe_load_all((ROOT / "examples" / "k8s" / "ttemplate.yaml").read_text()) if d]
PAGE = "/servers/test-helloserver/edit"


@contextlib.asynccontextmanager
async def editors(k8s_cluster: Cluster, kube: Kube, namespace: str, console: str, browser: Any,
                  *dev_grants: tuple[str, str]) -> AsyncIterator[tuple[Browser, Browser]]:  # fmt: skip
    """Two browsers on the console, for the accounts "ops" (operator of Test) and "dev" (``dev_grants``), with the
    namespace's TTemplates and the operator's admission webhooks serving (the forms show their refusals)."""
    await add_account(kube, namespace, "ops", "ops-pass", ("operator", "Test"))
    await add_account(kube, namespace, "dev", "dev-pass", *dev_grants)
    for doc in TEMPLATES:
        await kube.create(TTEMPLATE, namespace, doc)
    ops, dev = await Browser.open(browser, console), await Browser.open(browser, console)
    try:
        async with serving_webhooks(k8s_cluster, kube, namespace):
            yield ops, dev
    finally:
        await ops.close()
        await dev.close()


async def spec(kube: Kube, namespace: str, name: str = "test-helloserver") -> Obj:
    ts = await kube.get(TSERVER, namespace, name)
    assert ts is not None
    got: Obj = ts["spec"]
    return got


async def save(b: Browser) -> None:
    await b.page.click("#edit button[type=submit]")
    await b.page.wait_for_load_state()


async def test_edit_and_create_servers(k8s_cluster: Cluster, kube: Kube, namespace: str, console: str,
                                       browser: Any) -> None:  # fmt: skip
    await add_tree(kube, namespace)  # Test.HelloServer (HelloObj 10000, AdminHttpObj 10001), Test.CartServer, Pay
    async with editors(k8s_cluster, kube, namespace, console, browser, ("developer", "Test"), ("developer", "Pay")
                       ) as (ops, dev):  # fmt: skip
        await ops.login("ops", "ops-pass")
        await ops.goto("/servers/test-helloserver")
        await ops.page.click("#edit-link")
        await ops.page.wait_for_load_state()
        # Servants: move HelloObj, add NewObj, remove AdminHttpObj; k8s: replicas, a cpu request, an env line
        await ops.page.fill("input[name='s0.port']", "10005")
        await ops.page.fill("input[name='s0.thread']", "5")
        await ops.page.check("input[name='s1.remove']")
        await ops.page.fill("input[name='s2.name']", "NewObj")
        await ops.page.fill("input[name='s2.port']", "10010")
        await ops.page.fill("input[name=replicas]", "3")
        await ops.page.fill("input[name='requests.cpu']", "200m")
        env = await ops.page.input_value("textarea[name=env]")
        assert env == "TZ=Asia/Shanghai"  # POD_NAME comes from a field: not text, kept
        await ops.page.fill("textarea[name=env]", env + "\nLOG_LEVEL=debug")
        # TARS options: the template (a select of the namespace's), async threads, the profile
        assert await ops.page.input_value("#tars-options select[name=template]") == "tars.cpp"
        await ops.page.select_option("#tars-options select[name=template]", "tars.default")
        await ops.page.fill("#tars-options input[name=asyncThread]", "6")
        await ops.page.fill("#tars-options textarea[name=profile]", PROFILE)
        await ops.page.evaluate("window.scrollTo(0, 0)")
        await ops.shot("edit.png")
        await save(ops)
        assert "saved" in await ops.page.inner_text("main"), await ops.page.inner_text("#refusal")
        s = await spec(kube, namespace)
        servants = [(v["name"], v["port"], v.get("thread")) for v in s["tars"]["servants"]]
        assert servants == [("HelloObj", 10005, 5), ("NewObj", 10010, 3)]  # 3: the CRD's default
        assert s["k8s"]["replicas"] == 3 and s["k8s"]["resources"]["requests"] == {"cpu": "200m", "memory": "64Mi"}
        assert [e["name"] for e in s["k8s"]["env"]] == ["POD_NAME", "TZ", "LOG_LEVEL"]
        assert s["k8s"]["env"][0]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
        assert (s["tars"]["template"], s["tars"]["asyncThread"], s["tars"]["profile"]) == (
            "tars.default",
            6,
            PROFILE,
        )
        before = s

        # The webhook refuses the in-pod node servant's port: its message on the form, what was typed kept
        await ops.goto(PAGE)
        await ops.page.fill("input[name='s1.port']", "19385")
        await save(ops)
        refusal = await ops.page.inner_text("#refusal")
        assert "19385" in refusal and "reserved" in refusal, refusal
        assert await ops.page.input_value("input[name='s1.port']") == "19385"
        # ... and one port for two servants; and the CRD schema, a quantity that is not one
        await ops.page.fill("input[name='s1.port']", "10005")
        await save(ops)
        assert "port 10005 is used by" in await ops.page.inner_text("#refusal")
        await ops.page.fill("input[name='s1.port']", "10010")
        await ops.page.fill("input[name='limits.memory']", "lots")
        await save(ops)
        assert "limits.memory" in await ops.page.inner_text("#refusal")
        # the console's own checks: a number that is not one
        await ops.page.fill("input[name='limits.memory']", "256Mi")
        await ops.page.fill("input[name='s0.thread']", "five")
        await save(ops)
        assert "HelloObj thread: 'five' is not a whole number" in await ops.page.inner_text("#refusal")
        assert await ops.page.input_value("input[name='s0.thread']") == "five"  # what was typed, shown again
        assert await ops.page.input_value("input[name='limits.memory']") == "256Mi"
        await ops.page.fill("input[name='s0.thread']", "5")
        await ops.page.fill("#tars-options input[name=asyncThread]", "99")  # the CRD allows 0..50
        await save(ops)
        assert "asyncThread" in await ops.page.inner_text("#refusal")
        assert await spec(kube, namespace) == before
        # Someone else saved meanwhile: a save from the older form is refused, not overwritten
        await ops.goto(PAGE)
        token, version = await ops.csrf(), await ops.page.input_value("input[name=resourceVersion]")
        await kube.merge_patch(TSERVER, namespace, "test-helloserver", {"spec": {"k8s": {"replicas": 4}}})
        stale = {"_csrf": token, "resourceVersion": version, "replicas": "1", "s0.name": "HelloObj",
                 "s0.port": "10005", "s0.isTars": "on"}  # fmt: skip
        assert await ops.forge("/servers/test-helloserver/edit", stale) == 422
        assert (await spec(kube, namespace))["k8s"]["replicas"] == 4

        # Create a server: the webhook refuses the node servant's port, then it is made with another
        await ops.goto("/")
        await ops.page.click("#new-server-link")
        await ops.page.wait_for_load_state()
        form = {"app": "Test", "server": "NewServer", "s0.name": "NewObj", "s0.port": "19385"}
        for field, value in form.items():
            await ops.page.fill(f"#new-server input[name='{field}']", value)
        await ops.page.select_option("#new-server select[name=template]", "tars.cpp")
        await ops.page.click("#new-server button")
        await ops.page.wait_for_load_state()
        assert "reserved" in await ops.page.inner_text("#refusal")
        assert await kube.get(TSERVER, namespace, "test-newserver") is None
        assert await ops.page.input_value("#new-server input[name=server]") == "NewServer"  # what was typed
        await ops.page.fill("#new-server input[name='s0.port']", "10100")
        await ops.page.click("#new-server button")
        await ops.page.wait_for_load_state()
        assert "created" in await ops.page.inner_text("main")
        s = await spec(kube, namespace, "test-newserver")
        assert (s["app"], s["server"], s["tars"]["template"]) == ("Test", "NewServer", "tars.cpp")
        assert [(v["name"], v["port"], v["isTars"]) for v in s["tars"]["servants"]] == [("NewObj", 10100, True)]

        # Roles: an operator of Test creates nothing in Pay; a developer edits and creates nothing
        token = await ops.csrf()
        pay = {"_csrf": token, "app": "Pay", "server": "Evil", "subType": "normal", "s0.name": "p", "s0.port": "80"}
        assert await ops.forge("/new-server", pay) == 403
        assert await ops.forge("/new-server", {**pay, "_csrf": ""}) == 403  # no CSRF token
        await dev.login("dev", "dev-pass")
        await dev.goto("/servers/test-helloserver")
        assert await dev.page.locator("#edit-link").count() == 0
        assert await dev.page.locator("#new-server-link").count() == 0
        assert (await dev.goto(PAGE)).status == 403
        dev_token = await dev.csrf()
        edit = {"_csrf": dev_token, "replicas": "9", "s0.name": "HelloObj", "s0.port": "10005"}
        assert await dev.forge(PAGE, edit) == 403
        assert await dev.forge("/new-server", {**pay, "_csrf": dev_token}) == 403
        assert await dev.forge("/new-server", {**pay, "_csrf": dev_token, "app": "Test"}) == 403
        assert (await spec(kube, namespace))["k8s"]["replicas"] == 4
        assert await kube.get(TSERVER, namespace, "pay-evil") is None
        ops.assert_clean("status of 422")
        dev.assert_clean("status of 403")
