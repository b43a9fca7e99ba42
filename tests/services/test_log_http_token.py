"""The log service's files view closed by a bearer token (`k8stars log --http-port --http-token-file`), asked over
HTTP of a real `k8stars log` process: no token, a wrong one, another scheme and an unknown path answer 401 with the
reason and no file; the right one lists and serves the files; a rotated token (the file swapped, as the kubelet
swaps a mounted Secret, or rewritten in place) is taken at once and the old one refused; a token file gone refuses
everything (503) until it is back; /healthz and /metrics stay open. Bad options exit 2; an open view is warned
about."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from k8stars.services.log.app import LOG_OBJ
from k8stars.tars.protocol.logf import LogProxy
from k8stars.tars.rpc import Communicator
from k8stars.testing.procs import free_port, stop_process, wait_port

ROOT = Path(__file__).resolve().parents[2]
FIRST, SECOND, THIRD = "first-token-6Jq2", "second-token-kP9x", "a-longer-third-token-Wm4z"


@dataclass
class LogProcess:
    proc: subprocess.Popen[bytes]
    endpoint: str  # LogObj's
    base: str  # the files view


def argv(log_dir: Path, port: int, http_port: int, *more: str) -> list[str]:
    return [sys.executable, "-m", "k8stars", "log", "--log-dir", str(log_dir), "--endpoint",
            f"tcp -h 127.0.0.1 -p {port}", "--http-port", str(http_port), *more]  # fmt: skip


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "secret" / "token"
    path.parent.mkdir()
    path.write_text(FIRST + "\n")  # as `kubectl create secret --from-file` keeps a trailing newline
    return path


@pytest.fixture
def log_process(tmp_path: Path, token_file: Path) -> Iterator[LogProcess]:
    port, http_port = free_port(), free_port()
    cmd = argv(tmp_path / "logs", port, http_port, "--http-token-file", str(token_file))
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_port(http_port, proc)
        yield LogProcess(proc, f"{LOG_OBJ}@tcp -h 127.0.0.1 -p {port}", f"http://127.0.0.1:{http_port}")
    finally:
        stop_process(proc)
    err = proc.stderr.read().decode() if proc.stderr else ""
    assert proc.returncode == 0, err
    assert "is open" not in err  # the open-view warning is for views without a token only


async def get(url: str, token: str | None = None, scheme: str = "Bearer") -> tuple[int, str, dict[str, str]]:
    headers = {"Authorization": f"{scheme} {token}"} if token is not None else {}
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as r:
        return r.status, await r.text(), dict(r.headers)


def rotate(path: Path, token: str) -> None:
    """As the kubelet updates a mounted Secret: the new content in a new file, renamed over the old one."""
    new = path.with_name(".token.new")
    new.write_text(token)
    os.replace(new, path)


async def test_only_the_token_reads_the_files(log_process: LogProcess, token_file: Path, tmp_path: Path) -> None:
    async with Communicator() as comm:
        await comm.string_to_proxy(LogProxy, log_process.endpoint).logger("Test", "Hello", "biz", "%Y%m%d",
                                                                           ["a private line\n"])  # fmt: skip
    hello = tmp_path / "logs" / "Test" / "Hello"
    for _ in range(300):  # the writer flushes every second
        if hello.is_dir() and any(p.stat().st_size for p in hello.iterdir()):
            break
        await asyncio.sleep(0.1)
    (name,) = [p.name for p in hello.iterdir()]
    listing, one = f"{log_process.base}/api/logs/Test/Hello", f"{log_process.base}/api/logs/Test/Hello/{name}"

    # Refused, with the reason, before anything is read
    for url in (listing, one, f"{log_process.base}/api/nothing-here"):
        status, body, headers = await get(url)
        assert status == 401 and "Authorization: Bearer <token>" in body and "--http-token-file" in body, body
        assert headers.get("WWW-Authenticate") == "Bearer" and name not in body and "private" not in body
    for token, scheme in ((FIRST + "x", "Bearer"), ("", "Bearer"), (FIRST, "Basic"), (FIRST[:-1], "Bearer")):
        status, body, _ = await get(one, token, scheme)
        assert status == 401 and "private" not in body, (token, scheme, body)
    status, body, _ = await get(one, FIRST + "x")
    assert "not the one of --http-token-file" in body

    # The token: the files, the tail of one
    status, body, _ = await get(listing, FIRST)
    assert status == 200 and f'"name": "{name}"' in body, body
    assert (await get(one, FIRST, "bearer"))[:2] == (200, "127.0.0.1|a private line\n")  # the scheme in any case

    # Rotated as a Secret is: the new token at once, the old one refused
    rotate(token_file, SECOND)
    assert (await get(one, FIRST))[0] == 401
    assert (await get(one, SECOND))[:2] == (200, "127.0.0.1|a private line\n")
    token_file.write_text(THIRD)  # rewritten in place
    assert [(await get(listing, t))[0] for t in (SECOND, THIRD)] == [401, 200]

    # No token file: nobody passes (the service says why in its log), until it is back
    token_file.unlink()
    for maybe in (THIRD, None):
        status, body, _ = await get(listing, maybe)
        assert status in (401, 503) and name not in body
    assert (await get(listing, THIRD))[1] == '{"error": "the service\'s token cannot be read (see its log)"}'
    rotate(token_file, THIRD)
    assert (await get(listing, THIRD))[0] == 200

    # Probes stay open
    status, body, _ = await get(f"{log_process.base}/healthz")
    assert status == 200 and body.startswith("ok log dir")
    assert (await get(f"{log_process.base}/metrics"))[0] == 200


def k8stars_log(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "k8stars", "log", *args], capture_output=True, text=True, timeout=60,
                          cwd=ROOT, env={**os.environ, **(env or {})})  # fmt: skip


def test_bad_token_files_exit_2(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("\n")
    common = ("--log-dir", str(tmp_path / "logs"), "--endpoint", f"tcp -h 127.0.0.1 -p {free_port()}")
    r = k8stars_log(*common, "--http-port", "0", env={"K8STARS_LOG_HTTP_TOKEN_FILE": str(tmp_path / "missing")})
    assert r.returncode == 2 and f"--http-token-file {tmp_path / 'missing'}: No such file" in r.stderr, r
    r = k8stars_log(*common, "--http-port", "0", "--http-token-file", str(empty))
    assert r.returncode == 2 and f"--http-token-file {empty}: the file is empty" in r.stderr, r
    r = k8stars_log(*common, "--http-token-file", str(empty))
    assert r.returncode == 2 and "--http-token-file needs --http-port" in r.stderr, r


async def test_an_open_view_is_warned_about(tmp_path: Path) -> None:
    port, http_port = free_port(), free_port()
    proc = subprocess.Popen(argv(tmp_path, port, http_port), cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)  # fmt: skip
    try:
        await asyncio.to_thread(wait_port, http_port, proc)
        status, body, _ = await get(f"http://127.0.0.1:{http_port}/api/logs/Test/Hello")
        assert (status, body) == (200, '{"files": []}')  # as before: no token asked
    finally:
        stop_process(proc)
    err = proc.stderr.read().decode() if proc.stderr else ""
    assert f"the files view on 127.0.0.1:{http_port} is open (no --http-token-file)" in err, err
