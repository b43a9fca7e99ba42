"""API tokens (TAccount spec.authentication.tokens): made on the account page, shown once; a script with one acts
with the account's roles and needs no CSRF token; unknown, expired and deleted tokens are refused."""

from __future__ import annotations

from typing import Any

import aiohttp
from helpers import Browser, add_account
from test_servers import replicas, tserver

from k8stars.kube.client import Kube
from k8stars.kube.resources import TACCOUNT, TSERVER
from k8stars.web.accounts import object_name


async def scale(base: str, token: str, to: int) -> int:
    async with aiohttp.ClientSession() as http:
        url = f"{base}/servers/test-helloserver/scale"
        headers = {"Authorization": f"Bearer {token}"}
        async with http.post(url, data={"replicas": str(to)}, headers=headers, allow_redirects=False) as r:
            return r.status


async def test_api_tokens(kube: Kube, namespace: str, console: str, browser: Any) -> None:
    await kube.create(TSERVER, namespace, tserver("Test", "HelloServer"))
    await add_account(kube, namespace, "ops", "ops-pass", ("operator", "Test"))
    await add_account(kube, namespace, "dev", "dev-pass", ("developer", "Test"))
    b = await Browser.open(browser, console)
    b.page.on("dialog", lambda d: d.accept())
    try:
        await b.login("ops", "ops-pass")
        await b.goto("/password")
        await b.page.fill("#new-token input[name=name]", "ci")
        await b.page.fill("#new-token input[name=days]", "7")
        await b.page.click("#new-token button")
        await b.page.wait_for_load_state()
        token = (await b.page.inner_text("#token")).strip()
        account = await kube.get(TACCOUNT, namespace, object_name("ops"))
        assert account is not None
        (entry,) = account["spec"]["authentication"]["tokens"]
        assert entry["name"] == "ci" and entry["content"] == token and entry["valid"] is True
        assert all(token not in c["value"] for c in await b.context.cookies())  # shown, never kept in the cookie
        # A script: the token's roles, no CSRF token needed.
        assert await scale(console, token, 3) == 303
        assert await replicas(kube, namespace, "test-helloserver") == 3
        assert await scale(console, "not-a-token", 4) == 401
        # A developer's token cannot scale.
        dev = await kube.get(TACCOUNT, namespace, object_name("dev"))
        assert dev is not None
        expired = {"name": "old", "content": "expired-token-content", "expirationTime": "2020-01-01T00:00:00Z"}
        live = {"name": "dev", "content": "dev-token-content-0123456789", "expirationTime": "2099-01-01T00:00:00Z"}
        await kube.merge_patch(TACCOUNT, namespace, object_name("dev"),
                               {"spec": {"authentication": {"tokens": [expired, live]}}})  # fmt: skip
        assert await scale(console, "dev-token-content-0123456789", 4) == 403
        assert await scale(console, "expired-token-content", 4) == 401
        # Deleted on the account page: refused from then on.
        await b.goto("/password")
        await b.page.click("tr.token[data-name=ci] button")
        await b.page.wait_for_load_state()
        assert "token ci deleted" in await b.page.inner_text("main")
        assert await scale(console, token, 5) == 401
        assert await replicas(kube, namespace, "test-helloserver") == 3
        b.assert_clean()
    finally:
        await b.close()
