"""bench/rpc: echo calls/s and latency, k8stars beside @tars/rpc and TarsGo, in three tables measured in one run.

- servers: each server (``int echo(string s, out string r)``) pinned to CPU 0, loaded by TarsGo's client (the fastest
  load generator we have) on CPU 1;
- clients: each client (k8stars Communicator, @tars/rpc, TarsGo) on CPU 1 against the one TarsGo echo server on
  CPU 0, at 1, 64 and 512 callers; ``per cpu-s``: calls per CPU-second of the client process (steadier than calls/s
  on a shared machine);
- processes: a k8stars server of 1 .. N processes (``processes=``, one per core at most) beside TarsGo's server,
  unpinned, loaded by 4 TarsGo client processes (the kernel spreads connections between a server's processes, so one
  connection would reach one process).

Run: ``python -m bench.rpc [--seconds 5] [--tables servers,clients,processes] [--k8stars-before DIR]``;
``--k8stars-before`` adds a client column run from another checkout (say the previous commit's) for before/after.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.registry import cpu_seconds  # calls per server CPU-second hold still on a busy machine, calls/s not
from k8stars.tars.rpc.processes import cpu_count
from k8stars.testing import peers
from k8stars.testing.procs import free_port, stop_process, wait_port

SERVANT = "Test.EchoServer.EchoObj"
SERVERS = ("k8stars", "@tars/rpc", "TarsGo")
CLIENTS = ("k8stars", "@tars/rpc", "TarsGo")
TABLES = ("servers", "clients", "processes")
ROOT = Path(__file__).resolve().parents[1]
LOADERS = 4  # client processes of the processes table


def pin(cpu: int | None) -> list[str]:
    if cpu is None or not shutil.which("taskset") or (os.cpu_count() or 1) < 2:
        return []
    return ["taskset", "-c", str(cpu)]


def server_argv(name: str, endpoint: str, processes: int = 1) -> list[str]:
    if name == "k8stars":
        return [sys.executable, "-m", "bench.echo_server", "--endpoint", endpoint, "--processes", str(processes)]
    peer: peers.Peer = "node" if name == "@tars/rpc" else "go"
    return [*peers.peer_command(peer, "echo-server"), "--endpoint", endpoint, "--servant", SERVANT]


def client_argv(name: str) -> list[str]:
    if name.startswith("k8stars"):
        return [sys.executable, "-m", "bench.echo_client"]
    return peers.peer_command("node" if name == "@tars/rpc" else "go", "echo-client")


@contextmanager
def running(name: str, cpu: int | None = 0, processes: int = 1) -> Iterator[tuple[int, int]]:
    port = free_port()
    argv = [*pin(cpu), *server_argv(name, f"tcp -h 127.0.0.1 -p {port} -t 600000", processes)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        wait_port(port, proc)
        yield port, proc.pid
    finally:
        stop_process(proc)


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of a process and its children (a server's other processes)."""
    total = cpu_seconds(pid)
    for task in Path(f"/proc/{pid}/task").iterdir():
        total += sum(cpu_seconds(int(c)) for c in (task / "children").read_text().split())
    return total


def load_argv(client: str, port: int, concurrency: int, payload: int, seconds: float, cpu: int | None) -> list[str]:
    return [*pin(cpu), *client_argv(client), f"{SERVANT}@tcp -h 127.0.0.1 -p {port}", "--bench",
            "--concurrency", str(concurrency), "--seconds", str(seconds), "--payload", str(payload)]  # fmt: skip


def load(port: int, concurrency: int, payload: int, seconds: float, client: str = "TarsGo", cpu: int | None = 1,
         cwd: Path = ROOT) -> dict[str, float]:  # fmt: skip
    """One closed-loop run of ``client``; ``client_cpu_s``: the CPU it used."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    argv = load_argv(client, port, concurrency, payload, seconds, cpu)
    res = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, cwd=cwd)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if res.returncode != 0:
        raise SystemExit(f"load generator {client} failed: {res.stderr.strip()[-2000:]}")
    result: dict[str, float] = json.loads(res.stdout)
    result["client_cpu_s"] = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return result


def load_many(port: int, concurrency: int, payload: int, seconds: float) -> dict[str, float]:
    """LOADERS TarsGo clients at once (their own connections), concurrency shared: calls/s summed, worst p99."""
    argv = load_argv("TarsGo", port, max(concurrency // LOADERS, 1), payload, seconds, None)
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(LOADERS)]
    outs = [p.communicate(timeout=seconds + 60) for p in procs]
    if any(p.returncode for p in procs):
        raise SystemExit(f"load generator failed: {[err[-500:] for _, err in outs]}")
    results = [json.loads(out) for out, _ in outs]
    return {
        "qps": sum(r["qps"] for r in results),
        "calls": sum(r["calls"] for r in results),
        "p99_ms": max(r["p99_ms"] for r in results),
        "errors": sum(r["errors"] for r in results),
    }


def cell(r: dict[str, float], per: str) -> str:
    return f"{r['qps']:>6.0f}/s {r[per]:>6.0f}/cpu-s p50 {r['p50_ms']:>5.2f} p99 {r['p99_ms']:>6.2f}"


def table(title: str, rows: list[str], names: list[str], cells: dict[tuple[str, str], str],
          ratios: dict[str, list[str]]) -> None:  # fmt: skip
    print(f"\n{title}\n")
    width = max((len(c) for c in cells.values()), default=10)
    ratio_heads = [f"k8stars ratio {i + 1}" for i in range(max((len(r) for r in ratios.values()), default=0))]
    head = f"{'':>12} | " + " | ".join(f"{n:>{width}}" for n in names)
    print(head + "".join(f" | {h:>14}" for h in ratio_heads))
    print("-" * (len(head) + 17 * len(ratio_heads)))
    for row in rows:
        print(f"{row:>12} | " + " | ".join(f"{cells.get((row, n), '-'):>{width}}" for n in names)
              + "".join(f" | {r:>14}" for r in ratios.get(row, [])))  # fmt: skip


def servers_table(servers: list[str], seconds: float) -> list[dict[str, float]]:
    cases = [(c, p) for c in (1, 64) for p in (10, 1024)]
    results: dict[tuple[str, int, int], dict[str, float]] = {}
    for name in servers:
        with running(name) as (port, pid):
            load(port, 4, 10, 1.0)  # warm up
            for conc, payload in cases:
                cpu = cpu_seconds(pid)
                r = results[(name, conc, payload)] = load(port, conc, payload, seconds)
                r["per_cpu_s"] = r["calls"] / max(cpu_seconds(pid) - cpu, 1e-9)
    others = [n for n in SERVERS[1:] if n in servers and "k8stars" in servers]
    rows = [f"{c} x {p}B" for c, p in cases]
    cells = {(row, n): cell(results[(n, c, p)], "per_cpu_s") for row, (c, p) in zip(rows, cases, strict=True)
             for n in servers}  # fmt: skip
    ratios = {row: [f"{results[('k8stars', c, p)]['qps'] / results[(n, c, p)]['qps']:.2f}x vs {n}" for n in others]
              for row, (c, p) in zip(rows, cases, strict=True)} if others else {}  # fmt: skip
    table(f"servers: echo server on CPU 0, TarsGo client on CPU 1, {seconds:g} s a cell (callers x payload); "
          "per cpu-s: calls per server CPU-second", rows, servers, cells, ratios)  # fmt: skip
    return list(results.values())


def clients_table(clients: list[str], seconds: float, before: Path | None) -> list[dict[str, float]]:
    names = [*clients, *(["k8stars before"] if before else [])]
    results: dict[tuple[str, int], dict[str, float]] = {}
    callers = (1, 64, 512)
    with running("TarsGo") as (port, _):
        load(port, 4, 10, 1.0)  # warm up
        for conc in callers:
            for name in names:  # side by side: each caller count, every client in turn
                r = load(port, conc, 10, seconds, name, cwd=before if name == "k8stars before" and before else ROOT)
                r["per_cpu_s"] = r["calls"] / max(r["client_cpu_s"], 1e-9)
                results[(name, conc)] = r
    rows = [f"{c} callers" for c in callers]
    cells = {(f"{c} callers", n): cell(results[(n, c)], "per_cpu_s") for c in callers for n in names}
    ratios = {}
    if "k8stars" in clients and "TarsGo" in clients:
        for c in callers:
            k, g = results[("k8stars", c)], results[("TarsGo", c)]
            ratios[f"{c} callers"] = [f"{k['qps'] / g['qps']:.2f}x calls/s", f"{g['p99_ms'] / k['p99_ms']:.2f}x p99",
                                      f"{k['per_cpu_s'] / g['per_cpu_s']:.2f}x cpu-s"]  # fmt: skip
    table(f"clients: one TarsGo echo server on CPU 0, each client on CPU 1, 10 B, {seconds:g} s a cell; "
          "per cpu-s: calls per client CPU-second; k8stars vs TarsGo (p99: TarsGo's / ours)",
          rows, names, cells, ratios)  # fmt: skip
    return list(results.values())


def processes_table(seconds: float) -> list[dict[str, float]]:
    counts = sorted({1, 2, cpu_count()})
    names = [f"k8stars x{n}" for n in counts] + ["TarsGo"]
    results: dict[tuple[str, int], dict[str, float]] = {}
    callers = (64, 512)
    for name in names:
        server, n = ("TarsGo", 1) if name == "TarsGo" else ("k8stars", int(name.rsplit("x", 1)[1]))
        with running(server, None, n) as (port, pid):
            load_many(port, 8, 10, 1.0)  # warm up: every process has connections
            for conc in callers:
                cpu = tree_cpu_seconds(pid)
                r = results[(name, conc)] = load_many(port, conc, 10, seconds)
                r["per_cpu_s"] = r["calls"] / max(tree_cpu_seconds(pid) - cpu, 1e-9)
    rows = [f"{c} callers" for c in callers]
    cells = {(f"{c} callers", n): f"{results[(n, c)]['qps']:>6.0f}/s p99 {results[(n, c)]['p99_ms']:>6.2f}"
             for c in callers for n in names}  # fmt: skip
    ratios = {f"{c} callers": [f"{results[(names[-2], c)]['qps'] / results[('TarsGo', c)]['qps']:.2f}x vs TarsGo"]
              for c in callers}  # fmt: skip
    table(f"processes: a k8stars server of N processes (processes=N) beside TarsGo's, unpinned on {cpu_count()} "
          f"cores, {LOADERS} TarsGo clients sharing the callers (and the cores), {seconds:g} s a cell",
          rows, names, cells, ratios)  # fmt: skip
    return list(results.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--tables", default=",".join(TABLES), help="comma-separated subset of " + ", ".join(TABLES))
    parser.add_argument("--servers", default=",".join(SERVERS), help="comma-separated subset of " + ", ".join(SERVERS))
    parser.add_argument("--clients", default=",".join(CLIENTS), help="comma-separated subset of " + ", ".join(CLIENTS))
    parser.add_argument("--k8stars-before", type=Path, help="another checkout: its k8stars client as a column too")
    args = parser.parse_args()
    tables = [t.strip() for t in args.tables.split(",") if t.strip()]
    servers = [n.strip() for n in args.servers.split(",") if n.strip()]
    clients = [n.strip() for n in args.clients.split(",") if n.strip()]
    for given, known, what in ((tables, TABLES, "table"), (servers, SERVERS, "server"), (clients, CLIENTS, "client")):
        if unknown := set(given) - set(known):
            parser.error(f"unknown {what}(s): {', '.join(sorted(unknown))}")
    if "@tars/rpc" in servers + clients:
        peers.node_dir()
    peers.go_binary()
    print(f"bench/rpc on {cpu_count()} cores, Python {sys.version.split()[0]}; TCP_NODELAY on every side")
    results: list[dict[str, float]] = []
    if "servers" in tables:
        results += servers_table(servers, args.seconds)
    if "clients" in tables:
        results += clients_table(clients, args.seconds, args.k8stars_before)
    if "processes" in tables:
        results += processes_table(args.seconds)
    print(f"\nerrors: {sum(r['errors'] for r in results):.0f}")


if __name__ == "__main__":
    main()
