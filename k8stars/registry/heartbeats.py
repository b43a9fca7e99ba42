"""keepAlive timestamps kept in memory and written to the store in batches.

A keepAlive that changes nothing but the time (the server's state is the one the lookup cache already holds) is
recorded here and answered at once; every ``interval`` one batch writes the newest time of every server (and node)
heard from since the last batch. Writes keep the newest time in the store (a replica's older batch never moves a
server's heartbeat back), so replicas that each flush what they received agree on the max. A crash loses at most
the timestamps of the last ``interval``: the servers keep their states, and the restarted registry waits one
heartbeat timeout before expiring anything (see docs/registry.md, "Heartbeats").
"""

from __future__ import annotations

from k8stars.registry.model import ServerKey
from k8stars.registry.store import Store

Key = tuple[str, str, str]  # (application, server, node): a ServerKey is made per server per flush, not per call


class Heartbeats:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._servers: dict[Key, float] = {}
        self._nodes: dict[str, float] = {}

    def __len__(self) -> int:
        return len(self._servers)

    def beat(self, key: Key, now: float) -> None:
        self._servers[key] = now
        self._nodes[key[2]] = now

    async def flush(self) -> None:
        """Write what was received since the last flush; on failure it stays for the next one."""
        if not self._servers and not self._nodes:
            return
        servers, nodes = self._servers, self._nodes
        self._servers, self._nodes = {}, {}
        try:
            await self.store.touch({ServerKey(*key): t for key, t in servers.items()}, nodes)
        except BaseException:
            for key, t in servers.items():  # newer beats that came in meanwhile win
                self._servers[key] = max(t, self._servers.get(key, t))
            for node, t in nodes.items():
                self._nodes[node] = max(t, self._nodes.get(node, t))
            raise
