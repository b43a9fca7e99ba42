"""``k8stars web`` as a command: a bad option exits 2; with a key file it serves until SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import aiohttp

from k8stars.testing.cluster import Cluster
from tests.conftest import free_port


async def test_namespace_required() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("POD_NAMESPACE", "K8STARS_WEB_NAMESPACE")}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "k8stars", "web", env=env,
                                                stderr=asyncio.subprocess.PIPE)  # fmt: skip
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2 and b"--namespace is required" in err


async def test_serves_with_a_key_file(k8s_cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    port, key = free_port(), tmp_path / "web.key"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "k8stars", "web", "-n", namespace, "--kubeconfig", str(k8s_cluster.kubeconfig),
        "--port", str(port), "--key-file", str(key), stderr=asyncio.subprocess.PIPE)  # fmt: skip
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(100):  # bounded: up to 10 s to start
                try:
                    async with http.get(f"http://127.0.0.1:{port}/healthz") as r:
                        assert r.status == 200 and namespace in await r.text()
                        break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.1)
            else:
                raise AssertionError("k8stars web did not start")
            async with http.get(f"http://127.0.0.1:{port}/", allow_redirects=False) as r:
                assert r.status == 302 and r.headers["Location"] == "/login"
        assert key.stat().st_mode & 0o777 == 0o600 and len(key.read_text().strip()) >= 43
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 0, err.decode()[-2000:]
