"""The node side of TARS's own health protocol: ``tars.tarsnode.ServerObj`` (ServerF) served by the supervisor.

TarsCpp, TarsGo and k8stars servers send ``keepAlive`` to the ``node=`` of their config every 10 s, one per adapter
that is serving, and ``reportVersion`` once. That proves the server's adapters are up and its main loop is alive,
which a TCP dial cannot: a hung server still accepts connections.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from k8stars.tars.protocol.nodef import ServerFServant, ServerInfo

log = logging.getLogger("tarscli")

NODE_OBJ = "tars.tarsnode.ServerObj"


@dataclass
class Heartbeats:
    """What the service has told its node since it was (re)started."""

    app: str
    server: str
    adapters: dict[str, float] = field(default_factory=dict)  # adapter name -> monotonic time of its last beat
    last: float | None = None  # last keepAlive of any adapter
    activating: float | None = None  # last keepActiving: still initialising
    version: str = ""
    pid: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def reset(self) -> None:
        self.adapters.clear()
        self.last = self.activating = None
        self.pid = 0

    @property
    def seen(self) -> bool:
        return self.last is not None or self.activating is not None

    def healthy(self, timeout: float, now: float | None = None) -> bool:
        """Every adapter that ever beat did so within ``timeout``. TarsGo's first beat names no adapter (""), so
        that one only counts as "alive", not as an adapter that must keep beating."""
        now = time.monotonic() if now is None else now
        if self.last is None or now - self.last > timeout:
            return False
        return all(now - t <= timeout for name, t in self.adapters.items() if name)

    def mine(self, app: str, server: str) -> bool:
        return app == self.app and server == self.server

    def beat(self, info: ServerInfo) -> None:
        first = self.last is None
        self.last = time.monotonic()
        self.adapters[info.adapter] = self.last
        self.pid = info.pid
        if first:
            log.info("health: ServerF heartbeats from %s.%s (pid %d)", info.application, info.serverName, info.pid)
            self.changed.set()


class NodeServant(ServerFServant):
    def __init__(self, beats: Heartbeats) -> None:
        self.beats = beats

    def _check(self, app: str, server: str) -> bool:
        if self.beats.mine(app, server):
            return True
        log.warning("ServerF call from %s.%s ignored: this node supervises %s.%s", app, server,
                    self.beats.app, self.beats.server)  # fmt: skip
        return False

    async def keepAlive(self, serverInfo: ServerInfo) -> int:
        if self._check(serverInfo.application, serverInfo.serverName):
            self.beats.beat(serverInfo)
        return 0

    async def keepActiving(self, serverInfo: ServerInfo) -> int:
        if self._check(serverInfo.application, serverInfo.serverName):
            self.beats.activating = time.monotonic()
        return 0

    async def reportVersion(self, app: str, serverName: str, version: str) -> int:
        if self._check(app, serverName) and version != self.beats.version:
            self.beats.version = version
            log.info("service reports version %s", version)
            self.beats.changed.set()
        return 0

    async def getLatestKeepAliveTime(self) -> int:
        if self.beats.last is None:
            return 0
        return int(time.time() - (time.monotonic() - self.beats.last))
