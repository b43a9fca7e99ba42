"""Fixtures of the registry tests: a real MariaDB (started here, on 127.0.0.1), stores of both kinds, in-process
registries and clients that talk to them over TARS RPC.

Every test that takes ``store_kind`` runs twice: against SQLite and against MariaDB. Without a MariaDB server binary
the MySQL half is skipped, or fails when CI=true (CI must install mariadb-server).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from k8stars.registry.app import RegistryConfig, RegistryServer
from k8stars.registry.store import Store, open_store
from k8stars.tars.protocol.adminf import AdminFProxy
from k8stars.tars.protocol.queryf import QueryFProxy
from k8stars.tars.protocol.tarsregistry import AdapterConf, onStartupReq, tarsregistryProxy
from k8stars.tars.rpc import Communicator
from k8stars.testing.mariadb import SqlSpec, mariadb, sql_spec  # noqa: F401  (the session fixture, shared with tests/services)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


# ----------------------------------------------------------------------------------------------- stores


StoreFactory = Callable[[], Store]


class StoreSpec(SqlSpec):
    """Where one test's store lives; ``new()`` opens another handle on the same data (a restart, a replica)."""

    def new(self) -> Store:
        return open_store(self.kind, data_dir=self.data_dir, dsn=self.dsn)


@pytest.fixture(params=["sqlite", "mysql"])
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store_spec(store_kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> StoreSpec:
    spec = sql_spec(store_kind, request, tmp_path)
    return StoreSpec(spec.kind, spec.data_dir, spec.dsn)


# ----------------------------------------------------------------------------------------------- registries


Launch = Callable[..., Awaitable[RegistryServer]]


@pytest.fixture
async def launch(store_spec: StoreSpec) -> AsyncIterator[Launch]:
    """Start in-process registries over the test's store (``await launch(host="127.0.0.2", heartbeat_timeout=1)``);
    all are stopped at the end."""
    running: list[RegistryServer] = []

    async def start(**overrides: Any) -> RegistryServer:
        options: dict[str, Any] = {"port": 0, "http_port": 0, "poll_interval": 0.1, **overrides}
        options.setdefault("node_name", options.get("host", "127.0.0.1"))
        server = RegistryServer(RegistryConfig(**options), store_spec.new())
        await server.start()
        running.append(server)
        return server

    yield start
    for server in running:
        with contextlib.suppress(Exception):
            await server.stop()


class Client:
    """One registry as TARS clients see it: QueryObj, Registry and AdminObj proxies over real connections."""

    def __init__(self, comm: Communicator, server: RegistryServer) -> None:
        self.comm = comm
        self.server = server
        self.locator = f"tars.tarsregistry.QueryObj@{server.query_endpoint}"
        self.query = comm.string_to_proxy(QueryFProxy, self.locator)
        self.registry = comm.string_to_proxy(
            tarsregistryProxy, f"tars.tarsregistry.Registry@{server.registry_endpoint}"
        )
        self.admin = comm.string_to_proxy(AdminFProxy, f"AdminObj@{server.admin_endpoint}")

    async def start(self, node: str, app: str, server: str, *objs: tuple[str, int], **extra: Any) -> None:
        adapters = [AdapterConf(f"{app}.{server}.{obj}", f"tcp -h {node} -p {port} -t 30000") for obj, port in objs]
        await self.registry.onStartup(onStartupReq(node, app, server, adapters=adapters, **extra))

    async def active(self, servant: str) -> set[tuple[str, int]]:
        res = await self.query.findObjectById4Any(servant)
        return {(e.host, e.port) for e in res.activeEp}

    async def inactive(self, servant: str) -> set[tuple[str, int]]:
        res = await self.query.findObjectById4Any(servant)
        return {(e.host, e.port) for e in res.inactiveEp}


@pytest.fixture
async def comm() -> AsyncIterator[Communicator]:
    async with Communicator() as c:
        yield c


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float, interval: float = 0.02) -> float:
    """Seconds until ``check()`` holds; AssertionError after ``timeout``."""
    start = time.monotonic()
    while True:
        if await check():
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(interval)
