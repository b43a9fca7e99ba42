"""Who a caller is, by address: trusted networks (``--trusted-peers`` and the like) and the caller's address as the
transport saw it. Shared by the registry (who may write for a node) and the pod agent's node servant (who may start,
stop or notify its server)."""

from __future__ import annotations

import functools
import ipaddress

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
LOOPBACK = "127.0.0.0/8,::1/128"


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
def peer_address(text: str) -> Address | None:
    """The address of a peer host as a transport gives it (IPv4-mapped IPv6 as IPv4, a zone dropped); None if it is
    not an address."""
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # a dual-stack listener sees IPv4 callers as ::ffff:a.b.c.d
    return address


def in_networks(peer: str, networks: list[Network]) -> bool:
    address = peer_address(peer)
    return address is not None and any(address in n for n in networks)
