"""K8SFramework's release images have no start script: the supervisor starts the server by ServerType from bin/
(k8stars/tarscli/launch.py), and LauncherType foreground makes the server's exit the supervisor's. Processes on
127.0.0.0/8 only, started and stopped by PID."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tarscli_helpers import Pod, RegistryProc, wait_active_hosts
from test_tarscli_e2e import MakePod, echo_client

from k8stars.testing import peers

NO_REGISTRY = "tars.tarsregistry.QueryObj@tcp -h 127.0.0.1 -p 1 -t 1000"


def _release(pod: Pod, program: str) -> None:
    """bin/ as K8SFramework's build leaves it: the package's program named like the server, no start.sh."""
    (pod.tars_path / "bin" / "start.sh").unlink()
    path = pod.tars_path / "bin" / pod.server
    path.write_text(program)
    path.chmod(0o644)  # the agent sets the execute bit, as K8SFramework's start script does


async def test_go_server_started_by_type_registers_and_serves(registry: RegistryProc, pods: MakePod) -> None:
    binary = await asyncio.to_thread(peers.go_binary)
    pod = pods("Test.GoServer", "127.0.0.61", registry.locator, "")
    _release(pod, f'#!/bin/sh\nexec "{binary}" echo-server "$@"\n')
    pod.start(ServerType="go")
    await pod.wait_state("active", 30)
    await wait_active_hosts(registry.locator, pod.servant(), ["127.0.0.61"])
    assert await echo_client("go", registry.locator, pod.servant(), "by type") == {"ret": 0, "r": "by type"}
    assert "--config=" in (pod.tars_path / "log" / "supervisor.log").read_text()


async def test_foreground_server_exit_ends_the_supervisor(pods: MakePod) -> None:
    pod = pods("Test.OnceServer", "127.0.0.62", NO_REGISTRY, "")
    _release(pod, '#!/bin/sh\necho "from the server $1"\nexit 3\n')
    pod.start(ServerType="cpp", LauncherType="foreground")
    assert await pod.wait_exit(30) == 3
    out = (pod.tars_path / "supervisor.out").read_text()
    assert f"from the server --config={pod.tars_path / 'conf' / 'OnceServer.conf'}" in out  # the container's output


async def test_unknown_type_or_missing_program_is_refused(pods: MakePod, tmp_path: Path) -> None:
    pod = pods("Test.PhpServer", "127.0.0.63", NO_REGISTRY, "")
    _release(pod, "<?php\n")
    pod.start(ServerType="php")
    assert await pod.wait_exit(30) == 1
    assert "ServerType 'php' is not one this agent starts" in (pod.tars_path / "supervisor.out").read_text()
    missing = pods("Test.NoServer", "127.0.0.64", NO_REGISTRY, "")
    (missing.tars_path / "bin" / "start.sh").unlink()
    missing.start(ServerType="cpp")
    assert await missing.wait_exit(30) == 1
    assert "NoServer does not exist" in (missing.tars_path / "supervisor.out").read_text()
