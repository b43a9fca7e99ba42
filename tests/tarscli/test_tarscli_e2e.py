"""End to end, with real processes: `tarscli supervisor` runs a k8stars Python server, an @tars/rpc server and a
TarsGo server against a real `k8stars registry`; clients resolve them by name; readiness, prestop, crash restarts,
IP changes and a registry outage behave as a pod needs."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml  # type: ignore[import-untyped,unused-ignore]
from tarscli_helpers import (
    ROOT,
    TARSCLI,
    NotifyReceiver,
    Pod,
    RegistryProc,
    active_hosts,
    all_hosts,
    hello_start,
    lookup,
    peer_start,
    wait_active_hosts,
    wait_for,
)

from examples.hello.gen.hello import HelloProxy
from k8stars.tars.rpc import Communicator
from k8stars.testing import peers

MakePod = Callable[..., Pod]
RSS_GOAL_KB = 30 * 1024
RSS_FILE = Path(tempfile.gettempdir()) / "k8stars-tarscli-rss.json"  # the figure for the closing note


async def echo_client(peer: str, locator: str, obj: str, text: str) -> dict[str, object]:
    """One call by a real TARS client; retried for a few seconds while a server is still coming up."""
    argv = [*peers.peer_command(peer, "echo-client"), obj, "--once", text]  # type: ignore[arg-type]
    if locator:
        argv += ["--locator", locator]
    for _ in range(10):
        proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE)  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        if proc.returncode == 0:
            return json.loads(out)  # type: ignore[no-any-return]
        await asyncio.sleep(0.5)
    raise AssertionError(f"{peer} echo-client {obj} failed 10 times: {err.decode()}")


async def say_hello(locator: str, name: str) -> str:
    async with Communicator(locator=locator) as comm:
        proxy = comm.string_to_proxy(HelloProxy, "TestApp.HelloServer.HelloObj").tars_options(timeout_ms=3000)
        return await proxy.sayHello(name)


@pytest.fixture(scope="module")
def peer_builds() -> None:
    """Build (or find cached) the Node and Go peers once, outside the timed part of the tests."""
    peers.node_dir()
    peers.go_binary()


async def test_three_frameworks_register_serve_and_deregister(
    registry: RegistryProc, pods: MakePod, peer_builds: None
) -> None:
    loc = registry.locator
    hello = pods("TestApp.HelloServer", "127.0.0.11", loc, hello_start(), objects=("HelloObj",))
    node = pods("App.EchoNode", "127.0.0.12", loc, peer_start("node"))
    go = pods("App.EchoGo", "127.0.0.13", loc, peer_start("go"))
    for pod in (hello, node, go):
        pod.start()
    for pod in (hello, node, go):
        await pod.wait_state("active")
        assert (await pod.tarscli("hzcheck"))[0] == 0
        await wait_active_hosts(loc, pod.servant(), [pod.ip])
    # the servers that heartbeat to their node (k8stars Python, TarsGo) report to tarscli's ServerObj
    assert "health: ServerF heartbeats from TestApp.HelloServer" in hello.log()
    assert "health: ServerF heartbeats from App.EchoGo" in go.log()
    assert "ServerF heartbeats" not in node.log()  # @tars/rpc does not: the dial check is used
    assert "service reports version" in go.log()

    # clients resolve each one by name through the registry and call it, across languages
    assert await say_hello(loc, "py") == "hello py"
    assert (await echo_client("go", loc, node.servant(), "go->node"))["r"] == "go->node"
    assert (await echo_client("node", loc, go.servant(), "node->go"))["r"] == "node->go"

    # tarscli notify reaches the service's AdminObj
    code, out = await go.tarscli("notify", "tars.setloglevel", "INFO")
    assert code == 0 and out.startswith("notify succ:"), out
    code, out = await hello.tarscli("notify", "tars.viewstatus")
    assert code == 0 and "server: TestApp.HelloServer" in out, out

    # memory of the resident agent
    rss = {pod.name: pod.rss_kb() for pod in (hello, node, go)}
    RSS_FILE.write_text(json.dumps(rss))
    print(f"tarscli supervisor RSS (kB): {rss}")
    assert max(rss.values()) <= RSS_GOAL_KB, rss

    # SIGTERM: prestop (deactivating, wait, onPrestop), then the service stops and the supervisor exits 0
    service = hello.service_pid()
    assert hello.proc is not None
    hello.proc.send_signal(signal.SIGTERM)
    await wait_for(lambda: hello.state() == "deactivating", 5, "deactivating")
    assert (await hello.tarscli("hzcheck"))[0] == 1
    assert await hello.wait_exit(20) == 0
    assert await all_hosts(loc, hello.servant()) == []  # gone from lookups, not just inactive
    assert service is not None and not Path(f"/proc/{service}").exists()
    assert "prestop: deregistered TestApp.HelloServer from 127.0.0.11" in hello.log()

    # the preStop hook (`tarscli prestop`) asks the supervisor, which deregisters; SIGTERM then only stops
    code, out = await go.tarscli("prestop")
    assert code == 0 and "prestop done by the supervisor" in out, out
    assert await all_hosts(loc, go.servant()) == []
    assert (await go.tarscli("prestop"))[1].strip() == "Prestop has run before"
    assert go.proc is not None
    go.proc.send_signal(signal.SIGTERM)
    assert await go.wait_exit(15) == 0
    assert go.log().count("prestop: deregistered") == 1


async def test_crash_restart_is_reported_and_before_check_script_is_bounded(
    registry: RegistryProc, notify: NotifyReceiver, pods: MakePod, tmp_path: Path
) -> None:
    script = tmp_path / "check.sh"
    script.write_text(f'#!/bin/sh\necho $$ >> "{tmp_path}/check.pids"\nexec sleep 30\n')
    script.chmod(0o755)
    pod = pods("TestApp.HelloServer", "127.0.0.14", registry.locator, hello_start(), objects=("HelloObj",),
               env={"TARS_BEFORE_CHECK_SCRIPT": str(script), "TARS_CHECK_SCRIPT_TIMEOUT": "300ms"})  # fmt: skip
    pod.start()
    await pod.wait_state("active")
    # the before-check script ran (before the start, and before checks) and was killed at its timeout each time:
    # only the newest one may still be running
    pids = [int(p) for p in (tmp_path / "check.pids").read_text().split()]
    assert len(pids) >= 2 and not any(_sleeping(p) for p in pids[:-1])
    first = pod.service_pid()
    assert first is not None
    os.kill(first, signal.SIGKILL)
    await wait_for(lambda: pod.service_pid() not in (None, first), 15, "a restarted service")
    await pod.wait_state("active")
    await wait_active_hosts(registry.locator, pod.servant(), ["127.0.0.14"])
    await wait_for(lambda: any("server down" in r.sMessage for r in notify.reports), 10, "the crash notification")
    report = next(r for r in notify.reports if "server down" in r.sMessage)
    assert (report.sApp, report.sServer, report.sNodeName, int(report.eLevel)) == ("TestApp", "HelloServer",
                                                                                   "127.0.0.14", 2)  # fmt: skip
    assert "exit code -9" in report.sMessage
    assert any(r.sMessage.startswith("server version:") for r in notify.reports)


def _sleeping(pid: int) -> bool:
    try:
        return "sleep" in Path(f"/proc/{pid}/cmdline").read_text()
    except OSError:
        return False


async def test_crash_loop_backs_off(registry: RegistryProc, pods: MakePod) -> None:
    pod = pods("App.Crashy", "127.0.0.16", registry.locator, "echo starting; exit 3",
               env={"TARS_RESTART_BACKOFF": "100ms", "TARS_RESTART_BACKOFF_MAX": "800ms"})  # fmt: skip
    pod.start()
    await wait_for(lambda: pod.log().count("restart #") >= 6, 15, "six restarts")
    delays = [float(d) for d in re.findall(r"restart #\d+ in ([\d.]+) s", pod.log())]
    assert delays[:6] == [0.1, 0.2, 0.4, 0.8, 0.8, 0.8]
    assert "(exit code 3 after 0 s)" in pod.log() and pod.state() in ("inactive", "activating")
    assert "starting" in (pod.tars_path / "supervisor.out").read_text()  # start.log's tail on the supervisor's stdout


def _children(pid: int) -> list[tuple[int, str]]:
    """(pid, state) of the children of ``pid``."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append((int(entry.name), fields[0]))
    return out


@pytest.mark.skipif(shutil.which("unshare") is None or os.geteuid() != 0, reason="needs unshare and root")
async def test_as_pid_1_it_reaps_orphans(registry: RegistryProc, pods: MakePod) -> None:
    """In a container tarscli is PID 1, and the service's orphans become its children: they must not stay zombies."""
    start = f"(sleep 0.2 &); (sleep 0.4 &); {hello_start()}"
    pod = pods("TestApp.HelloServer", "127.0.0.17", registry.locator, start, objects=("HelloObj",))
    pod.start(wrapper=("unshare", "--pid", "--fork", "--mount-proc", "--kill-child=SIGTERM"))
    await pod.wait_state("active")
    assert pod.proc is not None
    (tarscli,) = (pid for pid, _ in _children(pod.proc.pid))  # PID 1 of the new namespace
    await asyncio.sleep(2.5)  # the sleeps have exited; a check tick has passed since
    assert [c for c in _children(tarscli) if c[1] == "Z"] == []
    assert await say_hello(registry.locator, "pid1") == "hello pid1"
    os.kill(tarscli, signal.SIGTERM)  # unshare itself ignores SIGTERM
    assert await pod.wait_exit(15) == 0


async def test_activating_times_out(registry: RegistryProc, notify: NotifyReceiver, pods: MakePod) -> None:
    pod = pods("App.Never", "127.0.0.15", registry.locator, "exec sleep 60",
               env={"TARS_ACTIVATING_TIMEOUT": "2s"})  # fmt: skip
    pod.start()
    await pod.wait_state("activating", 10)
    await pod.wait_state("inactive", 10)
    await wait_for(lambda: any("still activating" in r.sMessage for r in notify.reports), 10, "the alarm")
    active, inactive = await lookup(registry.locator, pod.servant())
    assert active == [] and [e.host for e in inactive] == ["127.0.0.15"]


async def test_restart_on_a_new_ip_replaces_the_old_endpoint(registry: RegistryProc, pods: MakePod) -> None:
    old = pods("TestApp.HelloServer", "127.0.0.21", registry.locator, hello_start(), objects=("HelloObj",))
    old.start()
    await old.wait_state("active")
    await wait_active_hosts(registry.locator, old.servant(), ["127.0.0.21"])
    # the pod dies without prestop (node lost, OOM): the supervisor is SIGKILLed, its service follows it
    service = old.service_pid()
    assert old.proc is not None and service is not None
    old.proc.kill()
    old.proc.wait(10)
    await wait_for(lambda: not Path(f"/proc/{service}").exists(), 10, "the orphaned service to stop")
    # it comes back with a new IP on the same volume
    new = Pod(old.tars_path, old.app, old.server, "127.0.0.22", old.locator, old.start_cmd, old.objects)
    new.start()
    try:
        await new.wait_state("active")
        await wait_for(lambda: _equals(active_hosts(registry.locator, new.servant()), ["127.0.0.22"]), 10,
                       "the new endpoint")  # fmt: skip
        assert await all_hosts(registry.locator, new.servant()) == ["127.0.0.22"]  # the old one is gone
        assert await say_hello(registry.locator, "moved") == "hello moved"
        assert "pod IP changed from 127.0.0.21 to 127.0.0.22" in new.log()
    finally:
        new.kill()


async def test_prestop_without_a_supervisor(registry: RegistryProc, pods: MakePod) -> None:
    """K8STARS's other flow: start.sh runs genconf and the server, and the preStop hook deregisters on its own."""
    pod = pods("TestApp.HelloServer", "127.0.0.28", registry.locator, hello_start(), objects=("HelloObj",))
    pod.start()
    await pod.wait_state("active")
    await wait_for(lambda: _equals(active_hosts(registry.locator, pod.servant()), ["127.0.0.28"]), 10, "registered")
    assert pod.proc is not None
    pod.proc.kill()  # no supervisor any more
    pod.proc.wait(10)
    code, out = await pod.tarscli("prestop")
    assert code == 0 and out.strip() == "prestop done", out
    assert await all_hosts(registry.locator, pod.servant()) == []
    assert pod.state() == "deactivating" and pod.data("prestop").read_text().strip() == "done"


async def _equals(value: object, expected: object) -> bool:
    return await value == expected  # type: ignore[misc]


async def test_registry_outage_does_not_stop_the_service(tmp_path: Path, pods: MakePod) -> None:
    registry = RegistryProc(tmp_path)  # not started: the pod comes up while the registry is down
    pod = pods("TestApp.HelloServer", "127.0.0.23", registry.locator, hello_start(), objects=("HelloObj",))
    pod.start()
    try:
        await pod.wait_state("active")
        assert (await pod.tarscli("hzcheck"))[0] == 0
        info = yaml.safe_load(pod.data("server_info.yaml").read_text())
        direct = f"TestApp.HelloServer.HelloObj@{info['conf']['adapters'][0]['endpoint']}"
        async with Communicator() as comm:
            assert await comm.string_to_proxy(HelloProxy, direct).sayHello("direct") == "hello direct"
        await registry.start()  # the state reaches the registry when it returns
        await wait_for(lambda: _equals(active_hosts(registry.locator, pod.servant()), ["127.0.0.23"]), 20,
                       "the pod to be registered")  # fmt: skip
        # the registry goes away and comes back empty (new data dir): the pod registers again
        registry.stop()
        await asyncio.sleep(3)
        await registry.start(fresh=True)
        await wait_for(lambda: _equals(active_hosts(registry.locator, pod.servant()), ["127.0.0.23"]), 20,
                       "the pod to be registered again")  # fmt: skip
        assert pod.proc is not None and pod.proc.poll() is None
        assert "registry reachable again" in pod.log()
    finally:
        registry.stop()


async def test_generated_config_starts_servers_unchanged(tmp_path: Path, peer_builds: None) -> None:
    """genconf alone (the image's start.sh flow): TarsGo and the k8stars Python server start from its output."""
    cases = [
        ("App.EchoGo", "EchoObj", "127.0.0.24", [*peers.peer_command("go", "echo-server")]),
        ("TestApp.HelloServer", "HelloObj", "127.0.0.25", [sys.executable, "-m", "examples.hello.server"]),
    ]
    for name, obj, ip, argv in cases:
        app, server = name.split(".")
        tp = tmp_path / name
        (tp / "bin").mkdir(parents=True)
        (tp / "bin" / "_server_meta.yaml").write_text(f"application: {app}\nserver: {server}\n"
                                                      f"adapters:\n  - object: {obj}\n")  # fmt: skip
        env = {**os.environ, "TARS_PATH": str(tp), "POD_IP": ip}
        r = subprocess.run([*TARSCLI, "genconf"], env=env, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        conf = r.stdout.strip()
        endpoint = yaml.safe_load((tp / "data" / "server_info.yaml").read_text())["conf"]["adapters"][0]["endpoint"]
        log = open(tp / "server.log", "wb")
        server_proc = subprocess.Popen([*argv, "--config", conf], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        try:
            if obj == "EchoObj":
                out = await echo_client("go", "", f"{name}.{obj}@{endpoint}", "plain")
                assert out["r"] == "plain"
            else:
                async with Communicator() as comm:
                    proxy = comm.string_to_proxy(HelloProxy, f"{name}.{obj}@{endpoint}")
                    await wait_for(lambda p=proxy: _answers(p), 15, "the server")
                    assert await proxy.sayHello("plain") == "hello plain"
        finally:
            server_proc.terminate()
            server_proc.wait(10)


async def _answers(proxy: HelloProxy) -> bool:
    try:
        await proxy.tars_ping()
    except Exception:
        return False
    return True
