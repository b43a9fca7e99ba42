"""Issue 16, item 2: whoever reached a framework service's public port could stop it (AdminObj answered `shutdown`
there) or deregister any server through the Registry servant. Now AdminObj is on the loopback --admin-endpoint only,
and registry writes are taken for the caller's own node or from --trusted-peers. Through `k8stars call` against the
real processes."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.registry.conftest import StoreSpec, free_port
from tests.registry.test_e2e import ROOT, RegistryProcess, _listening, k8stars_call, registry_argv

SHUTDOWN = ("shutdown", "{}")


def _sqlite(tmp_path: Path) -> StoreSpec:
    return StoreSpec("sqlite", tmp_path / "data", None)


def _serve(argv: list[str], port: int, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "k8stars", *argv], cwd=ROOT, stdout=out, stderr=out,
                                stdin=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 30
    while not _listening(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"{argv[0]} did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.05)
    return proc


async def _stopped_only_through_loopback(proc: subprocess.Popen[bytes], public: list[int], admin: int) -> None:
    """`shutdown` on every public port is refused and the process keeps serving; on the admin endpoint it stops."""
    try:
        for port in public:
            out = await k8stars_call(f"AdminObj@tcp -h 127.0.0.1 -p {port}", *SHUTDOWN)
            assert out.returncode == 1 and "no servant AdminObj" in out.stderr, out
        assert proc.poll() is None and all(_listening(p) for p in public)
        out = await k8stars_call(f"AdminObj@tcp -h 127.0.0.1 -p {admin}", "notify", '{"command": "tars.viewversion"}')
        assert out.returncode == 0 and "k8stars" in out.stdout, out
        out = await k8stars_call(f"AdminObj@tcp -h 127.0.0.1 -p {admin}", *SHUTDOWN)
        assert out.returncode == 0, out
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


async def test_registry_admin_is_not_on_its_public_ports(tmp_path: Path) -> None:
    port, registry_port, admin = free_port(), free_port(), free_port()
    argv = registry_argv(_sqlite(tmp_path), port, "--registry-port", str(registry_port), "--http-port", "0",
                         "--admin-endpoint", f"tcp -h 127.0.0.1 -p {admin}")  # fmt: skip
    proc = _serve(argv[3:], port, tmp_path / "registry.log")
    await _stopped_only_through_loopback(proc, [port, registry_port], admin)


@pytest.mark.parametrize("service", ["config", "log"])
async def test_config_and_log_admin_is_loopback_only(service: str, tmp_path: Path) -> None:
    port, admin = free_port(), free_port()
    extra = ["--store", "sqlite", "--data-dir", str(tmp_path)] if service == "config" else ["--log-dir", str(tmp_path)]
    argv = [service, *extra, "--endpoint", f"tcp -h 127.0.0.1 -p {port}",
            "--admin-endpoint", f"tcp -h 127.0.0.1 -p {admin}"]  # fmt: skip
    proc = _serve(argv, port, tmp_path / f"{service}.log")
    await _stopped_only_through_loopback(proc, [port], admin)


def test_admin_endpoint_must_be_loopback() -> None:
    for endpoint in ("tcp -h 0.0.0.0 -p 0", "tcp -h 10.1.2.3 -p 19385", "udp -h 127.0.0.1 -p 0"):
        out = subprocess.run([sys.executable, "-m", "k8stars", "log", "--admin-endpoint", endpoint], cwd=ROOT,
                             capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)  # fmt: skip
        assert out.returncode == 2 and "--admin-endpoint" in out.stderr, out


def _registry_call(locator_port: int, func: str, req: dict[str, object]) -> tuple[str, ...]:
    return (f"tars.tarsregistry.Registry@tcp -h 127.0.0.1 -p {locator_port}", func, json.dumps({"req": req}))


async def test_registry_writes_only_for_the_callers_node(tmp_path: Path) -> None:
    """The registry registers itself as node 127.0.0.9; a caller on 127.0.0.1 (not trusted here) can neither
    deregister it (either onPrestop form), heartbeat it nor register servers for it, but registers its own node."""
    port = free_port()
    argv = registry_argv(_sqlite(tmp_path), port, "--http-port", "0", "--node-name", "127.0.0.9",
                         "--trusted-peers", "none")  # fmt: skip
    reg = RegistryProcess(argv, port, 0, tmp_path / "registry.log")
    reg.start()
    try:
        victim = {"nodeName": "127.0.0.9", "application": "tars", "server": "tarsregistry"}
        startup = {"nodeName": "127.0.0.9", "application": "Evil", "server": "Server",
                   "adapters": [{"servant": "Evil.Server.Obj", "endpoint": "tcp -h 127.0.0.9 -p 20001"}]}  # fmt: skip
        attacks = [("onPrestop", victim), ("onPrestop", {"nodeName": "127.0.0.9"}),
                   ("keepAlive", {**victim, "state": "inactive"}), ("onStartup", startup)]  # fmt: skip
        for func, req in attacks:
            out = await k8stars_call(*_registry_call(port, func, req))
            assert out.returncode == 1 and "1004" in out.stderr and "refused" in out.stderr, (func, out)
        out = await k8stars_call(f"tars.tarsregistry.QueryObj@tcp -h 127.0.0.1 -p {port}", "findObjectById4Any",
                                 '{"id": "tars.tarsregistry.QueryObj"}')  # fmt: skip
        assert out.returncode == 0, out
        assert [e["host"] for e in json.loads(out.stdout)["activeEp"]] == ["127.0.0.9"]
        adapters = [{"servant": "Own.Server.Obj", "endpoint": "tcp -h 127.0.0.1 -p 20001"}]
        own = {**startup, "nodeName": "127.0.0.1", "application": "Own", "adapters": adapters}
        out = await k8stars_call(*_registry_call(port, "onStartup", own))
        assert out.returncode == 0, out
        assert "refused (" in reg.log.read_text()  # logged (once a second at most)
    finally:
        assert reg.stop() == 0


async def test_trusted_peers_may_write_for_any_node(tmp_path: Path) -> None:
    """By default loopback (the registry's own pod or host) is trusted: `k8stars up` and a sidecar keep working."""
    port = free_port()
    reg = RegistryProcess(registry_argv(_sqlite(tmp_path), port, "--http-port", "0", "--node-name", "127.0.0.9"),
                          port, 0, tmp_path / "registry.log")  # fmt: skip
    reg.start()
    try:
        req = {"nodeName": "10.0.0.1", "application": "App", "server": "Server",
               "adapters": [{"servant": "App.Server.Obj", "endpoint": "tcp -h 10.0.0.1 -p 20001"}]}  # fmt: skip
        out = await k8stars_call(*_registry_call(port, "onStartup", req))
        assert out.returncode == 0, out
    finally:
        assert reg.stop() == 0
