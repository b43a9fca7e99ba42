"""What a real node leaves when its launcher is killed before `down` (SIGKILL, the OOM killer, a CI timeout): the
bridge, mounts, cgroups, containerd's shims and their containers, the CNI result cache. Each node keeps a record in its
run dir (/run/k8stars-run-*, which `down` removes) naming the processes it lives in: the launcher that planned it,
then containerd and kubelet. A node none of whose processes is alive any more (each matched with its start time, so a
reused PID does not count) is gone for good, and the next real node to start removes what it left
(`_node_teardown.cleanup`, as `down` would have)."""

from __future__ import annotations

import dataclasses
import json
import tempfile
from collections.abc import Callable
from pathlib import Path

from k8stars.paths import cache_home, file_lock

from . import _node_teardown, _proc
from .node import NodeState

RECORD = "node.json"
RUN_DIR_GLOB = "k8stars-run-*"  # node.plan's run dirs


def write(state: NodeState, owners: list[_proc.Proc]) -> None:
    """Record the node with the processes it lives in (written again as each one starts)."""
    path = Path(state.run_dir) / RECORD
    tmp = path.with_suffix(".tmp")
    body = {"state": dataclasses.asdict(state), "owners": [dataclasses.asdict(p) for p in owners]}
    tmp.write_text(json.dumps(body))
    tmp.replace(path)


def _read(path: Path) -> tuple[NodeState, list[_proc.Proc]] | None:
    try:
        record = json.loads(path.read_text())
        return NodeState(**record["state"]), [_proc.Proc(**p) for p in record["owners"]]
    except (OSError, ValueError, TypeError, KeyError):
        return None  # being written, or not ours


def sweep(say: Callable[[str], None]) -> None:
    """Remove what every real node whose processes are all gone left on the host; say what was removed. One sweep at a
    time: two clusters starting at once would both find the same dead node."""
    with file_lock(cache_home() / "real-node-sweep.lock"):
        _sweep(say)


def _sweep(say: Callable[[str], None]) -> None:
    for parent in {Path("/run"), Path(tempfile.gettempdir())}:
        for path in parent.glob(f"{RUN_DIR_GLOB}/{RECORD}"):
            found = _read(path)
            if found is None:
                continue
            state, owners = found
            if Path(state.run_dir) != path.parent or any(_proc.is_ours(p) for p in owners):
                continue
            problems = _node_teardown.cleanup(state)
            say(
                f"cluster: removed what real node {state.name} left (bridge {state.bridge}, cgroup "
                f"{state.cgroup_name}): its launcher died before down"
                + (f"; could not undo: {'; '.join(problems)}" if problems else "")
            )
