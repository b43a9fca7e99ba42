"""The example TARS service in Python: ``python -m examples.hello.server --config HelloServer.conf``.

It starts from a classic TARS config file (the one ``tarscli genconf`` writes), like a TarsCpp or TarsGo server,
or from flags: ``--endpoint 'tcp -h 127.0.0.1 -p 20001 -t 60000'`` serves TestApp.HelloServer.HelloObj alone.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os

from examples.hello.gen.hello import HelloReq, HelloServant
from k8stars.tars.rpc import Application, Server, current
from k8stars.tars.rpc.loop import run

SERVANT = "TestApp.HelloServer.HelloObj"


class HelloImp(HelloServant):
    async def sayHello(self, name: str) -> str:
        current().response_context["served-by"] = str(os.getpid())
        return f"hello {name}"

    async def echo(self, s: str) -> tuple[int, str]:
        return 0, s

    async def greet(self, req: HelloReq) -> tuple[int, list[str]]:
        return 0, [f"hello {req.name}"] * req.times

    async def sleep(self, ms: int) -> None:
        await asyncio.sleep(ms / 1000)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", default=os.environ.get("TARS_CONFIG", ""), help="TARS server config file")
    parser.add_argument("--endpoint", help="serve HelloObj on this endpoint instead of a config")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.endpoint:
        server = Server()
        server.add_servant(HelloImp(), SERVANT, args.endpoint)
        await server.start()
        print(f"serving {SERVANT}@{server.adapters[SERVANT + 'Adapter'].endpoint}", flush=True)
        await asyncio.Event().wait()
        return
    if not args.config:
        parser.error("--config or --endpoint is required")
    app = Application.from_config(args.config)
    app.add_servant(HelloImp(), f"{app.name}.HelloObj")
    await app.run()


if __name__ == "__main__":
    run(main())
