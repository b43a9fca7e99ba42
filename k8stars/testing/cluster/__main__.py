"""python -m k8stars.testing.cluster build|up|env|status|down

`up` leaves the control plane running in the background (state in ~/.cache/k8stars/cluster,
or --workdir); `env` prints shell exports for it; `down` stops it by the PIDs it recorded.
`up --kubelet` adds a real node (containerd + kubelet, pods on a bridge) and a local registry;
its `down` also removes the node's mounts, cgroups and bridge.
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import shutil
import sys
from pathlib import Path

from k8stars.paths import cache_home

from .launcher import STATE_FILE, Cluster, ClusterError, ClusterOptions, ensure_binaries, start_cluster


def _default_workdir() -> Path:
    return cache_home() / "cluster"


def _load_running(workdir: Path) -> Cluster | None:
    """The recorded cluster if every one of its processes is still alive."""
    if not (workdir / STATE_FILE).is_file():
        return None
    try:
        cluster = Cluster.load(workdir)
    except ClusterError:
        return None
    if cluster.procs and len(cluster.alive()) == len(cluster.procs):
        return cluster
    return None


def _exports(cluster: Cluster) -> str:
    return "\n".join(f"export {k}={shlex.quote(v)}" for k, v in cluster.env().items())


def cmd_build(_: argparse.Namespace) -> int:
    layout = asyncio.run(ensure_binaries())
    print(layout.bin_dir)
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    workdir = Path(args.workdir)
    if running := _load_running(workdir):
        print(f"already running at {running.api_url}", file=sys.stderr)
        print(_exports(running))
        return 0
    _stop_recorded(workdir)
    # A fresh etcd every time: stale data from a previous cluster would confuse tests.
    shutil.rmtree(workdir, ignore_errors=True)
    layout = asyncio.run(ensure_binaries())
    nodes = args.nodes if args.nodes is not None else (0 if args.kubelet else 2)
    options = ClusterOptions(nodes=nodes, workdir=workdir, timeout=args.timeout, kubelet=args.kubelet)
    cluster = asyncio.run(start_cluster(options, layout))
    rss = sum(cluster.rss_bytes().values())
    print(f"started in {cluster.startup_seconds:.1f} s, RSS {rss / 2**20:.0f} MiB", file=sys.stderr)
    print(_exports(cluster))
    return 0


def cmd_env(args: argparse.Namespace) -> int:
    workdir = Path(args.workdir)
    cluster = _load_running(workdir)
    if cluster is None:
        print(f"no running cluster in {workdir}: run `python -m k8stars.testing.cluster up`", file=sys.stderr)
        return 1
    print(_exports(cluster))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    workdir = Path(args.workdir)
    if not (workdir / STATE_FILE).is_file():
        print(f"no cluster recorded in {workdir}")
        return 1
    cluster = Cluster.load(workdir)
    rss = cluster.rss_bytes()
    print(f"api {cluster.api_url}  kubeconfig {cluster.kubeconfig}")
    for proc in cluster.procs:
        state = f"pid {proc.pid}, RSS {rss[proc.name] / 2**20:.0f} MiB" if proc.name in rss else "not running"
        print(f"  {proc.name:<24} {state}  log {proc.log}")
    print(f"  total RSS {sum(rss.values()) / 2**20:.0f} MiB")
    return 0 if len(rss) == len(cluster.procs) else 1


def _stop_recorded(workdir: Path) -> bool:
    if not (workdir / STATE_FILE).is_file():
        return False
    try:
        cluster = Cluster.load(workdir)
    except ClusterError as exc:
        # E.g. written by an older launcher: nothing we can safely stop by PID.
        print(f"warning: {exc}", file=sys.stderr)
        return False
    # Cluster.stop: a real node needs more than its processes stopped (pods drained, mounts, cgroups, bridge).
    asyncio.run(cluster.stop(remove_workdir=False))
    return True


def cmd_down(args: argparse.Namespace) -> int:
    workdir = Path(args.workdir)
    if not _stop_recorded(workdir):
        print(f"no cluster recorded in {workdir}", file=sys.stderr)
        return 0
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    print("stopped", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m k8stars.testing.cluster", description=__doc__)
    parser.add_argument("--workdir", default=str(_default_workdir()), help="state, certs, logs, etcd data")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("build", help="build the binaries (no-op on a warm cache); print their directory")
    up = sub.add_parser("up", help="start the control plane in the background, print shell exports")
    up.add_argument("--nodes", type=int, default=None, help="kwok nodes (default 2; 0 with --kubelet)")
    up.add_argument("--kubelet", action="store_true", help="a real node and a local registry (root only)")
    up.add_argument("--timeout", type=float, default=90.0)
    sub.add_parser(
        "env", help="print shell exports (KUBECONFIG, K8STARS_API_URL, K8STARS_IMAGE_REGISTRY) for the running cluster"
    )
    sub.add_parser("status", help="show processes, RSS and logs")
    down = sub.add_parser("down", help="stop the processes recorded by `up`")
    down.add_argument("--keep", action="store_true", help="keep the workdir (logs, etcd data)")
    args = parser.parse_args(argv)
    handlers = {"build": cmd_build, "up": cmd_up, "env": cmd_env, "status": cmd_status, "down": cmd_down}
    try:
        return handlers[args.command](args)
    except ClusterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
