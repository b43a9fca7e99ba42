"""bench/monitor: the monitoring history and the query services.

Measures:
- ingest: StatF entries per second of ``k8stars stat``'s own CPU time (= on one core) with the history on SQLite,
  reports sent over TARS by a load generator on another CPU (``--batch`` entries per reportMicMsg, as TarsGo sends
  every head of an interval in one call; ``--series`` distinct series);
- query: the latency (p50, p95) of ``MonitorQuery.query`` through ``k8stars monitor`` over TARS for one server's
  day per minute (``groupby f_tflag``, the four stat indexs), with ``--servers`` servers' full day in the store;
- the store's size per server per day (the SQLite file after a checkpoint, divided by the servers).

Run: ``python -m bench.monitor [--servers 1000] [--functions 2] [--reports 200] [--batch 100] [--queries 50]``.
Goals: >= 10k entries/s on one core, p95 < 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from k8stars.services.stat.store import STAT, HistoryStore, Row, series_key
from k8stars.tars.protocol.monitorquery import OP, Condition, MonitorQueryProxy, MonitorQueryReq
from k8stars.tars.protocol.statf import StatFProxy, StatMicMsgBody, StatMicMsgHead
from k8stars.tars.rpc import Communicator
from k8stars.testing.procs import free_port, stop_process, wait_port

ROOT = Path(__file__).resolve().parents[1]
DAY = "20260304"
INDEXS = ["succ_count", "timeout_count", "exce_count", "total_time"]
FLUSH = 1.0  # the stat service's --history-flush during the ingest run


def pin(cpu: int) -> list[str]:
    return ["taskset", "-c", str(cpu)] if shutil.which("taskset") and (os.cpu_count() or 1) > 1 else []


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def ingest(tmp: Path, args: argparse.Namespace) -> list[tuple[str, str, str]]:
    stat_port, prop_port = free_port(), free_port()
    argv = [*pin(0), sys.executable, "-m", "k8stars", "stat", "--stat-endpoint", f"tcp -h 127.0.0.1 -p {stat_port}",
            "--property-endpoint", f"tcp -h 127.0.0.1 -p {prop_port}", "--http-port", "-1", "--history", "sqlite",
            "--data-dir", str(tmp / "ingest"), "--history-flush", str(FLUSH), "--log-level", "WARN"]  # fmt: skip
    proc = subprocess.Popen(argv, cwd=ROOT)
    try:
        wait_port(stat_port, proc)
        heads = [StatMicMsgHead(f"Bench.C{i % 50}", f"Bench.S{i}", f"fn{i % 7}", "10.0.0.1", "10.0.0.2", 1, 0)
                 for i in range(args.series)]  # fmt: skip
        body = StatMicMsgBody(10, 1, 0, {5: 8, 10: 2, 50: 1}, 123, 40, 1)
        batches = [{h: body for h in heads[i : i + args.batch]} for i in range(0, len(heads), args.batch)]
        async with Communicator() as comm:
            stat = comm.string_to_proxy(StatFProxy, f"tars.tarsstat.StatObj@tcp -h 127.0.0.1 -p {stat_port}")
            await stat.reportMicMsg(batches[0], False)  # connected, warm
            cpu0, t0 = cpu_seconds(proc.pid), time.perf_counter()
            sem = asyncio.Semaphore(8)

            async def send(i: int) -> None:
                async with sem:
                    await stat.reportMicMsg(batches[i % len(batches)], i % 2 == 0)

            await asyncio.gather(*(send(i) for i in range(args.reports)))
            wall = time.perf_counter() - t0
            await asyncio.sleep(FLUSH * 2)  # its history written too: a flush comes within FLUSH seconds
            cpu = cpu_seconds(proc.pid) - cpu0
        entries = args.reports * args.batch
    finally:
        stop_process(proc)  # SIGTERM: the history is written before it exits
    note = f"{entries} entries, {cpu:.2f} s CPU (the history's writes included), goal >= 10k"
    return [
        ("ingest entries/s (stat CPU)", f"{entries / cpu:,.0f}", note),
        ("ingest entries/s (wall)", f"{entries / wall:,.0f}", f"{args.reports} reportMicMsg x {args.batch}"),
    ]


async def fill(store: HistoryStore, servers: int, functions: int) -> int:
    """A full day per minute for each server: ``functions`` series (one caller each) per minute."""
    series: list[Row] = []
    rows: list[Row] = []
    count = 0
    for s in range(servers):
        for f in range(functions):
            dims = (f"Bench.C{f}", f"Bench.S{s}", f"fn{f}", "10.0.0.1", "10.0.0.2", 10000, 0, "go")
            k = series_key(dims)
            series.append((k, *dims, DAY))
            for minute in range(1440):
                flag = f"{minute // 60 * 100 + minute % 60 + 1:04d}"
                rows.append((DAY, k, flag, "bench000", 100 + minute % 7, minute % 3, 0, 1000 + minute))
        if len(rows) >= 50000:
            await store.write(STAT, series, rows)
            count += len(rows)
            series, rows = [], []
    await store.write(STAT, series, rows)
    return count + len(rows)


async def query(tmp: Path, args: argparse.Namespace) -> list[tuple[str, str, str]]:
    data = tmp / "query"
    store = HistoryStore("sqlite", data_dir=data)
    await store.open()
    t0 = time.perf_counter()
    rows = await fill(store, args.servers, args.functions)
    filled = time.perf_counter() - t0
    await store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    await store.close()
    size = sum(p.stat().st_size for p in data.iterdir() if p.name.startswith("monitor.db"))
    stat_port, prop_port = free_port(), free_port()
    argv = [*pin(0), sys.executable, "-m", "k8stars", "monitor", "--stat-endpoint", f"tcp -h 127.0.0.1 -p {stat_port}",
            "--property-endpoint", f"tcp -h 127.0.0.1 -p {prop_port}", "--http-port", "-1", "--data-dir", str(data),
            "--log-level", "WARN"]  # fmt: skip
    proc = subprocess.Popen(argv, cwd=ROOT)
    times: list[float] = []
    try:
        wait_port(stat_port, proc, timeout=60)
        async with Communicator() as comm:
            q = comm.string_to_proxy(MonitorQueryProxy, f"tars.tarsquerystat.QueryObj@tcp -h 127.0.0.1 -p {stat_port}")
            q = q.tars_options(timeout_ms=30000)
            for i in range(args.queries + 3):
                server = f"Bench.S{random.randrange(args.servers)}"
                req = MonitorQueryReq(date=DAY, conditions=[Condition("slave_name", OP.EQ, server)], indexs=INDEXS,
                                      groupby=["f_tflag"])  # fmt: skip
                t = time.perf_counter()
                ret, rsp = await q.query(req)
                if i >= 3:  # the first ones warm the page cache
                    times.append(time.perf_counter() - t)
                assert ret == 0 and len(rsp.result) == 1440, (ret, rsp.msg, len(rsp.result))
    finally:
        stop_process(proc)
    ms = [t * 1000 for t in times]
    per_server = size / args.servers
    return [("store fill rows/s", f"{rows / filled:,.0f}", f"{rows:,} rows ({args.servers} servers x "
             f"{args.functions} series x 1440 min)"),
            ("query p50", f"{percentile(ms, 50):.1f} ms", "one server's day per minute, 4 indexs, over TARS"),
            ("query p95", f"{percentile(ms, 95):.1f} ms", f"{len(ms)} queries, goal < 100 ms"),
            ("store size / server / day", f"{per_server / 1024:,.0f} KiB", f"{args.functions} series per server, "
             f"SQLite {size / 2**20:,.0f} MiB in all")]  # fmt: skip


async def run(args: argparse.Namespace) -> list[tuple[str, str, str]]:
    with tempfile.TemporaryDirectory(prefix="k8stars-bench-monitor-") as tmp:
        return [*await ingest(Path(tmp), args), *await query(Path(tmp), args)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", type=int, default=1000)
    parser.add_argument("--functions", type=int, default=2, help="Series per server per minute in the store.")
    parser.add_argument("--series", type=int, default=2000, help="Distinct series the ingest reports cover.")
    parser.add_argument("--batch", type=int, default=100, help="Entries per reportMicMsg.")
    parser.add_argument("--reports", type=int, default=500, help="reportMicMsg calls of the ingest run.")
    parser.add_argument("--queries", type=int, default=50)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    results = asyncio.run(run(args))
    width = max(len(r[0]) for r in results)
    vwidth = max(len(r[1]) for r in results)
    print(f"{'measure':<{width}}  {'value':<{vwidth}}  note")
    print(f"{'-' * width}  {'-' * vwidth}  ----")
    for name, value, note in results:
        print(f"{name:<{width}}  {value:<{vwidth}}  {note}")


if __name__ == "__main__":
    main()
