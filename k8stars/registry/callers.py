"""Who may write to the registry: a server registers, heartbeats and deregisters only its own node (the address the
call comes from is the nodeName it names), as a pod's tarscli does from the pod's IP; trusted networks (loopback by
default: the registry's own pod or host) may write for any node. Without this, any pod reaching the registry could
deregister every server (issue 16, item 2)."""

from __future__ import annotations

import logging
import time

from k8stars.registry.model import RegistryError
from k8stars.tars.networks import LOOPBACK, Network, in_networks, parse_networks, peer_address

log = logging.getLogger("k8stars.registry")

ERR_FORBIDDEN = 1004  # the caller may not write for that node: nothing was written
DEFAULT_TRUSTED = LOOPBACK
__all__ = ["DEFAULT_TRUSTED", "ERR_FORBIDDEN", "CallerPolicy", "Network", "parse_networks"]


class CallerPolicy:
    """Decides whether the caller at ``peer`` may write for ``node``; refusals are logged at most once a second."""

    def __init__(self, trusted: list[Network]) -> None:
        self.trusted = trusted
        self.refused = 0
        self._logged = 0.0

    def trusts(self, peer: str) -> bool:
        return in_networks(peer, self.trusted)

    def check(self, method: str, peer: str, node: str) -> None:
        """Raise RegistryError(ERR_FORBIDDEN) unless ``peer`` is ``node`` or trusted. No peer: an in-process call."""
        if not peer or self.trusts(peer):
            return
        mine, theirs = peer_address(peer), peer_address(node)
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
