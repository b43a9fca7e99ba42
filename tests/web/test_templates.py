"""TTemplates: the list, each template's merged view (its chain of parents), admins creating and editing them, the
server page's merged config template (profile included); others refused, forged POSTs change nothing."""

from __future__ import annotations

from typing import Any

import yaml  # type: ignore[import-untyped,unused-ignore]
from helpers import Browser, add_account
from test_servers import tserver

from k8stars.kube.client import Kube
from k8stars.kube.resources import TSERVER, TTEMPLATE
from tests.conftest import ROOT

TEMPLATES = [d for d in yaml.safe_load_all((ROOT / "examples" / "k8s" / "ttemplate.yaml").read_text()) if d]


def server_line(line: str) -> str:
    """A template or profile setting one line of <tars><application><server>."""
    return f"<tars>\n  <application>\n    <server>\n      {line}\n    </server>\n  </application>\n</tars>\n"


async def test_templates_merged_view_and_edits(kube: Kube, namespace: str, console: str, browser: Any) -> None:
    for doc in TEMPLATES:
        await kube.create(TTEMPLATE, namespace, doc)
    ts = tserver("Test", "HelloServer")
    ts["spec"]["tars"]["profile"] = (
        "<tars>\n  <application>\n    <server>\n      mine=profile\n    </server>\n  </application>\n</tars>\n"
    )
    await kube.create(TSERVER, namespace, ts)
    await add_account(kube, namespace, "admin", "admin-pass", ("admin", "*"))
    await add_account(kube, namespace, "dev", "dev-pass", ("developer", "Test"))
    admin, dev = await Browser.open(browser, console), await Browser.open(browser, console)
    try:
        await admin.login("admin", "admin-pass")
        await admin.goto("/templates")
        assert await admin.page.locator("tr.template").count() == len(TEMPLATES)
        await admin.page.fill("#new-template input[name=name]", "tars.mine")
        await admin.page.select_option("#new-template select[name=parent]", "tars.cpp")
        await admin.page.fill("#new-template textarea[name=content]", server_line("mine=1"))
        await admin.page.click("#new-template button")
        await admin.page.wait_for_load_state()
        tt = await kube.get(TTEMPLATE, namespace, "tars.mine")
        assert tt is not None and tt["spec"]["parent"] == "tars.cpp" and "mine=1" in tt["spec"]["content"]
        assert admin.page.url.endswith("/templates/tars.mine")
        merged = await admin.page.inner_text("#merged")
        assert "mine=1" in merged and "${locator}" in merged  # its own line over tars.cpp over tars.default
        assert "tars.default → tars.cpp → tars.mine" in await admin.page.inner_text("main")
        content = await admin.page.input_value("#edit-template textarea")
        await admin.page.fill("#edit-template textarea", content.replace("mine=1", "mine=2"))
        await admin.page.click("#edit-template button")
        await admin.page.wait_for_load_state()
        tt = await kube.get(TTEMPLATE, namespace, "tars.mine")
        assert tt is not None and "mine=2" in tt["spec"]["content"]
        await admin.shot("templates.png")
        # The server page: its template merged, the profile last.
        await admin.goto("/servers/test-helloserver")
        merged = str(await admin.page.text_content("#template pre"))
        assert "mine=profile" in merged and "${locator}" in merged
        # A developer reads templates, edits none.
        await dev.login("dev", "dev-pass")
        await dev.goto("/templates/tars.mine")
        assert await dev.page.locator("#edit-template").count() == 0
        assert "mine=2" in await dev.page.inner_text("#content")
        token = await dev.csrf()
        assert await dev.forge("/templates/tars.mine", {"_csrf": token, "content": "evil"}) == 403
        assert await dev.forge("/templates", {"_csrf": token, "name": "tars.evil", "content": "x"}) == 403
        assert await admin.forge("/templates/tars.mine", {"content": "evil"}) == 403  # no CSRF token
        tt = await kube.get(TTEMPLATE, namespace, "tars.mine")
        assert tt is not None and "mine=2" in tt["spec"]["content"]
        assert await kube.get(TTEMPLATE, namespace, "tars.evil") is None
        admin.assert_clean()
        dev.assert_clean()
    finally:
        await admin.close()
        await dev.close()
