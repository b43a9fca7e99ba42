"""The apiserver for pods of the real node: a TLS relay on the node IP (the bridge's address, the only host address
pods reach) to the apiserver on 127.0.0.1.

Pods find the API by ``KUBERNETES_SERVICE_HOST``/``PORT``, the ``kubernetes`` Service's ClusterIP, which nothing
routes here (no kube-proxy). Point those two variables at the relay instead (``relay.env``): it serves a certificate
for the node IP signed by the cluster CA (the CA in every pod's service account volume), and forwards the bytes over
a new TLS connection that trusts the apiserver by that CA and presents no client certificate, so the apiserver
authenticates each request by the pod's own service account token and RBAC applies as anywhere.

    async with api_relay(cluster) as relay:
        env = relay.env        # {"KUBERNETES_SERVICE_HOST": "10.244.0.1", "KUBERNETES_SERVICE_PORT": "<port>"}
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urlsplit

from .launcher import Cluster

CHUNK = 65536


@dataclass(frozen=True)
class ApiRelay:
    host: str
    port: int

    @property
    def env(self) -> dict[str, str]:
        """What a pod's containers need to reach the apiserver through the relay."""
        return {"KUBERNETES_SERVICE_HOST": self.host, "KUBERNETES_SERVICE_PORT": str(self.port)}


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, ssl.SSLError, OSError):
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
    with contextlib.suppress(Exception):
        writer.close()


@contextlib.asynccontextmanager
async def api_relay(cluster: Cluster) -> AsyncIterator[ApiRelay]:
    """The relay on ``cluster.real_node.host_ip`` (a free port), for as long as the context lasts."""
    assert cluster.real_node is not None, "the relay is for a cluster with a real node"
    host = cluster.real_node.host_ip
    api = urlsplit(cluster.api_url)
    server_tls = cluster.webhook_tls("api-relay", hosts=(host,)).server_context()
    upstream_tls = ssl.create_default_context(cafile=str(cluster.ca_file))  # no client certificate: the pod's token
    conns: set[asyncio.Task[None]] = set()

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(api.hostname, api.port, ssl=upstream_tls)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.ensure_future(relay(reader, writer))
        conns.add(task)
        task.add_done_callback(conns.discard)

    server = await asyncio.start_server(on_connection, host, 0, ssl=server_tls)
    port = server.sockets[0].getsockname()[1]
    try:
        yield ApiRelay(host, port)
    finally:
        server.close()
        for task in list(conns):
            task.cancel()
        await asyncio.gather(*conns, return_exceptions=True)
        await server.wait_closed()
