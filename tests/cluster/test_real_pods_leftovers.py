"""A launcher killed before `down` (SIGKILL: the OOM killer, a CI job's timeout) leaves its real node on the host:
the bridge, the kubelet root's bind mount, the cgroup tree, its pod's shim and container, the CNI result cache. The
next real node to start removes all of it (k8stars.testing.cluster._node_leftovers), and says so: after that node's
own `down` the machine is as it was before the first one."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from test_real_pods import _cli, _push_image, _run_pod

import k8stars
from k8stars.testing.cluster import Cluster, ensure_binaries, hoststate
from k8stars.testing.cluster._node_teardown import sandbox_ids
from k8stars.testing.cluster.node import CNI_RESULTS
from k8stars.testing.cluster.pytest_plugin import skip_unless_real_pods

# A launcher whose node's processes die with it (as under pytest): up, then wait to be killed.
LAUNCHER = """
import asyncio, sys, time
from pathlib import Path
from k8stars.testing.cluster.launcher import ClusterOptions, start_cluster
options = ClusterOptions(nodes=0, workdir=Path(sys.argv[1]), kubelet=True, die_with_parent=True)
asyncio.run(start_cluster(options))
print("up", flush=True)
time.sleep(600)
"""


def _start_launcher(workdir: Path) -> subprocess.Popen[str]:
    src = str(Path(k8stars.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen([sys.executable, "-c", LAUNCHER, str(workdir)], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env=env)  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()  # bounded: start_cluster times out on its own (90 s)
    if line.strip() != "up":
        proc.kill()
        proc.wait(timeout=30)
        raise AssertionError(f"the launcher did not come up (exit {proc.poll()})")
    return proc


def _node_marks(cluster: Cluster, workdir: Path) -> tuple[str, ...]:
    node = cluster.real_node
    assert node is not None
    return node.bridge, node.cgroup_name, node.run_dir, str(workdir)


def test_a_killed_launchers_node_is_removed_by_the_next_up(tmp_path: Path) -> None:
    skip_unless_real_pods()
    asyncio.run(ensure_binaries())
    first, second = tmp_path / "first", tmp_path / "second"
    before = hoststate.snapshot(tmp_path)
    launcher = _start_launcher(first)
    try:
        cluster = Cluster.load(first)
        ours = _node_marks(cluster, first)
        image = asyncio.run(_push_image(cluster))
        asyncio.run(_run_pod(cluster, "left-behind", image))
    finally:
        os.kill(launcher.pid, signal.SIGKILL)
        launcher.wait(timeout=30)
    time.sleep(1.0)  # containerd and kubelet get SIGKILL as their parent dies; the pod's shim does not
    left = hoststate.diff(before, hoststate.snapshot(tmp_path), ours=ours)
    parts = {line.split(":")[0] for line in left}
    assert {"links", "mounts", "cgroups", "processes"} <= parts, left
    # The loopback plugin's results name a sandbox only (the diff cannot tell whose while other nodes run): by ID.
    assert cluster.real_node is not None
    loopback = [Path(CNI_RESULTS, f"cni-loopback-{i}-lo") for i in sandbox_ids(cluster.real_node)]
    assert any(p.exists() for p in loopback), loopback

    up = _cli(second, "up", "--kubelet")
    try:
        assert up.returncode == 0, up.stderr
        assert f"removed what real node k8stars-real-node left (bridge {ours[0]}" in up.stderr, up.stderr
        ours += _node_marks(Cluster.load(second), second)
    finally:
        down = _cli(second, "down")
    assert down.returncode == 0, down.stderr
    assert hoststate.diff(before, hoststate.snapshot(tmp_path), ours=ours) == []
    assert not [p for p in loopback if p.exists()]
