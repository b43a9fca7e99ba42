"""The loop behind the reporters of a process (call statistics, properties, remote logs): started by the first
value, sending every interval, stopped with a last bounded send. Nothing on the call path ever waits for it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextvars import Context

log = logging.getLogger("k8stars.tars.rpc")

SEND_TIMEOUT_MS = 3000  # one report call
CLOSING_SEND_S = 1.0  # a stopping process waits at most this for its last report


class Periodic:
    """Calls ``send`` every ``interval_s`` once ``started``; ``close`` stops it and sends once more."""

    def __init__(self, send: Callable[[], Awaitable[None]], interval_s: float, name: str) -> None:
        self.send = send
        self.interval_s = max(interval_s, 0.05)
        self.name = name
        self.task: asyncio.Task[None] | None = None
        self.closing = False
        self.sending = False

    def started(self) -> None:
        """From the event loop's thread: start the loop if it is not running."""
        if self.task is None and not self.closing:
            # a context of its own: the reports must not carry the context of the call that started them (a trace)
            self.task = asyncio.get_running_loop().create_task(self._run(), name=self.name, context=Context())

    async def _run(self) -> None:
        while not self.closing:
            await asyncio.sleep(self.interval_s)
            self.sending = True
            try:
                await self.send()
            finally:
                self.sending = False

    async def close(self) -> None:
        self.closing = True  # the loop's own check: a cancel can be lost in a send finishing at that moment (3.11)
        if self.task is not None:
            if not self.sending:  # a send under way finishes (its values reached the peer: they are counted sent)
                self.task.cancel()
            await asyncio.wait({self.task}, timeout=SEND_TIMEOUT_MS / 1000 + 1)
            self.task = None
        try:
            await asyncio.wait_for(self.send(), CLOSING_SEND_S)
        except TimeoutError:
            log.debug("%s: the last send did not go out in %.1f s", self.name, CLOSING_SEND_S)
