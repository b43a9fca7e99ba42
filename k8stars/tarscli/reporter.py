"""The supervisor's reports to the registry: ``onStartup`` first (and again every tenth report, on a new version, and
after the registry was unreachable), ``keepAlive`` on every state change and every report interval; the previous pod
IP's endpoint deregistered first. When the registry cannot be reached the service keeps running: the reports are
retried with a backoff (1 s up to 30 s)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from k8stars.tarscli.framework import Framework, FrameworkError

log = logging.getLogger("tarscli")

REGISTRY_BACKOFF_MAX = 30.0
REREGISTER_EVERY = 10  # re-send onStartup every N reports, in case the registry lost us (e.g. retention expiry)
STALE_TRIES = 5


class Reporter:
    """Reports ``state()`` of the server ``name`` until ``done()``; ``wake`` is set on every state change."""

    def __init__(self, fw: Framework, name: str, interval: float, disable_flow: bool, state: Callable[[], str],
                 version: Callable[[], str], done: Callable[[], bool], wake: asyncio.Event,
                 stale_ips: list[str]) -> None:  # fmt: skip
        self.fw, self.name, self.interval, self.disable_flow = fw, name, interval, disable_flow
        self.state, self.version, self.done, self.wake = state, version, done, wake
        self.stale_ips = stale_ips  # previous pod IPs whose endpoint is to be deregistered
        self.stale_tries = 0
        self.registered_version = ""

    async def run(self) -> None:
        need_register, backoff, reports, failing = True, 1.0, 0, False
        while not self.done():
            state = self.state()
            try:
                await self._deregister_stale()
                if need_register or self.version() != self.registered_version or reports >= REREGISTER_EVERY:
                    await self.fw.on_startup(state, self.version(), self.disable_flow)
                    self.registered_version = self.version()
                    need_register, reports = False, 0
                    log.info("registered %s (%s) with the registry", self.name, state)
                else:
                    await self.fw.keep_alive(state)
                    reports += 1
                if failing:
                    log.info("registry reachable again")
                failing, backoff, timeout = False, 1.0, self.interval
            except FrameworkError as e:
                (log.debug if failing else log.warning)("registry: %s; retrying in %.0f s", e, backoff)
                need_register, failing, timeout = True, True, backoff
                backoff = min(backoff * 2, REGISTRY_BACKOFF_MAX)
            if state != self.state():
                continue  # changed while we were reporting: report the new one now
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout)
            self.wake.clear()

    async def _deregister_stale(self) -> None:
        """onPrestop for the pod's previous IP. It must not hold up the registration of the new IP for long: after
        a few failed tries the old endpoint is left to the registry's heartbeat expiry."""
        for ip in list(self.stale_ips):
            try:
                await self.fw.on_prestop(ip)
                log.info("deregistered the old endpoint on %s", ip)
            except FrameworkError as e:
                self.stale_tries += 1
                if self.stale_tries < STALE_TRIES:
                    raise
                log.warning("giving up deregistering %s (%s): the registry will expire it", ip, e)
            self.stale_ips.remove(ip)
