"""Who may write to the registry: a server registers, heartbeats and deregisters only its own node (the address the
call comes from is the nodeName it names), as a pod's tarscli does from the pod's IP; trusted networks (loopback by
default: the registry's own pod or host) may write for any node. Without this, any pod reaching the registry could
deregister every server (issue 16, item 2)."""

from __future__ import annotations

import functools
import ipaddress
import logging
import time

from k8stars.registry.model import RegistryError

log = logging.getLogger("k8stars.registry")

ERR_FORBIDDEN = 1004  # the caller may not write for that node: nothing was written
DEFAULT_TRUSTED = "127.0.0.0/8,::1/128"
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(text: str) -> list[Network]:
    """A comma-separated list of addresses or CIDRs (``none``: no network); ValueError names a bad one."""
    if text.strip().lower() in ("", "none"):
        return []
    networks = []
    for item in filter(None, (t.strip() for t in text.split(","))):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"{item!r} is not an address or a CIDR (e.g. 10.0.0.0/8)") from None
    return networks


@functools.lru_cache(maxsize=4096)  # every call checks its peer: parsing it each time cost keepAlive a fifth of its CPU
def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # a dual-stack listener sees IPv4 callers as ::ffff:a.b.c.d
    return address


class CallerPolicy:
    """Decides whether the caller at ``peer`` may write for ``node``; refusals are logged at most once a second."""

    def __init__(self, trusted: list[Network]) -> None:
        self.trusted = trusted
        self.refused = 0
        self._logged = 0.0

    def trusts(self, peer: str) -> bool:
        address = _address(peer)
        return address is not None and any(address in n for n in self.trusted)

    def check(self, method: str, peer: str, node: str) -> None:
        """Raise RegistryError(ERR_FORBIDDEN) unless ``peer`` is ``node`` or trusted. No peer: an in-process call."""
        if not peer or self.trusts(peer):
            return
        mine, theirs = _address(peer), _address(node)
        if mine is not None and mine == theirs:
            return
        self.refused += 1
        if time.monotonic() - self._logged >= 1.0:
            self._logged = time.monotonic()
            log.warning("%s for node %r from %s refused (%d refused so far)", method, node[:64], peer, self.refused)
        raise RegistryError(
            f"{method} for node {node!r} refused: the call comes from {peer}; a server registers only its own "
            "address (its pod IP), unless its network is trusted (k8stars registry --trusted-peers)",
            ERR_FORBIDDEN,
        )
