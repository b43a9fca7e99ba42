"""bench/registry: the naming service at 10k servants x 10 endpoints.

Measures, against ``k8stars registry`` processes (each pinned to CPU 0; the load generator runs on CPU 1):
- lookups/s (findObjectByIdInSameGroup, what every client calls) and their p50/p99 latency, and lookups per second
  of the registry's own CPU time (= on one core);
- RSS of the registry holding the whole directory;
- the delay from a keepAlive that changes a state to the first lookup answering with the change: on the replica
  that took the keepAlive (SQLite), and on another replica over one MariaDB (when mariadbd is installed);
- keepAlive calls/s at 1 and 32 callers from a TarsGo load generator (bench/go_keepalive, on CPU 1) cycling over every
  registered server, on SQLite and on MariaDB, beside K8STARS's registry measured with the same kind of load (issue 19:
  its registry is not on the Go module proxy, so it cannot be rebuilt here).

Run: ``python -m bench.registry [--servants 10000] [--endpoints 10] [--seconds 5] [--keepalive-only]``. Goals: >= 20k
lookups/s on one core, p99 keepAlive->lookup delay <= 1 s, <= 200 MB, keepAlive >= 10x K8STARS's (>= 25k/s at 32).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from k8stars.tars.packet import RequestPacket, encode_request, peek_request_id
from k8stars.tars.protocol.queryf import QueryF_interface, QueryFProxy
from k8stars.tars.protocol.tarsregistry import AdapterConf, keepAliveReq, onStartupReq, tarsregistryProxy
from k8stars.tars.rpc import Communicator
from k8stars.testing.peers import go_program
from k8stars.testing.procs import free_port, stop_process, wait_port

QUERY = "tars.tarsregistry.QueryObj"
OBJS_PER_SERVER = 10
CALLERS = (1, 32)
K8STARS_KEEPALIVE = {1: (2000, 2600), 32: (2500, 3800)}  # calls/s on MariaDB, issue 19 (low, high of its runs)
GO_KEEPALIVE = Path(__file__).resolve().parent / "go_keepalive"


def pin(cpu: int) -> list[str]:
    return ["taskset", "-c", str(cpu)] if shutil.which("taskset") and (os.cpu_count() or 1) > 1 else []


def servant(i: int) -> str:
    return f"Bench.S{i // OBJS_PER_SERVER}.Obj{i % OBJS_PER_SERVER}"


def node(n: int) -> str:
    return f"10.{1 + n // 250}.{n % 250}.1"


# ------------------------------------------------------------------------------------------------- processes


@contextmanager
def registry(store_args: list[str], host: str = "127.0.0.1") -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    port = free_port(host)
    argv = [*pin(0), sys.executable, "-m", "k8stars", "registry", "--host", host, "--port", str(port),
            "--http-port", "0", "--heartbeat-timeout", "3600", *store_args]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        wait_port(port, proc, host=host, timeout=120)
        yield port, proc
    finally:
        stop_process(proc, timeout=30)


@contextmanager
def mariadb(base: Path) -> Iterator[str | None]:
    """A private MariaDB on a free loopback port (None when it is not installed)."""
    server = shutil.which("mariadbd") or shutil.which("mysqld") or _sbin("mariadbd") or _sbin("mysqld")
    install = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
    if not server or not install:
        yield None
        return
    as_root = ["--user=root"] if os.geteuid() == 0 else []
    sizes = ["--innodb-log-file-size=32M", "--innodb-buffer-pool-size=128M"]
    subprocess.run([install, "--no-defaults", f"--datadir={base}/data", "--auth-root-authentication-method=normal",
                    "--skip-test-db", *as_root, *sizes], check=True, capture_output=True, timeout=120)  # fmt: skip
    port = free_port()
    argv = [server, "--no-defaults", f"--datadir={base}/data", f"--socket={base}/sock", f"--port={port}",
            "--bind-address=127.0.0.1", f"--pid-file={base}/pid", "--skip-log-bin", "--skip-name-resolve", *sizes,
            *as_root]  # fmt: skip
    with open(base / "mariadbd.log", "wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        wait_port(port, proc, timeout=60)
        time.sleep(0.5)
        yield f"mysql://root@127.0.0.1:{port}/db_tars"
    finally:
        stop_process(proc, timeout=30)


def _sbin(name: str) -> str | None:
    path = f"/usr/sbin/{name}"
    return path if os.access(path, os.X_OK) else None


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> tuple[float, float]:
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(status["VmRSS"].split()[0]) / 1024, int(status["VmHWM"].split()[0]) / 1024


# ------------------------------------------------------------------------------------------------- steps


async def populate(port: int, servants: int, endpoints: int, host: str = "127.0.0.1", concurrency: int = 32) -> float:
    """servants/10 servers with 10 objects each, on ``endpoints`` nodes: every servant gets ``endpoints`` endpoints.
    Returns registrations per second."""
    jobs = [(s, n) for s in range(servants // OBJS_PER_SERVER) for n in range(endpoints)]
    async with Communicator() as comm:
        reg = comm.string_to_proxy(tarsregistryProxy, f"tars.tarsregistry.Registry@tcp -h {host} -p {port}")
        reg = reg.tars_options(timeout_ms=60000)

        async def worker(mine: list[tuple[int, int]]) -> None:
            for s, n in mine:
                adapters = [AdapterConf(f"Bench.S{s}.Obj{o}", f"tcp -h {node(n)} -p {20000 + o} -t 60000")
                            for o in range(OBJS_PER_SERVER)]  # fmt: skip
                await reg.onStartup(onStartupReq(node(n), "Bench", f"S{s}", adapters=adapters))

        start = time.perf_counter()
        await asyncio.gather(*(worker(jobs[i::concurrency]) for i in range(concurrency)))
        return len(jobs) / (time.perf_counter() - start)


@dataclass
class LoadResult:
    lookups: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: int = 0


class _LookupConnection(asyncio.Protocol):
    """Keeps ``depth`` pre-encoded lookups in flight on one connection until ``deadline``."""

    def __init__(self, frames: list[bytes], ids: list[int], depth: int, deadline: float, result: LoadResult) -> None:
        self.frames, self.ids, self.depth, self.deadline, self.result = frames, ids, depth, deadline, result
        self.sent: dict[int, float] = {}
        self.next = 0
        self.buf = bytearray()
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        for _ in range(self.depth):
            self._send()

    def _send(self) -> None:
        i = self.next % len(self.frames)
        self.next += 1
        self.sent[self.ids[i]] = time.perf_counter()
        assert self.transport is not None
        self.transport.write(self.frames[i])

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        now = time.perf_counter()
        pos = 0
        while len(buf) - pos >= 4:
            n = int.from_bytes(buf[pos : pos + 4], "big")
            if len(buf) - pos < n:
                break
            rid = peek_request_id(bytes(buf[pos + 4 : pos + n]))
            pos += n
            self.result.latencies.append(now - self.sent.pop(rid))
            self.result.lookups += 1
            if now < self.deadline:
                self._send()
        del buf[:pos]
        if not self.sent and not self.done.done():
            self.done.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


async def lookup_load(port: int, servants: int, seconds: float, connections: int, depth: int) -> LoadResult:
    op = QueryF_interface["findObjectByIdInSameGroup"]
    rng = random.Random(1)
    result = LoadResult()
    loop = asyncio.get_running_loop()
    deadline = time.perf_counter() + seconds
    conns = []
    for c in range(connections):
        ids = [c * 100000 + i + 1 for i in range(max(4 * depth, 512))]
        frames = [
            encode_request(RequestPacket(
                iVersion=1, cPacketType=0, iMessageType=0, iRequestId=rid, sServantName=QUERY,
                sFuncName="findObjectByIdInSameGroup", sBuffer=op.encode_args((servant(rng.randrange(servants)),)),
                iTimeout=3000, context={}, status={},
            ))
            for rid in ids
        ]  # fmt: skip
        _, proto = await loop.create_connection(
            lambda f=frames, i=ids: _LookupConnection(f, i, depth, deadline, result), "127.0.0.1", port
        )
        conns.append(proto)
    start = time.perf_counter()
    await asyncio.gather(*(p.done for p in conns))
    result.seconds = time.perf_counter() - start
    for p in conns:
        if p.transport is not None:
            p.transport.close()
    return result


def keepalive_load(port: int, keys: Path, callers: int, seconds: float, host: str = "127.0.0.1") -> dict[str, float]:
    """keepAlive calls/s (and p50/p99 ms) of ``callers`` TarsGo callers, cycling over the servers of ``keys``."""
    argv = [*pin(1), str(go_program(GO_KEEPALIVE, "keepalivebench")), "--proxy",
            f"tars.tarsregistry.Registry@tcp -h {host} -p {port}", "--keys", str(keys), "--concurrency",
            str(callers), "--seconds", str(seconds)]  # fmt: skip
    res = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    if res.returncode != 0:
        raise SystemExit(f"keepAlive load generator failed: {res.stderr.strip()[-2000:]}")
    out: dict[str, float] = json.loads(res.stdout)
    if out["errors"]:
        raise SystemExit(f"keepAlive errors: {out['errors']:.0f} ({out.get('first_error')})")
    return out


def write_keys(path: Path, servants: int, endpoints: int) -> Path:
    """Every server populate() registered, as the load generator's "node application server" lines."""
    path.write_text("".join(f"{node(n)} Bench S{s}\n" for s in range(servants // OBJS_PER_SERVER)
                            for n in range(endpoints)))  # fmt: skip
    return path


async def keepalive_rows(port: int, pid: int, keys: Path, seconds: float, store: str, host: str = "127.0.0.1"
                         ) -> list[tuple[str, str, str]]:  # fmt: skip
    """keepAlive calls/s beside K8STARS's, and per second of the registry's CPU (steadier on a busy machine)."""
    rows = []
    for callers in CALLERS:
        cpu = cpu_seconds(pid)
        r = await asyncio.to_thread(keepalive_load, port, keys, callers, seconds, host)
        per_cpu = r["calls"] / max(cpu_seconds(pid) - cpu, 1e-9)
        low, high = K8STARS_KEEPALIVE[callers]
        vs = f"K8STARS {low / 1000:.1f}-{high / 1000:.1f}k: {r['qps'] / high:.1f}-{r['qps'] / low:.1f}x"
        latency = f"p50 {r['p50_ms']:.2f} / p99 {r['p99_ms']:.2f} ms"
        rows.append((f"keepAlive/s, {callers} caller(s), {store}", f"{r['qps']:,.0f}",
                     f"{per_cpu:,.0f} per registry CPU-s; {latency}; {vs}"))  # fmt: skip
    return rows


async def check_answers(port: int, servants: int, endpoints: int) -> None:
    async with Communicator() as comm:
        q = comm.string_to_proxy(QueryFProxy, f"{QUERY}@tcp -h 127.0.0.1 -p {port}")
        for i in (0, servants // 2, servants - 1):
            res = await q.findObjectByIdInSameGroup(servant(i))
            if len(res.activeEp) != endpoints:
                raise SystemExit(f"{servant(i)}: {len(res.activeEp)} active endpoints, expected {endpoints}")


async def snapshot(port: int, servants: int) -> list[tuple[object, ...]]:
    """Answers for every 50th servant, to compare across a restart."""
    async with Communicator() as comm:
        q = comm.string_to_proxy(QueryFProxy, f"{QUERY}@tcp -h 127.0.0.1 -p {port}")
        return [tuple(await q.findObjectById4Any(servant(i))) for i in range(0, servants, 50)]


async def change_delay(write_port: int, read_port: int, samples: int, servants: int, endpoints: int,
                       write_host: str = "127.0.0.1", read_host: str = "127.0.0.1") -> list[float]:  # fmt: skip
    """Seconds from sending a state-changing keepAlive (to one replica) to the first lookup answering with it
    (from ``read_port``, possibly another replica)."""
    rng = random.Random(2)
    delays = []
    async with Communicator() as comm:
        reg = comm.string_to_proxy(tarsregistryProxy, f"tars.tarsregistry.Registry@tcp -h {write_host} -p {write_port}")
        q = comm.string_to_proxy(QueryFProxy, f"{QUERY}@tcp -h {read_host} -p {read_port}")
        for k in range(samples):
            s, n = rng.randrange(servants // OBJS_PER_SERVER), rng.randrange(endpoints)
            state = "inactive" if k % 2 == 0 else "active"
            host = node(n)
            target = f"Bench.S{s}.Obj0"
            before = {e.host for e in (await q.findObjectById4Any(target)).activeEp}
            want_active = state == "active"
            if (host in before) == want_active:
                state = "active" if state == "inactive" else "inactive"
                want_active = not want_active
            await asyncio.sleep(rng.uniform(0, 0.3))  # not in step with the replicas' polling
            start = time.perf_counter()
            sent = asyncio.create_task(reg.keepAlive(keepAliveReq(host, state, "Bench", f"S{s}")))
            while True:
                active = {e.host for e in (await q.findObjectById4Any(target)).activeEp}
                if (host in active) == want_active:
                    delays.append(time.perf_counter() - start)
                    break
                if time.perf_counter() - start > 10:
                    raise SystemExit(f"{target}@{host}: change not visible after 10 s")
            await sent
    return delays


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(q * len(ordered) + 0.5) - 1))]


def ms(values: list[float], qs: tuple[float, ...] = (0.5, 0.99, 1.0), digits: int = 1) -> str:
    return " / ".join(f"{pct(values, q) * 1000:.{digits}f}" for q in qs) + " ms"


# ------------------------------------------------------------------------------------------------- main


async def run(args: argparse.Namespace) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="bench-registry-") as tmp:
        keys = write_keys(Path(tmp) / "keys", args.servants, args.endpoints)
        with registry(["--data-dir", f"{tmp}/sqlite"]) as (port, proc):
            rate = await populate(port, args.servants, args.endpoints)
            rows.append(("registrations (onStartup, 10 adapters, SQLite)", f"{rate:,.0f}/s", ""))
            await check_answers(port, args.servants, args.endpoints)
            rows += await keepalive_rows(port, proc.pid, keys, args.seconds, "SQLite")
            if args.keepalive_only:
                return rows + (await replicas(Path(tmp), args, keys) if args.mysql else [])
            rss, _ = rss_mb(proc.pid)
            cpu0 = cpu_seconds(proc.pid)
            res = await lookup_load(port, args.servants, args.seconds, args.connections, args.depth)
            cpu = cpu_seconds(proc.pid) - cpu0
            _, peak = rss_mb(proc.pid)
            per_s = res.lookups / res.seconds
            rows += [
                ("lookups/s (InSameGroup, 10 endpoints each)", f"{per_s:,.0f}",
                 f"{args.connections} conns x {args.depth} in flight"),
                ("lookups per registry CPU-second (one core)", f"{res.lookups / cpu:,.0f}", ">= 20,000"),
                ("lookup latency p50 / p99", ms(res.latencies, (0.5, 0.99), 2), "under full load"),
                ("RSS after load (peak)", f"{rss:.0f} MB ({peak:.0f} MB)",
                 f"<= 200 MB; {args.servants:,} servants x {args.endpoints}"),
            ]  # fmt: skip
            single = await change_delay(port, port, args.samples, args.servants, args.endpoints)
            rows.append(("keepAlive -> changed lookup, same replica p50 / p99 / max", ms(single), "<= 1 s"))
            before = await snapshot(port, args.servants)
        start = time.perf_counter()
        with registry(["--data-dir", f"{tmp}/sqlite"]) as (port, proc):  # a restart loads everything back
            if await snapshot(port, args.servants) != before:
                raise SystemExit("the registry answers differently after a restart")
            took = time.perf_counter() - start
            rss, peak = rss_mb(proc.pid)
            value = f"{took:.1f} s ({rss:.0f} MB, {peak:.0f} MB)"
            rows.append(
                ("restart: serving everything again after (RSS, peak)", value, "SQLite, full load of the store")
            )
        if args.mysql:
            rows += await replicas(Path(tmp), args, keys)
    return rows


async def replicas(tmp: Path, args: argparse.Namespace, keys: Path) -> list[tuple[str, str, str]]:
    (tmp / "mariadb").mkdir()
    with mariadb(tmp / "mariadb") as dsn:
        if dsn is None:
            return [("two replicas over MariaDB", "skipped", "mariadbd not installed")]
        store = ["--store", "mysql", "--dsn", dsn]
        with registry(store, "127.0.0.2") as (a, proc_a), registry(store, "127.0.0.3") as (b, _):
            rate = await populate(a, args.servants, args.endpoints, host="127.0.0.2")
            beats = await keepalive_rows(a, proc_a.pid, keys, args.seconds, "MariaDB", "127.0.0.2")
            if args.keepalive_only:
                return [("registrations (onStartup, 10 adapters, MariaDB)", f"{rate:,.0f}/s", ""), *beats]
            await asyncio.sleep(1.0)
            delays = await change_delay(a, b, args.samples, args.servants, args.endpoints, "127.0.0.2", "127.0.0.3")
            rss, _ = rss_mb(proc_a.pid)
            return [
                ("registrations (onStartup, 10 adapters, MariaDB)", f"{rate:,.0f}/s", ""),
                *beats,
                ("keepAlive on A -> changed lookup on B p50 / p99 / max",
                 ms(delays, digits=0),
                 "<= 1 s (B polls every 250 ms)"),
                ("RSS of a replica over MariaDB", f"{rss:.0f} MB", "<= 200 MB"),
            ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servants", type=int, default=10000)
    parser.add_argument("--endpoints", type=int, default=10, help="endpoints per servant (nodes)")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of the lookup load")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--depth", type=int, default=16, help="lookups in flight per connection")
    parser.add_argument("--samples", type=int, default=200, help="keepAlive -> lookup delay samples")
    parser.add_argument("--no-mysql", dest="mysql", action="store_false", help="skip the two-replica MariaDB run")
    parser.add_argument("--keepalive-only", action="store_true", help="registrations and keepAlive calls/s only")
    args = parser.parse_args()
    if args.servants % OBJS_PER_SERVER:
        parser.error(f"--servants must be a multiple of {OBJS_PER_SERVER}")
    if len(pin(1)) and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {1})
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    rows = asyncio.run(run(args))
    width = max(len(r[0]) for r in rows)
    vwidth = max(len(r[1]) for r in rows)
    print(f"{'measure':<{width}}  {'value':<{vwidth}}  note")
    print(f"{'-' * width}  {'-' * vwidth}  ----")
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:<{vwidth}}  {note}")
    print(
        f"\npython {sys.version.split()[0]}, {os.cpu_count()} CPUs, registry on CPU 0, load on CPU 1", file=sys.stderr
    )


if __name__ == "__main__":
    main()
