"""Ports for ``${random_port}``, for tcp, ssl and udp endpoints.

K8STARS scanned the range from its lower end, checked each port by listening and closing at once, and remembered
what it had handed out only inside one process: two tarscli processes in one network namespace (two containers of a
pod, or ``k8stars up``'s services, which share 127.0.0.1 for ``local``) could hand out the same port, and udp/ssl
could not be allocated at all.

Here every port handed out is *leased*: the allocating process binds the abstract Unix socket
``@k8stars-tarscli/port/<n>``. Abstract sockets live in the network namespace, so every tarscli of the pod sees the
lease, and the kernel drops it when its holder exits - no lock files to clean up after a crash. The supervisor holds
its leases for its whole life, so restarts of the service keep their ports. A port is only taken if it is not
leased and can be bound with the endpoint's own socket type (TCP for tcp/ssl, UDP for udp). The scan starts at a
random offset so that tarscli processes starting together rarely even compete for the same lease.
"""

from __future__ import annotations

import errno
import random
import socket
import sys

from k8stars.tars.endpoint import EndpointError


class PortError(RuntimeError):
    """No port could be allocated."""


def _lease_name(port: int) -> bytes:
    return b"\0k8stars-tarscli/port/%d" % port


def endpoint_network(endpoint: str) -> tuple[str, str]:
    """(protocol, host) of an endpoint template such as ``tcp -h ${local_ip} -p ${random_port} -t 30000``."""
    words = endpoint.split()
    host = ""
    for i, w in enumerate(words[:-1]):
        if w == "-h":
            host = words[i + 1]
    if not words or not host:
        raise EndpointError(f"host or network can not be empty: {endpoint!r}")
    proto = words[0].lower()
    if proto not in ("tcp", "udp", "ssl"):
        raise EndpointError(f"unknown protocol {proto!r} in {endpoint!r}")
    return proto, "0.0.0.0" if host == "*" else host


def can_bind(proto: str, host: str, port: int) -> bool:
    kind = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, kind) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


class PortAllocator:
    """Hands out ports from ``[low, high]``; its leases last until :meth:`release` (or the process ends)."""

    def __init__(self, low: int, high: int, rng: random.Random | None = None) -> None:
        if not 0 < low <= high <= 65535:
            raise ValueError(f"bad port range {low}..{high}")
        self.low, self.high = low, high
        self._rng = rng or random.Random()
        self._leases: dict[int, socket.socket | None] = {}

    @property
    def leased(self) -> list[int]:
        return sorted(self._leases)

    def _lease(self, port: int) -> bool:
        if port in self._leases:
            return False
        if not sys.platform.startswith("linux"):
            self._leases[port] = None  # no abstract sockets: only this process's own bookkeeping
            return True
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            s.bind(_lease_name(port))
        except OSError as e:
            s.close()
            if e.errno == errno.EADDRINUSE:
                return False
            raise
        self._leases[port] = s
        return True

    def _unlease(self, port: int) -> None:
        s = self._leases.pop(port, None)
        if s is not None:
            s.close()

    def take(self, proto: str, host: str, port: int) -> bool:
        """Lease ``port`` if nobody holds it and it can be bound; False otherwise."""
        if not self._lease(port):
            return False
        if can_bind(proto, host, port):
            return True
        self._unlease(port)
        return False

    def allocate(self, endpoint: str, preferred: int | None = None) -> int:
        """A free port for ``endpoint`` (a template with ``-h`` and the protocol), ``preferred`` first."""
        proto, host = endpoint_network(endpoint)
        if preferred and self.low <= preferred <= self.high and self.take(proto, host, preferred):
            return preferred
        span = self.high - self.low + 1
        start = self._rng.randrange(span)
        for i in range(span):
            port = self.low + (start + i) % span
            if self.take(proto, host, port):
                return port
        raise PortError(f"no available port in {self.low}..{self.high} for {proto} on {host}")

    def release(self, port: int | None = None) -> None:
        for p in [port] if port is not None else list(self._leases):
            self._unlease(p)


async def accepts(endpoint: str, timeout: float) -> bool:
    """Whether ``endpoint`` accepts a connection within ``timeout`` (udp: always; only heartbeats can tell)."""
    import asyncio  # the supervisor's health check only: genconf and hzcheck stay without asyncio
    import contextlib

    from k8stars.tars.endpoint import Endpoint, EndpointError

    try:
        ep = Endpoint.parse(endpoint)
    except EndpointError:
        return False
    if ep.protocol == "udp":
        return True  # nothing to connect to; only heartbeats can tell
    host = "127.0.0.1" if ep.host in ("0.0.0.0", "") else ep.host
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, ep.port), timeout)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True
