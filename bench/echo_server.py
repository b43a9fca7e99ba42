"""The k8stars side of bench/rpc: the Test.Echo servant (the peers' echo.tars) on one endpoint."""

from __future__ import annotations

import argparse
import asyncio

from k8stars.tars.idl.compiler import load_runtime
from k8stars.tars.rpc import Servant, Server
from k8stars.tars.rpc.loop import run
from k8stars.testing.peers import GO_SRC

ECHO = load_runtime([GO_SRC / "echo.tars"]).interfaces()["Test::Echo"]


class EchoImp(Servant):
    __tars_interface__ = ECHO

    async def echo(self, s: str) -> tuple[int, str]:
        return 0, s


async def serve(endpoint: str, servant: str) -> None:
    server = Server()
    server.add_servant(EchoImp(), servant, endpoint)
    await server.start()
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--servant", default="Test.EchoServer.EchoObj")
    args = parser.parse_args()
    run(serve(args.endpoint, args.servant))


if __name__ == "__main__":
    main()
