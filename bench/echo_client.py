"""The k8stars side of bench/rpc's client column: a Communicator calling Test.Echo in a closed loop.

Same arguments and JSON as the TarsGo and @tars/rpc echo clients (``tarspeer echo-client ... --bench``), so the three
clients load one server side by side: ``python -m bench.echo_client PROXY --concurrency C --seconds T --payload N``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

from bench.echo_server import ECHO
from k8stars.tars.errors import TarsRpcError
from k8stars.tars.rpc import Communicator, ServantProxy
from k8stars.tars.rpc.loop import run


def percentile_ms(ordered: list[int], q: float) -> float:
    """Nearest rank, as the Go and Node clients compute it."""
    if not ordered:
        return 0.0
    idx = min(max(int(q * len(ordered) + 0.999999) - 1, 0), len(ordered) - 1)
    return ordered[idx] / 1e6


async def bench(proxy: str, concurrency: int, seconds: float, payload_len: int) -> dict[str, object]:
    payload = "x" * payload_len
    async with Communicator() as comm:
        echo = comm.string_to_proxy(ServantProxy, proxy, ECHO)
        await echo.tars_invoke("echo", (payload,))  # warm up: connect
        lat: list[int] = []
        errors: list[str] = []
        clock = time.perf_counter_ns
        deadline = clock() + int(seconds * 1e9)
        call = echo.tars_invoke
        args = (payload,)

        async def caller() -> None:
            while (t0 := clock()) < deadline:
                try:
                    ret, r = await call("echo", args)
                    if ret != 0 or r != payload:
                        raise ValueError(f"bad echo reply: ret={ret} len(r)={len(r)}")
                except (TarsRpcError, ValueError) as e:
                    errors.append(str(e))
                    continue
                lat.append(clock() - t0)

        start = clock()
        await asyncio.gather(*(caller() for _ in range(concurrency)))
        elapsed = (clock() - start) / 1e9
    lat.sort()
    out: dict[str, object] = {
        "qps": len(lat) / elapsed,
        "p50_ms": percentile_ms(lat, 0.5),
        "p99_ms": percentile_ms(lat, 0.99),
        "errors": len(errors),
        "calls": len(lat),
        "seconds": elapsed,
        "concurrency": concurrency,
        "payload": payload_len,
        "peer": "k8stars",
        "tcp_nodelay": True,
    }
    if errors:
        out["first_error"] = errors[0]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("proxy")
    parser.add_argument("--bench", action="store_true", help="accepted for the peers' command line; always on")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--payload", type=int, default=10)
    args = parser.parse_args()
    print(json.dumps(run(bench(args.proxy, args.concurrency, args.seconds, args.payload))))


if __name__ == "__main__":
    main()
