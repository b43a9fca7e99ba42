"""Codec throughput: k8stars (C accelerator and pure Python) beside @tars/stream (Node) and TarsGo, in one run.

    python -m bench.codec [--seconds S] [--repeat N] [--clock cpu|wall] [--python PATH ...] [--no-peers] [--json]

Two workloads, the same in every implementation (the peers' ``codec bench`` builds them too):

* ``request_packet``: a RequestPacket (iVersion 1, iRequestId 1, servant "Test.EchoServer.EchoObj", func "echo",
  sBuffer = the 10-byte encoding of the string "hello123" at tag 1, iTimeout 3000, empty context and status): 58 bytes;
* ``endpoint_list_100``: ``struct EndpointList { 0 require vector<tars::EndpointF> eps; }`` holding 100
  EndpointF{host "127.0.0.1", port 10000+i, timeout 60000, istcp 1}.

Encode is object -> bytes of the bare field sequence, decode is bytes -> a new object, each timed in batches of 256
for S seconds (as the peers do). k8stars writes C++-style (optional fields equal to their default left out, like
TarsGo; @tars/stream writes every field, hence its larger endpoint list); the "all fields" row is k8stars with
``skip_defaults=False``. Ratios are k8stars / peer: above 1.0 k8stars is faster.

Rates are calls per second of CPU time of the measuring process by default (``--clock cpu``: per core, every
thread counted, so TarsGo's and V8's garbage collector threads too, and what other work on a shared machine takes
from the wall clock does not count), or per second of wall time (``--clock wall``). ``--python PATH`` (repeatable)
measures k8stars under other interpreters as well, each in a subprocess, interleaved with the peers in every round;
each needs the accelerator built for it (``PATH -m pip install -e .`` or ``PATH setup.py build_ext --inplace``:
the ``cpython-3XX`` suffixes of the extension coexist).
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


def timed(seconds: float, fn: Callable[[], object]) -> tuple[float, float]:
    """Calls of ``fn`` per second of wall time and per second of CPU time (the process's), in batches of 256 until
    ``seconds`` have passed."""
    clock, cpu_clock = time.perf_counter, time.process_time
    start, cpu0 = clock(), cpu_clock()
    deadline = start + seconds
    n = 0
    now = start
    while now < deadline:
        for _ in range(256):
            fn()
        n += 256
        now = clock()
    cpu = cpu_clock() - cpu0
    return n / (now - start), n / (cpu if cpu > 0 else now - start)


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
        enc, enc_cpu = timed(seconds, encoder(encode, obj, skip_defaults))
        dec, dec_cpu = timed(seconds, decoder(decode, cls, data))
        out[name] = {"encode_per_s": enc, "decode_per_s": dec, "encode_per_cpu_s": enc_cpu,
                     "decode_per_cpu_s": dec_cpu, "bytes": len(data)}  # fmt: skip
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
    return {w: {k: statistics.median(r[w][k] for r in runs) for k in runs[0][w]} for w in WORKLOADS}


def fmt_rate(x: float | None) -> str:
    return "n/a" if x is None else f"{x:,.0f}"


def fmt_ratio(a: float | None, b: float | None) -> str:
    return "n/a" if a is None or b is None or b <= 0 else f"{a / b:.2f}x"


def rates(r: dict[str, float] | None, clock: str) -> tuple[float | None, float | None]:
    """(encode, decode) per second of ``clock``; a peer without CPU figures (an older build) shows n/a."""
    if r is None:
        return None, None
    suffix = "_per_cpu_s" if clock == "cpu" else "_per_s"
    return r.get("encode" + suffix), r.get("decode" + suffix)


def table(rows: list[tuple[str, dict[str, dict[str, float]] | None]], seconds: float, repeat: int, clock: str,
          pythons: list[str]) -> str:  # fmt: skip
    peers = {label: res for label, res in rows if not label.startswith("k8stars")}
    node = next((res for label, res in peers.items() if label.startswith("@tars/stream")), None)
    go = next((res for label, res in peers.items() if label.startswith("TarsGo")), None)
    head = ("workload", "implementation", "bytes", "encode/s", "decode/s",
            "enc/node", "dec/node", "enc/go", "dec/go")  # fmt: skip
    lines: list[tuple[str, ...]] = [head]
    for w in WORKLOADS:
        for i, (label, res) in enumerate(rows):
            r = res[w] if res is not None else None
            enc, dec = rates(r, clock)
            ratios = ("", "", "", "")
            if label.startswith("k8stars"):
                n_enc, n_dec = rates(node[w] if node else None, clock)
                g_enc, g_dec = rates(go[w] if go else None, clock)
                ratios = (fmt_ratio(enc, n_enc), fmt_ratio(dec, n_dec), fmt_ratio(enc, g_enc), fmt_ratio(dec, g_dec))
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
    per = "per CPU second of each process (per core)" if clock == "cpu" else "per second of wall time"
    info = (f"codec throughput, calls {per}: {seconds:g} s per measurement, median of {repeat}; Python "
            f"{', '.join(pythons)} on {platform.machine()} ({cpus} CPUs); k8stars backends: "
            f"{', '.join(codec.available_backends())}")  # fmt: skip
    return "\n".join([info, "", *out])


Results = dict[str, dict[str, dict[str, float]]]


def k8stars_rows(seconds: float, suffix: str = "") -> list[tuple[str, Callable[[], dict[str, Any] | None]]]:
    """(label, measure) of this interpreter's k8stars rows; the C rows measure None where the accelerator is not
    built (or K8STARS_PURE_PYTHON=1), so every interpreter has the same labels."""
    built = "c" in codec.available_backends()
    return [
        (f"k8stars C{suffix}", lambda: bench_k8stars("c", seconds) if built else None),
        (f"k8stars C, all fields{suffix}", lambda: bench_k8stars("c", seconds, skip_defaults=False) if built else None),
        (f"k8stars pure Python{suffix}", lambda: bench_k8stars("python", seconds)),
    ]


def other_python(python: str, seconds: float) -> Results:
    """The k8stars rows measured under another interpreter (this checkout on its path)."""
    import subprocess

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p))
    argv = [python, "-m", "bench.codec", "--k8stars-only", "--json", "--seconds", str(seconds)]
    proc = subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True, timeout=120 + 20 * seconds)
    if proc.returncode != 0:
        last = proc.stderr.strip().splitlines()[-1:]
        raise RuntimeError(f"{python}: {last[0] if last else f'exit status {proc.returncode}'}")
    return {label: res for label, res in json.loads(proc.stdout).items() if res is not None}


def python_version(python: str) -> str:
    """``3.12.1``, or the path when it does not run."""
    import subprocess

    code = "import platform; print(platform.python_version())"
    try:
        proc = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=60)
    except OSError:
        return python
    return proc.stdout.strip() if proc.returncode == 0 and proc.stdout.strip() else python


def labels_of(versions: list[str], paths: list[str]) -> list[str]:
    """A row suffix per interpreter: its version, with its path where two share a version."""
    pairs = enumerate(zip(versions, paths, strict=True))
    return [f" ({v})" if versions.index(v) == i else f" ({v}, {p})" for i, (v, p) in pairs]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.codec", description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=1.0, help="length of each measurement (default 1)")
    ap.add_argument("--repeat", type=int, default=1, help="runs of everything; the table shows medians")
    ap.add_argument("--clock", choices=("cpu", "wall"), default="cpu", help="per CPU second (default) or wall second")
    ap.add_argument("--python", action="append", default=[], metavar="PATH", help="also measure k8stars under it")
    ap.add_argument("--no-peers", action="store_true", help="measure k8stars only (peers show n/a)")
    ap.add_argument("--json", action="store_true", help="print the raw results as JSON instead of the table")
    ap.add_argument("--k8stars-only", action="store_true", help=argparse.SUPPRESS)  # one round, for --python
    args = ap.parse_args(argv)
    if not (0 < args.seconds <= 600) or args.repeat < 1:
        ap.error("--seconds must be in (0, 600] and --repeat at least 1")
    if args.k8stars_only:
        print(json.dumps({label: fn() for label, fn in k8stars_rows(args.seconds)}))
        return 0

    versions = [platform.python_version(), *(python_version(p) for p in args.python)]
    suffixes = labels_of(versions, [sys.executable, *args.python]) if args.python else [""]
    # each candidate measures one or more rows: label -> result
    candidates: list[tuple[list[str], Callable[[], Results]]] = []
    for label, fn in k8stars_rows(args.seconds, suffixes[0]):

        def run_here(label: str = label, fn: Callable[[], dict[str, Any] | None] = fn) -> Results:
            r = fn()
            return {label: r} if r is not None else {}

        candidates.append(([label], run_here))
    for python, suffix in zip(args.python, suffixes[1:], strict=True):
        labels = [label for label, _ in k8stars_rows(args.seconds, suffix)]

        def run_other(python: str = python, suffix: str = suffix) -> Results:
            got = other_python(python, args.seconds)
            return {f"{label}{suffix}": res for label, res in got.items()}

        candidates.append((labels, run_other))

    notes: list[str] = []
    peer_labels: dict[str, str] = {}
    for peer, title in PEERS:

        def run(peer: str = peer, title: str = title) -> Results:
            if args.no_peers:
                peer_labels[title] = f"{title} (skipped)"
                return {}
            reply, what = bench_peer(peer, args.seconds)
            if reply is None:
                peer_labels[title] = f"{title} (n/a)"
                notes.append(f"{title}: n/a - {what}")
                return {}
            peer_labels[title] = what.replace("node @tars/stream", "@tars/stream").replace("go TarsGo", "TarsGo")
            return {title: {w: {k: float(v) for k, v in reply[w].items()} for w in WORKLOADS}}

        candidates.append(([title], run))

    results: dict[str, list[dict[str, dict[str, float]]]] = {}
    missing: set[int] = set()
    for _ in range(args.repeat):
        for i, (labels, fn) in enumerate(candidates):
            if i in missing:
                continue
            print(f"measuring {', '.join(labels)} ...", file=sys.stderr, flush=True)
            try:
                got = fn()
            except Exception as e:  # another interpreter that fails only costs its rows
                notes.append(f"{labels[0]}: n/a - {e}")
                got = {}
            if not got:
                missing.add(i)
            for label, res in got.items():
                results.setdefault(label, []).append(res)

    rows: list[tuple[str, dict[str, dict[str, float]] | None]] = []
    for labels, _ in candidates:
        for label in labels:
            shown = peer_labels.get(label, label)
            rows.append((shown, median_runs(results[label]) if label in results else None))

    if args.json:
        print(json.dumps({label: res for label, res in rows}, indent=2))
    else:
        print(table(rows, args.seconds, args.repeat, args.clock, versions))
        for note in dict.fromkeys(notes):
            print(note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
