"""The Commands page in a real Chromium: an operator sends tars.viewstatus to every pod and tars.setloglevel to one,
and sees each pod's own reply, which came from the server's AdminObj through `k8stars adminreg` (found through the
registry) and the pods' node servants (tarscli agents on the kwok pods' 127.64.x IPs); a developer sees no form and
a forged POST is refused, as is one without the CSRF token."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import Browser, add_account, web_console
from test_servers import tserver

from k8stars.kube.client import Kube
from k8stars.kube.resources import TSERVER
from k8stars.testing.cluster import Cluster
from tests.services.adminreg_helpers import APP, SERVER, Pod, RegistryProc, adminreg, agents, kwok_pods
from tests.tarscli.tarscli_helpers import pods, registry

__all__ = ["pods", "registry"]  # fixtures
NAME = "testapp-helloserver"


@pytest.fixture
async def console_with_locator(k8s_cluster: Cluster, namespace: str, registry: RegistryProc) -> AsyncIterator[str]:
    async with web_console(k8s_cluster, namespace, locator=registry.locator) as url:
        yield url


async def test_commands_reach_every_pod_and_one(
    k8s_cluster: Cluster, kube: Kube, namespace: str, registry: RegistryProc, pods: Callable[..., Pod],
    console_with_locator: str, browser: Any, tmp_path: Path,
) -> None:  # fmt: skip
    await kube.create(TSERVER, namespace, tserver(APP, SERVER, replicas=0))
    items = await kwok_pods(kube, namespace, 2)
    names = [str(p["metadata"]["name"]) for p in items]
    running = agents(pods, registry, items, TARS_NODE_TRUSTED_PEERS="none")
    for pod in running:
        await pod.wait_state("active")
    await add_account(kube, namespace, "ops", "secret-ops", ("operator", f"{APP}.{SERVER}"))
    await add_account(kube, namespace, "dev", "secret-dev", ("developer", APP))
    async with adminreg(tmp_path, registry, k8s_cluster, namespace):
        ops = await Browser.open(browser, console_with_locator)
        await ops.login("ops", "secret-ops")
        await ops.goto(f"/servers/{NAME}")
        await ops.page.click("nav.tabs >> text=Commands")
        await ops.page.check("input[value='tars.viewstatus']")
        await ops.page.click("#command-send")
        await ops.page.wait_for_selector("#replies")
        rows = ops.page.locator("#replies tr.reply")
        assert [await r.get_attribute("data-pod") for r in await rows.all()] == names
        for r in await rows.all():
            assert "TestApp.HelloServer" in await r.inner_text() and "ok" in await r.locator("td").nth(1).inner_text()

        await ops.page.select_option("#command-pod", names[1])
        await ops.page.check("input[value='tars.setloglevel']")
        await ops.page.select_option("#command-level", "ERROR")
        await ops.page.click("#command-send")
        await ops.page.wait_for_selector("#replies")
        (row,) = await ops.page.locator("#replies tr.reply").all()
        assert await row.get_attribute("data-pod") == names[1]
        assert "ok" in await row.locator("td").nth(1).inner_text(), await row.inner_text()
        await ops.shot("web-commands.png")

        await ops.page.check("input[value='custom']")
        await ops.page.fill("#command-custom", "no.such.command")
        await ops.page.select_option("#command-pod", names[0])
        await ops.page.click("#command-send")
        await ops.page.wait_for_selector("#replies")
        assert await ops.page.locator("#replies tr.reply").count() == 1  # the server's own answer, shown as is

        csrf = await ops.csrf()
        assert await ops.forge(f"/servers/{NAME}/commands", {"command": "tars.viewstatus"}) == 403  # no CSRF token
        await ops.page.check("input[value='tars.loadconfig']")
        await ops.page.fill("#command-file", "../etc/passwd")
        await ops.page.click("#command-send")
        assert "config file name" in await ops.page.locator("#command-error").inner_text()
        ops.assert_clean("400")

        dev = await Browser.open(browser, console_with_locator)
        await dev.login("dev", "secret-dev")
        await dev.goto(f"/servers/{NAME}/commands")
        assert await dev.page.locator("#command-form").count() == 0
        assert "operator role" in await dev.page.locator("#command-role").inner_text()
        forged = await dev.forge(f"/servers/{NAME}/commands", {"_csrf": await dev.csrf(), "command": "tars.viewstatus"})
        assert forged == 403 and csrf
        dev.assert_clean()
        await ops.close()
        await dev.close()
