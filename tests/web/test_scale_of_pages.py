"""The issue's budgets: every page works with 200 servers (its render time is printed, never asserted: speed
goals live in bench/, not in timed tests); under 150 KB of JS."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from helpers import Browser, add_account
from test_servers import tserver

import k8stars.web
from k8stars.kube.client import Kube
from k8stars.kube.resources import TSERVER

SERVERS = 200


def test_javascript_is_small() -> None:
    static = Path(k8stars.web.__file__).parent / "static"
    assert sum(p.stat().st_size for p in static.glob("*.js")) < 150 * 1024


async def test_pages_with_200_servers(kube: Kube, namespace: str, console: str, browser: Any) -> None:
    sem = asyncio.Semaphore(8)  # bounded concurrency against the apiserver

    async def one(i: int) -> None:
        async with sem:
            await kube.create(TSERVER, namespace, tserver(f"App{i % 20}", f"Server{i}"))

    await asyncio.gather(*(one(i) for i in range(SERVERS)))
    await add_account(kube, namespace, "admin", "admin-pass", ("admin", "*"))
    b = await Browser.open(browser, console)
    try:
        await b.login("admin", "admin-pass")
        assert await b.page.locator("tr.server").count() == SERVERS
        for path in ("/", "/?q=server1", "/servers/app3-server3", "/servers/app3-server3/configs", "/accounts"):
            best = float("inf")
            for _ in range(3):  # the best of three, printed: a shared CI machine has hiccups
                start = time.perf_counter()
                response = await b.goto(path)
                best = min(best, time.perf_counter() - start)
                assert response.status == 200
            print(f"{path}: best of 3 {best * 1000:.0f} ms with {SERVERS} servers (goal 300 ms)")
        b.assert_clean()
    finally:
        await b.close()
