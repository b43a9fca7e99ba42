"""Release and rollback (TImage releases -> TServer spec.release) and configs (versions, history, diff, rollback by
activation, the operator deactivating what an activation supersedes), each action's role checked."""

from __future__ import annotations

from typing import Any

from helpers import Browser, add_account, until
from test_servers import tserver

from k8stars.kube.client import Kube, Obj
from k8stars.kube.resources import TCONFIG, TIMAGE, TSERVER


def timage(name: str, *ids: str) -> Obj:
    releases = [{"id": i, "image": f"registry.example.com/tars/test.helloserver:{i}", "createPerson": "ci",
                 "createTime": "2026-01-01T10:00:00Z", "mark": f"build {i}"} for i in ids]  # fmt: skip
    return {"apiVersion": TIMAGE.api_version, "kind": "TImage", "metadata": {"name": name}, "imageType": "server",
            "releases": releases}  # fmt: skip


async def release_id(kube: Kube, namespace: str) -> str:
    ts = await kube.get(TSERVER, namespace, "test-helloserver")
    assert ts is not None
    return str(ts["spec"]["release"]["id"])


async def test_publish_and_rollback(kube: Kube, namespace: str, console: str, browser: Any) -> None:
    await kube.create(TSERVER, namespace, tserver("Test", "HelloServer"))
    await kube.create(TIMAGE, namespace, timage("test-helloserver", "v3", "v2", "v20260101-1"))
    await add_account(kube, namespace, "ops", "ops-pass", ("operator", "Test"))
    await add_account(kube, namespace, "dev", "dev-pass", ("developer", "Test"))
    ops, dev = await Browser.open(browser, console), await Browser.open(browser, console)
    ops.page.on("dialog", lambda d: d.accept())
    try:
        await ops.login("ops", "ops-pass")
        await ops.goto("/servers/test-helloserver/releases")
        assert await ops.page.inner_text("#current") == "v20260101-1"
        await ops.page.click("tr.release[data-id=v3] button")  # publish the newest
        await ops.page.wait_for_load_state()
        assert "release v3 published" in await ops.page.inner_text("main")
        assert await release_id(kube, namespace) == "v3"
        ts = await kube.get(TSERVER, namespace, "test-helloserver")
        assert ts is not None and ts["spec"]["release"]["image"].endswith(":v3")
        await ops.shot("releases.png")
        await ops.page.click("tr.release[data-id=v2] button")  # roll back
        await ops.page.wait_for_load_state()
        assert await release_id(kube, namespace) == "v2"
        assert await ops.page.inner_text("#current") == "v2"
        # A developer has no publish button; forged publishes (its token, or none) are refused.
        await dev.login("dev", "dev-pass")
        await dev.goto("/servers/test-helloserver/releases")
        assert await dev.page.locator("tr.release button").count() == 0
        assert await dev.forge("/servers/test-helloserver/publish", {"_csrf": await dev.csrf(), "id": "v3"}) == 403
        assert await ops.forge("/servers/test-helloserver/publish", {"id": "v3"}) == 403
        assert await release_id(kube, namespace) == "v2"
        ops.assert_clean()
        dev.assert_clean()
    finally:
        await ops.close()
        await dev.close()


async def versions(kube: Kube, namespace: str, config_name: str, pod: str = "m") -> dict[str, bool]:
    """Content -> activated of the versions of one file at one level."""
    items = (await kube.list(TCONFIG, namespace)).get("items") or []
    return {str(t["configContent"]).strip(): bool(t.get("activated")) for t in items
            if t["configName"] == config_name and t["podSeq"] == pod}  # fmt: skip


async def new_version(b: Browser, name: str, content: str, reason: str, pod: str = "m") -> None:
    await b.page.fill("#new-config input[name=configName]", name)
    if await b.page.locator("#new-config input[name=podSeq]").count():
        await b.page.fill("#new-config input[name=podSeq]", pod)
    await b.page.fill("#new-config textarea[name=content]", content)
    await b.page.fill("#new-config input[name=reason]", reason)
    await b.page.click("#new-config button")
    await b.page.wait_for_load_state()


async def test_configs_history_and_rollback(kube: Kube, namespace: str, operator: None, console: str,
                                            browser: Any) -> None:  # fmt: skip
    await kube.create(TSERVER, namespace, tserver("Test", "HelloServer", replicas=0))
    await add_account(kube, namespace, "dev", "dev-pass", ("developer", "Test"))
    await add_account(kube, namespace, "other", "other-pass", ("developer", "Pay"))
    dev, other = await Browser.open(browser, console), await Browser.open(browser, console)
    dev.page.on("dialog", lambda d: d.accept())
    try:
        await dev.login("dev", "dev-pass")
        await dev.goto("/servers/test-helloserver/configs")
        await new_version(dev, "hello.conf", "<hello>\n  greeting=hello\n</hello>", "first version")
        assert "activated" in await dev.page.inner_text("main")
        assert await versions(kube, namespace, "hello.conf") == {"<hello>\n  greeting=hello\n</hello>": True}
        await new_version(dev, "hello.conf", "<hello>\n  greeting=bonjour\n</hello>", "in French")
        # The operator deactivates the version the new one supersedes.
        want = {"<hello>\n  greeting=hello\n</hello>": False, "<hello>\n  greeting=bonjour\n</hello>": True}
        await until(lambda: _equal(versions(kube, namespace, "hello.conf"), want), what="the first deactivated")
        await new_version(dev, "hello.conf", "<hello>\n  greeting=hi from pod 1\n</hello>", "pod 1", pod="1")
        (tc,) = [t for t in (await kube.list(TCONFIG, namespace))["items"] if t["podSeq"] == "1"]
        assert tc["app"] == "Test" and tc["server"] == "HelloServer" and tc["updatePerson"] == "dev"
        assert tc["metadata"]["labels"]["tars.io/PodSeq"] == "1"
        # The history, with the diff against the activated version, shows; roll back to the first.
        await dev.goto("/servers/test-helloserver/configs")
        await dev.page.wait_for_selector("section.config[data-pod=m] tr.version:not(.current)")
        diff = str(await dev.page.text_content("section.config[data-pod=m] tr.version:not(.current) pre.diff"))
        assert "-  greeting=bonjour" in diff and "+  greeting=hello" in diff
        await dev.page.click("section.config[data-pod=m] tr.version:not(.current) details summary")
        await dev.shot("configs.png")
        await dev.page.click("section.config[data-pod=m] tr.version:not(.current) form button")
        await dev.page.wait_for_load_state()
        back = {"<hello>\n  greeting=hello\n</hello>": True, "<hello>\n  greeting=bonjour\n</hello>": False}
        await until(lambda: _equal(versions(kube, namespace, "hello.conf"), back), what="the rollback")
        # App-level configs live on the app's page.
        await dev.goto("/apps/Test/configs")
        await new_version(dev, "shared.conf", "x=1", "app level")
        (shared,) = [t for t in (await kube.list(TCONFIG, namespace))["items"] if t["configName"] == "shared.conf"]
        assert shared["server"] == "" and shared["podSeq"] == "m"
        # A large file (beyond aiohttp's default 1 MiB body) within the TConfig limit.
        big = {"_csrf": await dev.csrf(), "configName": "big.conf", "content": "x" * 1_200_000, "podSeq": "m"}
        assert await dev.forge("/apps/Test/configs", big) == 303
        assert len(next(iter(await versions(kube, namespace, "big.conf")))) == 1_200_000
        # A developer of another app: 404 for the page, and a forged version is refused; nothing created.
        await other.login("other", "other-pass")
        assert (await other.goto("/servers/test-helloserver/configs")).status == 404
        form = {"_csrf": await other.csrf(), "configName": "evil.conf", "content": "x", "podSeq": "m"}
        assert await other.forge("/servers/test-helloserver/configs", form) == 404
        assert await other.forge("/apps/Test/configs", form) == 404
        assert await dev.forge("/apps/Test/configs", {**form, "_csrf": "forged"}) == 403
        assert await versions(kube, namespace, "evil.conf") == {}
        dev.assert_clean()
        other.assert_clean("status of 404")
    finally:
        await dev.close()
        await other.close()


async def _equal(got: Any, want: dict[str, bool]) -> bool:
    return bool(await got == want)
