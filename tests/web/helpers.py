"""What the console tests share: accounts, logging in through the browser, clean-console checks, screenshots."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from k8stars.kube.accounts import hash_password
from k8stars.kube.client import Kube, Obj
from k8stars.kube.resources import TACCOUNT
from k8stars.testing.cluster import Cluster
from k8stars.web.accounts import object_name
from k8stars.web.service import WebOptions, WebService

IMG = Path(__file__).resolve().parents[2] / "docs" / "img"


@contextlib.asynccontextmanager
async def web_console(cluster: Cluster, namespace: str, **options: Any) -> AsyncIterator[str]:
    """``k8stars web`` (the service itself, in the test's loop) over ``namespace``, with more ``WebOptions``; yields
    its base URL."""
    service = WebService(WebOptions(namespace=namespace, kubeconfig=str(cluster.kubeconfig), port=0, **options))
    await service.start()
    try:
        yield f"http://127.0.0.1:{service.port}"
    finally:
        await service.stop()


async def add_account(kube: Kube, namespace: str, username: str, password: str, *grants: tuple[str, str],
                      activated: bool = True) -> Obj:  # fmt: skip
    body = {
        "apiVersion": TACCOUNT.api_version, "kind": "TAccount", "metadata": {"name": object_name(username)},
        "spec": {"username": username,
                 "authentication": {"bcryptPassword": hash_password(password), "activated": activated},
                 "authorization": [{"role": r, "flag": f} for r, f in grants]},
    }  # fmt: skip
    created: Obj = await kube.create(TACCOUNT, namespace, body)
    return created


class Browser:
    """One browser context (its own cookies) on the console, recording JS errors and failed loads."""

    def __init__(self, context: Any, page: Any, base: str) -> None:
        self.context, self.page, self.base = context, page, base
        self.errors: list[str] = []
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        page.on("console", lambda m: m.type == "error" and self.errors.append(f"console: {m.text}"))

    @classmethod
    async def open(cls, browser: Any, base: str) -> Browser:
        context = await browser.new_context(timezone_id="UTC", locale="en-US", viewport={"width": 1000, "height": 620})
        return cls(context, await context.new_page(), base)

    async def goto(self, path: str) -> Any:
        return await self.page.goto(self.base + path)

    async def login(self, username: str, password: str) -> None:
        await self.goto("/login")
        await self.page.fill("input[name=username]", username)
        await self.page.fill("input[name=password]", password)
        await self.page.click("#login button[type=submit]")
        await self.page.wait_for_load_state()

    async def csrf(self) -> str:
        return str(await self.page.locator("input[name=_csrf]").first.get_attribute("value"))

    async def forge(self, path: str, form: dict[str, str]) -> int:
        """A POST outside the pages, with this context's cookie: the status the console answers."""
        response = await self.context.request.post(self.base + path, form=form, max_redirects=0)
        return int(response.status)

    async def shot(self, name: str) -> None:
        """A screenshot for the docs: written to docs/img/ when missing or with K8STARS_WEB_SCREENSHOTS=1 (so a
        test run leaves the tracked images alone), else only taken."""
        if os.environ.get("K8STARS_WEB_SCREENSHOTS") == "1" or not (IMG / name).exists():
            IMG.mkdir(parents=True, exist_ok=True)
            await self.page.screenshot(path=str(IMG / name))
        else:
            await self.page.screenshot()

    def assert_clean(self, *allowed: str) -> None:
        """No JS error and no failed load, except messages containing one of ``allowed``."""
        left = [e for e in self.errors if not any(a in e for a in allowed)]
        assert not left, left

    async def close(self) -> None:
        await self.context.close()


async def until(probe: Callable[[], Awaitable[Any]], timeout: float = 20.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")
