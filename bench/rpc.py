"""bench/rpc: echo QPS and latency of a k8stars server beside an @tars/rpc server and a TarsGo server.

Every server runs the same echo servant (``int echo(string s, out string r)``) pinned to CPU 0; the same load
generator (TarsGo's client, the fastest we have) runs on CPU 1. Run: ``python -m bench.rpc [--seconds 5]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from bench.registry import cpu_seconds  # calls per server CPU-second hold still on a busy machine, calls/s not
from k8stars.testing import peers
from k8stars.testing.procs import free_port, stop_process, wait_port

SERVANT = "Test.EchoServer.EchoObj"
SERVERS = ("k8stars", "@tars/rpc", "TarsGo")


def pin(cpu: int) -> list[str]:
    return ["taskset", "-c", str(cpu)] if shutil.which("taskset") and (os.cpu_count() or 1) > 1 else []


def server_argv(name: str, endpoint: str) -> list[str]:
    if name == "k8stars":
        return [sys.executable, "-m", "bench.echo_server", "--endpoint", endpoint]
    peer: peers.Peer = "node" if name == "@tars/rpc" else "go"
    return [*peers.peer_command(peer, "echo-server"), "--endpoint", endpoint, "--servant", SERVANT]


@contextmanager
def running(name: str) -> Iterator[tuple[int, int]]:
    port = free_port()
    argv = [*pin(0), *server_argv(name, f"tcp -h 127.0.0.1 -p {port} -t 600000")]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        wait_port(port, proc)
        yield port, proc.pid
    finally:
        stop_process(proc)


def load(port: int, concurrency: int, payload: int, seconds: float) -> dict[str, float]:
    argv = [*pin(1), *peers.peer_command("go", "echo-client"), f"{SERVANT}@tcp -h 127.0.0.1 -p {port}", "--bench",
            "--concurrency", str(concurrency), "--seconds", str(seconds), "--payload", str(payload)]  # fmt: skip
    res = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    if res.returncode != 0:
        raise SystemExit(f"load generator failed: {res.stderr.strip()[-2000:]}")
    result: dict[str, float] = json.loads(res.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--servers", default=",".join(SERVERS), help="comma-separated subset of " + ", ".join(SERVERS))
    args = parser.parse_args()
    servers = [n.strip() for n in args.servers.split(",") if n.strip()]
    if unknown := set(servers) - set(SERVERS):
        parser.error(f"unknown server(s): {', '.join(sorted(unknown))}")
    if "@tars/rpc" in servers:
        peers.node_dir()
    peers.go_binary()
    cases = [(c, p) for c in (1, 64) for p in (10, 1024)]
    results: dict[tuple[str, int, int], dict[str, float]] = {}
    for name in servers:
        with running(name) as (port, pid):
            load(port, 4, 10, 1.0)  # warm up
            for conc, payload in cases:
                cpu = cpu_seconds(pid)
                r = results[(name, conc, payload)] = load(port, conc, payload, args.seconds)
                r["per_cpu_s"] = r["calls"] / max(cpu_seconds(pid) - cpu, 1e-9)
    print(f"\nbench/rpc: echo, server on 1 core, TarsGo load generator on the other, {args.seconds:g} s per cell, "
          "TCP_NODELAY on both sides\n")  # fmt: skip
    others = [n for n in SERVERS[1:] if n in servers and "k8stars" in servers]
    head = f"{'callers':>7} {'payload':>7} | " + " | ".join(f"{n:>40}" for n in servers)
    print(head + "".join(f" | {'vs ' + n:>12}" for n in others))
    print("-" * len(head) + "-" * 15 * len(others))
    for conc, payload in cases:
        cells = []
        for name in servers:
            r = results[(name, conc, payload)]
            cells.append(
                f"{r['qps']:>6.0f} qps {r['per_cpu_s']:>6.0f}/cpu-s p50 {r['p50_ms']:.2f} p99 {r['p99_ms']:.2f}"
            )
        ratios = [results[("k8stars", conc, payload)]["qps"] / results[(n, conc, payload)]["qps"] for n in others]
        print(f"{conc:>7} {payload:>6}B | " + " | ".join(f"{c:>40}" for c in cells)
              + "".join(f" | {r:>11.2f}x" for r in ratios))  # fmt: skip
    errors = sum(r["errors"] for r in results.values())
    print(f"\nerrors: {errors:.0f}")


if __name__ == "__main__":
    main()
