"""Events and pod history of a server (Events, TExitedRecord), and accounts (admins only: create, roles, password
reset, delete), with forged POSTs refused."""

from __future__ import annotations

from typing import Any

from helpers import Browser, add_account
from test_servers import tserver

from k8stars.kube.accounts import check_password
from k8stars.kube.client import Kube
from k8stars.kube.resources import TACCOUNT, TEXITEDRECORD, TSERVER
from k8stars.web.accounts import object_name
from k8stars.web.pages.events import EVENT


def event(namespace: str, name: str, pod: str, reason: str, message: str, kind: str = "Warning") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Event", "metadata": {"name": name}, "type": kind, "reason": reason,
            "message": message, "count": 1, "lastTimestamp": "2026-01-02T03:04:05Z",
            "involvedObject": {"kind": "Pod", "name": pod, "apiVersion": "v1", "namespace": namespace}}  # fmt: skip


async def test_events_and_exited_pods(kube: Kube, namespace: str, console: str, browser: Any) -> None:
    await kube.create(TSERVER, namespace, tserver("Test", "HelloServer"))
    mine = event(namespace, "e1", "test-helloserver-0", "BackOff", "<b>restarting</b> failed")
    await kube.create(EVENT, namespace, mine)
    await kube.create(EVENT, namespace, event(namespace, "e2", "other-server-0", "Other", "not ours"))
    record = {"apiVersion": TEXITEDRECORD.api_version, "kind": "TExitedRecord",
              "metadata": {"name": "test-helloserver"}, "app": "Test", "server": "HelloServer",
              "pods": [{"uid": "u1", "name": "test-helloserver-0", "id": "v1", "nodeIP": "10.0.0.9",
                        "podIP": "10.1.0.7", "createTime": "2026-01-01T00:00:00Z",
                        "deleteTime": "2026-01-02T00:00:00Z"}]}  # fmt: skip
    await kube.create(TEXITEDRECORD, namespace, record)
    await add_account(kube, namespace, "dev", "dev-pass", ("developer", "Test.HelloServer"))
    b = await Browser.open(browser, console)
    try:
        await b.login("dev", "dev-pass")
        await b.goto("/servers/test-helloserver/events")
        text = await b.page.inner_text("#events")
        assert "BackOff" in text and "<b>restarting</b> failed" in text  # escaped: shown as text
        assert "not ours" not in text
        assert await b.page.locator("#events b").count() == 0
        exited = await b.page.inner_text("#exited")
        assert "10.1.0.7" in exited and "10.0.0.9" in exited
        await b.shot("events.png")
        b.assert_clean()
    finally:
        await b.close()


async def test_accounts_admin_only(kube: Kube, namespace: str, console: str, browser: Any) -> None:
    await add_account(kube, namespace, "admin", "admin-pass", ("admin", "*"))
    await add_account(kube, namespace, "ops", "ops-pass", ("operator", "Test"))
    admin, ops, fresh = [await Browser.open(browser, console) for _ in range(3)]
    admin.page.on("dialog", lambda d: d.accept())
    try:
        await admin.login("admin", "admin-pass")
        await admin.goto("/accounts")
        await admin.page.fill("#new-account input[name=username]", "alice")
        await admin.page.fill("#new-account input[name=password]", "alice-initial")
        await admin.page.select_option("#new-account select[name=role]", "developer")
        await admin.page.fill("#new-account input[name=flag]", "Test.HelloServer")
        await admin.page.click("#new-account button")
        await admin.page.wait_for_load_state()
        assert "account alice created" in await admin.page.inner_text("main")
        alice = await kube.get(TACCOUNT, namespace, object_name("alice"))
        assert alice is not None
        assert alice["spec"]["authorization"][0]["role"] == "developer"
        assert alice["spec"]["authorization"][0]["flag"] == "Test.HelloServer"
        assert alice["spec"]["authentication"]["activated"] is False
        assert check_password("alice-initial", alice["spec"]["authentication"]["bcryptPassword"])
        assert "alice-initial" not in await admin.page.content()
        # Roles, one "role scope" a line.
        row = "tr.account[data-user=alice]"
        await admin.page.fill(f"{row} textarea[name=roles]", "developer Test.HelloServer\noperator Pay")
        await admin.page.click(f"{row} form.roles button")
        await admin.page.wait_for_load_state()
        alice = await kube.get(TACCOUNT, namespace, object_name("alice"))
        assert alice is not None
        assert [(g["role"], g["flag"]) for g in alice["spec"]["authorization"]] == [
            ("developer", "Test.HelloServer"), ("operator", "Pay")]  # fmt: skip
        await admin.shot("accounts.png")
        # A forgotten password: the admin sets an initial one, its owner chooses a new one at the next login.
        await admin.page.fill(f"{row} input[name=password]", "alice-again")
        await admin.page.click(f"{row} form.reset button")
        await admin.page.wait_for_load_state()
        await fresh.login("alice", "alice-again")
        assert fresh.page.url.endswith("/password")
        # An operator: no accounts page, no menu entry, and forged account POSTs are refused, nothing changed.
        await ops.login("ops", "ops-pass")
        assert await ops.page.locator("header a[href='/accounts']").count() == 0
        assert (await ops.goto("/accounts")).status == 403
        token = await ops.csrf()
        create = {"_csrf": token, "username": "mallory", "password": "mallory-pw", "role": "admin", "flag": "*"}
        assert await ops.forge("/accounts", create) == 403
        assert await ops.forge(f"/accounts/{object_name('ops')}/roles", {"_csrf": token, "roles": "admin *"}) == 403
        assert await admin.forge("/accounts", {**create, "_csrf": ""}) == 403  # the admin, without the token
        assert await kube.get(TACCOUNT, namespace, object_name("mallory")) is None
        ops_account = await kube.get(TACCOUNT, namespace, object_name("ops"))
        assert ops_account is not None and ops_account["spec"]["authorization"][0]["role"] == "operator"
        # Delete.
        await admin.goto("/accounts")
        await admin.page.click("tr.account[data-user=alice] button.danger")
        await admin.page.wait_for_load_state()
        assert await kube.get(TACCOUNT, namespace, object_name("alice")) is None
        admin.assert_clean()
        ops.assert_clean("status of 403")
    finally:
        for b in (admin, ops, fresh):
            await b.close()
