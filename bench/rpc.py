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
def running(name: str) -> Iterator[int]:
    port = free_port()
    argv = [*pin(0), *server_argv(name, f"tcp -h 127.0.0.1 -p {port} -t 600000")]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        wait_port(port, proc)
        yield port
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
    args = parser.parse_args()
    peers.node_dir()
    peers.go_binary()
    cases = [(c, p) for c in (1, 64) for p in (10, 1024)]
    results: dict[tuple[str, int, int], dict[str, float]] = {}
    for name in SERVERS:
        with running(name) as port:
            load(port, 4, 10, 1.0)  # warm up
            for conc, payload in cases:
                results[(name, conc, payload)] = load(port, conc, payload, args.seconds)
    print(f"\nbench/rpc: echo, server on 1 core, TarsGo load generator on the other, {args.seconds:g} s per cell, "
          "TCP_NODELAY on both sides\n")  # fmt: skip
    head = f"{'callers':>7} {'payload':>7} | " + " | ".join(f"{n:>28}" for n in SERVERS)
    print(head + f" | {'vs @tars/rpc':>12} | {'vs TarsGo':>9}")
    print("-" * len(head) + "-" * 28)
    for conc, payload in cases:
        cells = []
        for name in SERVERS:
            r = results[(name, conc, payload)]
            cells.append(f"{r['qps']:>9.0f} qps p50 {r['p50_ms']:.2f} p99 {r['p99_ms']:.2f}")
        ours, node, go = (results[(n, conc, payload)]["qps"] for n in SERVERS)
        print(f"{conc:>7} {payload:>6}B | " + " | ".join(f"{c:>28}" for c in cells)
              + f" | {ours / node:>11.2f}x | {ours / go:>8.2f}x")  # fmt: skip
    errors = sum(r["errors"] for r in results.values())
    print(f"\nerrors: {errors:.0f}")


if __name__ == "__main__":
    main()
