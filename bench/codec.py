"""Codec throughput: k8stars (C accelerator and pure Python) beside @tars/stream (Node) and TarsGo, in one run.

    python -m bench.codec [--seconds S] [--repeat N] [--no-peers] [--json]

Two workloads, the same in every implementation (the peers' ``codec bench`` builds them too):

* ``request_packet``: a RequestPacket (iVersion 1, iRequestId 1, servant "Test.EchoServer.EchoObj", func "echo",
  sBuffer = the 10-byte encoding of the string "hello123" at tag 1, iTimeout 3000, empty context and status): 58 bytes;
* ``endpoint_list_100``: ``struct EndpointList { 0 require vector<tars::EndpointF> eps; }`` holding 100
  EndpointF{host "127.0.0.1", port 10000+i, timeout 60000, istcp 1}.

Encode is object -> bytes of the bare field sequence, decode is bytes -> a new object, each timed in batches of 256
for S seconds (as the peers do). k8stars writes C++-style (optional fields equal to their default left out, like
TarsGo; @tars/stream writes every field, hence its larger endpoint list); the "all fields" row is k8stars with
``skip_defaults=False``. Ratios are k8stars / peer: above 1.0 k8stars is faster.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any, ClassVar

from k8stars.tars import codec
from k8stars.tars.protocol.endpointf import EndpointF
from k8stars.tars.protocol.requestf import RequestPacket

WORKLOADS = ("request_packet", "endpoint_list_100")
TITLES = {"request_packet": "RequestPacket", "endpoint_list_100": "100 x EndpointF"}
PEERS = (("node", "@tars/stream"), ("go", "TarsGo"))


@dataclasses.dataclass(slots=True)
class EndpointList(codec.Struct):
    """``struct EndpointList { 0 require vector<tars::EndpointF> eps; };`` as tars2py generates it."""

    __tars_name__: ClassVar[str] = "bench.EndpointList"
    eps: list[EndpointF] = dataclasses.field(default_factory=list)


EndpointList.__tars_fields__ = (codec.Field(0, "eps", codec.vector_of(codec.struct_of(EndpointF)), True),)


def request_packet() -> RequestPacket:
    return RequestPacket(
        iVersion=1,
        iRequestId=1,
        sServantName="Test.EchoServer.EchoObj",
        sFuncName="echo",
        sBuffer=codec.get_backend("python").encode_value(codec.STRING, "hello123", 1),
        iTimeout=3000,
    )


def endpoint_list() -> EndpointList:
    return EndpointList([EndpointF(host="127.0.0.1", port=10000 + i, timeout=60000, istcp=1) for i in range(100)])


def timed(seconds: float, fn: Callable[[], object]) -> float:
    """Calls of ``fn`` per second, in batches of 256 until ``seconds`` have passed."""
    clock = time.perf_counter
    start = clock()
    deadline = start + seconds
    n = 0
    now = start
    while now < deadline:
        for _ in range(256):
            fn()
        n += 256
        now = clock()
    return n / (now - start)


def encoder(encode: Callable[..., bytes], obj: object, skip_defaults: bool) -> Callable[[], bytes]:
    """The call an application makes (functools.partial with keywords would add its own overhead)."""
    if skip_defaults:
        return lambda: encode(obj)
    return lambda: encode(obj, skip_defaults=False)


def decoder(decode: Callable[..., object], cls: type, data: bytes) -> Callable[[], object]:
    return lambda: decode(cls, data)


def bench_k8stars(backend: str, seconds: float, skip_defaults: bool = True) -> dict[str, dict[str, float]]:
    b = codec.get_backend(backend)
    out: dict[str, dict[str, float]] = {}
    for name, obj in (("request_packet", request_packet()), ("endpoint_list_100", endpoint_list())):
        encode, decode, cls = b.encode, b.decode, type(obj)
        data = encode(obj, skip_defaults=skip_defaults)
        if decode(cls, data) != obj:
            raise AssertionError(f"{backend}: {name} does not round-trip")
        if data != codec.get_backend("python").encode(obj, skip_defaults=skip_defaults):
            raise AssertionError(f"{backend}: {name} bytes differ from the reference codec")
        enc = timed(seconds, encoder(encode, obj, skip_defaults))
        dec = timed(seconds, decoder(decode, cls, data))
        out[name] = {"encode_per_s": enc, "decode_per_s": dec, "bytes": len(data)}
    return out


def bench_peer(peer: str, seconds: float) -> tuple[dict[str, Any] | None, str]:
    """The peer's own ``codec bench`` (built/installed on first use), or None and why not."""
    try:
        from k8stars.testing.peers import run_codec
    except ImportError as e:
        return None, f"k8stars.testing.peers unavailable ({e})"
    try:
        reply = run_codec(peer, "bench", {"seconds": seconds}, timeout=1800 + 10 * seconds)  # type: ignore[arg-type]
    except Exception as e:  # a missing toolchain or a failed build only costs this row
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        return None, f"{type(e).__name__}: {first[:200]}"
    return reply, str(reply.get("peer", peer))


def median_runs(runs: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    return {
        w: {k: statistics.median(r[w][k] for r in runs) for k in ("encode_per_s", "decode_per_s", "bytes")}
        for w in WORKLOADS
    }


def fmt_rate(x: float | None) -> str:
    return "n/a" if x is None else f"{x:,.0f}"


def fmt_ratio(a: float | None, b: float | None) -> str:
    return "n/a" if a is None or b is None or b <= 0 else f"{a / b:.2f}x"


def table(rows: list[tuple[str, dict[str, dict[str, float]] | None]], seconds: float, repeat: int) -> str:
    peers = {label: res for label, res in rows if not label.startswith("k8stars")}
    node = next((res for label, res in peers.items() if label.startswith("@tars/stream")), None)
    go = next((res for label, res in peers.items() if label.startswith("TarsGo")), None)
    head = ("workload", "implementation", "bytes", "encode/s", "decode/s",
            "enc/node", "dec/node", "enc/go", "dec/go")  # fmt: skip
    lines: list[tuple[str, ...]] = [head]
    for w in WORKLOADS:
        for i, (label, res) in enumerate(rows):
            r = res[w] if res is not None else None
            enc = r["encode_per_s"] if r else None
            dec = r["decode_per_s"] if r else None
            ratios = ("", "", "", "")
            if label.startswith("k8stars"):
                n = node[w] if node else None
                g = go[w] if go else None
                ratios = (
                    fmt_ratio(enc, n["encode_per_s"] if n else None),
                    fmt_ratio(dec, n["decode_per_s"] if n else None),
                    fmt_ratio(enc, g["encode_per_s"] if g else None),
                    fmt_ratio(dec, g["decode_per_s"] if g else None),
                )
            size = f"{r['bytes']:.0f}" if r else "n/a"
            lines.append((TITLES[w] if i == 0 else "", label, size, fmt_rate(enc), fmt_rate(dec), *ratios))
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    out = []
    for j, line in enumerate(lines):
        cells = [c.ljust(widths[i]) if i < 2 else c.rjust(widths[i]) for i, c in enumerate(line)]
        out.append("  ".join(cells).rstrip())
        if j == 0:
            out.append("  ".join("-" * wd for wd in widths))
    cpus = os.cpu_count() or 0
    info = (f"codec throughput: {seconds:g} s per measurement, median of {repeat}; Python "
            f"{platform.python_version()} on {platform.machine()} ({cpus} CPUs); k8stars backends: "
            f"{', '.join(codec.available_backends())}")  # fmt: skip
    return "\n".join([info, "", *out])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.codec", description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=1.0, help="length of each measurement (default 1)")
    ap.add_argument("--repeat", type=int, default=1, help="runs of everything; the table shows medians")
    ap.add_argument("--no-peers", action="store_true", help="measure k8stars only (peers show n/a)")
    ap.add_argument("--json", action="store_true", help="print the raw results as JSON instead of the table")
    args = ap.parse_args(argv)
    if not (0 < args.seconds <= 600) or args.repeat < 1:
        ap.error("--seconds must be in (0, 600] and --repeat at least 1")

    candidates: list[tuple[str, Callable[[], dict[str, dict[str, float]] | None]]] = []
    if "c" in codec.available_backends():
        candidates.append(("k8stars C", lambda: bench_k8stars("c", args.seconds)))
        candidates.append(("k8stars C, all fields", lambda: bench_k8stars("c", args.seconds, skip_defaults=False)))
    else:
        candidates.append(("k8stars C (not built)", lambda: None))
    candidates.append(("k8stars pure Python", lambda: bench_k8stars("python", args.seconds)))

    notes: list[str] = []
    peer_labels: dict[str, str] = {}
    for peer, title in PEERS:
        label = title

        def run(peer: str = peer, title: str = title) -> dict[str, dict[str, float]] | None:
            if args.no_peers:
                peer_labels[title] = f"{title} (skipped)"
                return None
            reply, what = bench_peer(peer, args.seconds)
            if reply is None:
                peer_labels[title] = f"{title} (n/a)"
                notes.append(f"{title}: n/a - {what}")
                return None
            peer_labels[title] = what.replace("node @tars/stream", "@tars/stream").replace("go TarsGo", "TarsGo")
            return {w: {k: float(v) for k, v in reply[w].items()} for w in WORKLOADS}

        candidates.append((label, run))

    results: dict[str, list[dict[str, dict[str, float]]]] = {}
    missing: set[str] = set()
    for _ in range(args.repeat):
        for label, fn in candidates:
            if label in missing:
                continue
            print(f"measuring {label} ...", file=sys.stderr, flush=True)
            res = fn()
            if res is None:
                missing.add(label)
            else:
                results.setdefault(label, []).append(res)

    rows: list[tuple[str, dict[str, dict[str, float]] | None]] = []
    for label, _ in candidates:
        shown = peer_labels.get(label, label)
        rows.append((shown, median_runs(results[label]) if label in results else None))

    if args.json:
        print(json.dumps({label: res for label, res in rows}, indent=2))
    else:
        print(table(rows, args.seconds, args.repeat))
        for note in notes:
            print(note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
