"""The logs page: remote log files that a real LogF client sent to `k8stars log` are listed and tailed through the
log service's files view, closed by a bearer token both sides read from a file (`--http-token-file`,
`--log-token-file`; rotated in the file, taken by both); a console without the token is refused and says so; names
are untrusted (a traversal, a planted symlink, another server's file: refused, nothing outside shown). A server
of a set division writes under ``<app>/<set>/<server>/``: its files are listed with their set and tailed. Pod logs come
from the Kubernetes API (pods/log): kwok's fake nodes serve none, so here the page offers the server's pods and
refuses a pod of another server."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from helpers import Browser, add_account, until, web_console
from test_servers import add_tree

from k8stars.kube.client import ApiException, Kube
from k8stars.kube.resources import POD
from k8stars.services.log.app import LOG_OBJ, LogService, LogServiceOptions
from k8stars.tars.protocol.logf import LogInfo, LogProxy
from k8stars.tars.rpc import Communicator
from k8stars.testing.cluster import Cluster

PAGE = "/servers/test-helloserver/logs"
SECRET = "secret-outside-the-log-dir"
TOKEN, ROTATED = "the-log-token-4Fz8", "the-rotated-log-token-Qe1"


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    """What the chart mounts from Secret tars-log-token into both pods."""
    path = tmp_path / "tars-log-token" / "token"
    path.parent.mkdir()
    path.write_text(TOKEN + "\n")
    return path


@pytest.fixture
async def log_service(tmp_path: Path, token_file: Path) -> AsyncIterator[LogService]:
    svc = LogService(LogServiceOptions(log_dir=str(tmp_path / "logs"), endpoint="tcp -h 127.0.0.1 -p 0 -t 60000",
                                       http_port=0, http_token_file=str(token_file)))  # fmt: skip
    await svc.start()
    try:
        yield svc
    finally:
        await svc.stop()


def console(k8s_cluster: Cluster, namespace: str, log_service: LogService, **options: Any
            ) -> contextlib.AbstractAsyncContextManager[str]:  # fmt: skip
    return web_console(k8s_cluster, namespace, log_url=f"http://127.0.0.1:{log_service.http_port}", **options)


@pytest.fixture
async def log_console(k8s_cluster: Cluster, namespace: str, log_service: LogService, token_file: Path
                      ) -> AsyncIterator[str]:  # fmt: skip
    async with console(k8s_cluster, namespace, log_service, log_token_file=str(token_file)) as url:
        yield url


async def test_logs_page(kube: Kube, namespace: str, operator: None, log_service: LogService, log_console: str,
                         browser: Any, tmp_path: Path, token_file: Path) -> None:  # fmt: skip
    await add_tree(kube, namespace)
    await add_account(kube, namespace, "dev", "dev-pass", ("developer", "Test.HelloServer"))
    async with Communicator() as comm:
        logf = comm.string_to_proxy(LogProxy, f"{LOG_OBJ}@{log_service.endpoint}")
        await logf.logger("Test", "HelloServer", "", "%Y%m%d", [f"line {i}\n" for i in range(1, 301)])
        await logf.logger("Test", "CartServer", "", "%Y%m%d", ["cart only\n"])
        # A server of set gz.a.1 writes under Test/gza1/HelloServer/, as TarsFramework's log service lays it out
        set_info = LogInfo(appname="Test", servername="HelloServer", sFilename="biz", sFormat="%Y%m%d",
                           setdivision="gz.a.1", bHasSufix=True, bHasAppNamePrefix=True, sConcatStr="_")  # fmt: skip
        await logf.loggerbyInfo(set_info, ["from the set\n"])
    server_dir = tmp_path / "logs" / "Test" / "HelloServer"
    set_dir = tmp_path / "logs" / "Test" / "gza1" / "HelloServer"
    await until(lambda: _written(server_dir), what="the log file")
    await until(lambda: _written(set_dir), what="the set's log file")
    os.symlink(server_dir, tmp_path / "logs" / "Test" / "evilset")  # a planted set directory: never followed
    (tmp_path / "secret.txt").write_text(SECRET)
    os.symlink(tmp_path / "secret.txt", server_dir / "evil.log")  # planted: never followed
    (name,) = [p.name for p in server_dir.iterdir() if not p.is_symlink()]
    (set_name,) = [p.name for p in set_dir.iterdir()]
    os.utime(set_dir / set_name, (1e9, 1e9))  # older: listed after the server's own file
    b = await Browser.open(browser, log_console)
    try:
        await b.login("dev", "dev-pass")
        await b.goto(PAGE)
        rows = await b.page.locator("#files tr.file").all()
        assert [(await r.get_attribute("data-file"), await r.get_attribute("data-set")) for r in rows] == [
            (name, ""), (set_name, "gza1")]  # fmt: skip
        await b.page.click("#files tr.file[data-set='gza1'] a")
        await b.page.wait_for_load_state()
        assert (await b.page.inner_text("#file-tail")).strip().endswith("|from the set")  # the caller IP first
        await b.goto(PAGE)
        await b.page.click(f"#files tr.file[data-file='{name}'][data-set=''] a")
        await b.page.wait_for_load_state()
        tail = await b.page.inner_text("#file-tail")
        assert tail.rstrip().endswith("line 300") and "line 1\n" in tail
        await b.shot("logs.png")
        # The token rotated in its file (as the kubelet swaps a Secret in): both sides take the new one
        new = token_file.with_name(".new")
        new.write_text(ROTATED)
        os.replace(new, token_file)
        await b.goto(f"{PAGE}?file={name}")
        assert (await b.page.inner_text("#file-tail")).rstrip().endswith("line 300")
        assert await b.page.locator("#files-error").count() == 0
        # Untrusted names: the symlink, a traversal, another server's file; nothing outside is shown
        for bad in (
            "evil.log",
            "../../../secret.txt",
            "..",
            "../CartServer/" + name.replace("HelloServer", "CartServer"),
        ):
            response = await b.goto(f"{PAGE}?file={aiohttp.helpers.quote(bad, safe='')}")
            assert response.status == 200
            text = await b.page.inner_text("main")
            assert SECRET not in text and "cart only" not in text
            assert await b.page.locator("#files-error").count() == 1, bad
        for bad_set in ("evilset", "..", "../Test", "gza1/HelloServer"):  # a planted set dir, traversals
            response = await b.goto(f"{PAGE}?file={name}&set={aiohttp.helpers.quote(bad_set, safe='')}")
            assert response.status == 200
            assert "line 300" not in await b.page.inner_text("main")
            assert await b.page.locator("#files-error").count() == 1, bad_set
        base = f"http://127.0.0.1:{log_service.http_port}/api/logs"
        async with aiohttp.ClientSession() as http:  # the log service itself, asked directly: not without the token
            for token in ("", TOKEN):  # none, the old one
                async with http.get(f"{base}/Test/HelloServer/{name}", headers={"Authorization": f"Bearer {token}"}
                                    ) as r:  # fmt: skip
                    assert r.status == 401 and "line 300" not in await r.text()
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {ROTATED}"}) as http:  # with it
            async with http.get(f"{base}/Test/HelloServer") as r:
                assert [(f["name"], f["set"]) for f in (await r.json())["files"]] == [(name, ""), (set_name, "gza1")]
            async with http.get(f"{base}/Test/HelloServer/{set_name}", params={"set": "gza1"}) as r:
                assert (await r.text()).strip().endswith("|from the set")
            async with http.get(f"{base}/Test/HelloServer/{name}", params={"set": "evilset"}) as r:
                assert r.status in (403, 404) and "line 300" not in await r.text()  # ENOTDIR: not followed
            for path in ("Test/HelloServer/evil.log", "Test/HelloServer/..%2F..%2F..%2Fsecret.txt", "../x/y",
                         "Test/..%2F../x"):  # fmt: skip
                async with http.get(f"{base}/{path}") as r:
                    assert r.status in (400, 403, 404) and SECRET not in await r.text(), path
        # Pod logs: each pod of the server is offered (and its previous container's). Asking kwok's fake nodes for
        # one would send the apiserver to resolve a node name that exists nowhere, so the log itself is left to
        # the real-pod tier; a pod of another server is refused before any request.
        pod = "test-helloserver-0"
        await until(lambda: _pod_listed(b, pod), timeout=30, what="the server's pod")
        assert await b.page.locator(f"#pod-logs a[href='?pod={pod}&previous=1']").count() == 1
        assert await kube.text("/healthz") == "ok"  # the console's plain-text GET, as sent
        with pytest.raises(ApiException) as refused:  # and the apiserver's refusal, with its message
            await kube.text(POD.path(namespace, "no-such-pod", "log"), {"tailLines": 5})
        assert refused.value.status == 404 and b"no-such-pod" in (refused.value.body or b"")
        await b.goto(f"{PAGE}?pod=test-cartserver-0")
        assert "is not a pod of Test.HelloServer" in await b.page.inner_text("#pod-log-error")
        # Roles: the developer of HelloServer sees no other server's logs
        assert (await b.goto("/servers/test-cartserver/logs")).status == 404
        b.assert_clean("status of 404")
    finally:
        await b.close()


async def test_a_console_without_the_token_is_refused(k8s_cluster: Cluster, kube: Kube, namespace: str,
                                                       log_service: LogService, browser: Any) -> None:  # fmt: skip
    await add_tree(kube, namespace)
    await add_account(kube, namespace, "dev", "dev-pass", ("developer", "Test.HelloServer"))
    async with Communicator() as comm:
        logf = comm.string_to_proxy(LogProxy, f"{LOG_OBJ}@{log_service.endpoint}")
        await logf.logger("Test", "HelloServer", "", "%Y%m%d", ["not for this console\n"])
    async with console(k8s_cluster, namespace, log_service) as url:  # --log-url without --log-token-file
        b = await Browser.open(browser, url)
        try:
            await b.login("dev", "dev-pass")
            await b.goto(PAGE)
            error = await b.page.inner_text("#files-error")
            assert "the log service refused" in error and "--log-token-file" in error, error
            assert await b.page.locator("#files tr.file").count() == 0
        finally:
            await b.close()


async def _written(server_dir: Path) -> bool:
    return server_dir.is_dir() and any(p.stat().st_size > 0 for p in server_dir.iterdir())


async def _pod_listed(b: Browser, pod: str) -> bool:
    await b.goto(PAGE)
    return await b.page.locator(f"#pod-logs a[href='?pod={pod}']").count() == 1
