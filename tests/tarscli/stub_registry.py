"""A stand-in registry for tarscli's tests when ``k8stars registry`` is not available: QueryF and K8STARS's
Registry servant on one loopback port, in memory. ``python tests/tarscli/stub_registry.py --port P``."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from k8stars.tars.endpoint import Endpoint
from k8stars.tars.protocol.endpointf import EndpointF
from k8stars.tars.protocol.queryf import (
    QueryF_findObjectById4All_result,
    QueryF_findObjectById4Any_result,
    QueryF_findObjectByIdInSameGroup_result,
    QueryF_findObjectByIdInSameSet_result,
    QueryFServant,
)
from k8stars.tars.protocol.tarsregistry import (
    keepAliveReq,
    onPrestopReq,
    onStartupReq,
    tarsregistryServant,
)
from k8stars.tars.rpc import Server

Rows = dict[tuple[str, str, str], dict[str, object]]  # (node, app, server) -> {state, adapters}


def lookup(rows: Rows, obj: str, self_ep: Endpoint) -> tuple[list[EndpointF], list[EndpointF]]:
    if obj in ("tars.tarsregistry.QueryObj", "tars.tarsregistry.Registry"):
        return [self_ep.to_endpointf()], []
    active, inactive = [], []
    for row in rows.values():
        for servant, endpoint in row["adapters"]:  # type: ignore[attr-defined]
            if servant == obj:
                (active if row["state"] == "active" else inactive).append(Endpoint.parse(endpoint).to_endpointf())
    return active, inactive


class Query(QueryFServant):
    def __init__(self, rows: Rows, ep: Endpoint) -> None:
        self.rows, self.ep = rows, ep

    async def findObjectById(self, id: str) -> list[EndpointF]:
        return lookup(self.rows, id, self.ep)[0]

    async def findObjectById4Any(self, id: str) -> QueryF_findObjectById4Any_result:
        return QueryF_findObjectById4Any_result(0, *lookup(self.rows, id, self.ep))

    async def findObjectById4All(self, id: str) -> QueryF_findObjectById4All_result:
        return QueryF_findObjectById4All_result(0, *lookup(self.rows, id, self.ep))

    async def findObjectByIdInSameGroup(self, id: str) -> QueryF_findObjectByIdInSameGroup_result:
        return QueryF_findObjectByIdInSameGroup_result(0, *lookup(self.rows, id, self.ep))

    async def findObjectByIdInSameSet(self, id: str, setId: str) -> QueryF_findObjectByIdInSameSet_result:
        return QueryF_findObjectByIdInSameSet_result(0, *lookup(self.rows, id, self.ep))


class Registry(tarsregistryServant):
    def __init__(self, rows: Rows) -> None:
        self.rows = rows

    async def onStartup(self, req: onStartupReq) -> None:
        adapters = [(a.servant, a.endpoint) for a in req.adapters]
        self.rows[(req.nodeName, req.application, req.server)] = {"state": req.State or "active", "adapters": adapters}

    async def keepAlive(self, req: keepAliveReq) -> None:
        row = self.rows.get((req.nodeName, req.application, req.server))
        if row is not None:
            row["state"] = req.state or "active"

    async def onPrestop(self, req: onPrestopReq) -> None:
        self.rows.pop((req.nodeName, req.application, req.server), None)


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    args = ap.parse_args()
    ep = Endpoint.parse(f"tcp -h {args.host} -p {args.port} -t 60000")
    rows: Rows = {}
    server = Server()
    adapter = server.add_servant(Query(rows, ep), "tars.tarsregistry.QueryObj", ep)
    adapter.add_servant("tars.tarsregistry.Registry", Registry(rows))
    await server.start()
    print(f"stub registry on {ep}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
