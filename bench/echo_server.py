"""The k8stars side of bench/rpc: the Test.Echo servant (the peers' echo.tars) on one endpoint, by one process or
several (``--processes``)."""

from __future__ import annotations

import argparse
import asyncio
import signal

from k8stars.tars.idl.compiler import load_runtime
from k8stars.tars.rpc import Servant, Server
from k8stars.tars.rpc.loop import run
from k8stars.tars.rpc.processes import parse_processes
from k8stars.testing.peers import GO_SRC

ECHO = load_runtime([GO_SRC / "echo.tars"]).interfaces()["Test::Echo"]


class EchoImp(Servant):
    __tars_interface__ = ECHO

    async def echo(self, s: str) -> tuple[int, str]:
        return 0, s


async def serve(endpoint: str, servant: str, processes: int) -> None:
    server = Server(processes=processes)
    server.add_servant(EchoImp(), servant, endpoint)
    await server.start()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):  # stop the other processes too
        loop.add_signal_handler(sig, lambda: loop.create_task(server.stop(1.0)))
    await server.wait_stopped()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--servant", default="Test.EchoServer.EchoObj")
    parser.add_argument("--processes", type=parse_processes, default=1, help="server processes (max: one per core)")
    args = parser.parse_args()
    run(serve(args.endpoint, args.servant, args.processes))


if __name__ == "__main__":
    main()
