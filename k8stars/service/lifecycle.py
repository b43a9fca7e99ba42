"""A service's life: its parts opened in order and closed in reverse, serving until SIGTERM, SIGINT or ``stopping``
is set (AdminObj.shutdown does), then a graceful stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from contextlib import AsyncExitStack
from typing import Any, Generic, TypeVar

from k8stars import __version__
from k8stars.service.options import ServiceOptions

log = logging.getLogger("k8stars.services")

OptionsT = TypeVar("OptionsT", bound=ServiceOptions)


CANCEL_TIMEOUT = 10.0  # seconds a stop waits for a cancelled background task


async def cancel(task: asyncio.Task[Any], timeout: float = CANCEL_TIMEOUT) -> None:
    """Cancel a part's background task and wait until it has ended (an error it ended with is raised), at most
    ``timeout`` seconds: a task that does not end on its cancel (a library that turned it into an error it then
    retries) is left behind with a warning, never holding the service's stop forever."""
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=timeout)
    if not done:
        log.warning("%s did not end %.0f s after its cancel; left behind", task.get_name(), timeout)
    elif not task.cancelled() and (error := task.exception()) is not None:
        raise error


def setup_logging(level: str) -> None:
    """The service's own log on stderr (stdout may carry data, as `k8stars log --stdout` does), unless the
    embedding program configured logging already."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                            stream=sys.stderr)  # fmt: skip


class Service(Generic[OptionsT]):
    """One service process. A subclass names itself (``name``), opens its parts in :meth:`open` (store, listeners,
    registrations), pushing on ``parts`` how each is closed, and says in :meth:`describe` what it serves."""

    name = "service"

    def __init__(self, options: OptionsT) -> None:
        options.check()
        self.options = options
        self.stopping = asyncio.Event()  # set: run() stops the service
        self._parts: AsyncExitStack | None = None

    async def open(self, parts: AsyncExitStack) -> None:
        raise NotImplementedError

    def describe(self) -> str:
        """The rest of the start-up log line: what is served where."""
        return ""

    async def start(self) -> None:
        """Open the parts; if one fails, close those already open and raise."""
        parts = AsyncExitStack()
        try:
            await self.open(parts)
        except BaseException:
            await parts.aclose()
            raise
        self._parts = parts
        log.info("%s %s: %s", self.name, __version__, self.describe())

    async def stop(self) -> None:
        """Close the parts, the last opened first (registrations go before the listeners they advertise)."""
        parts, self._parts = self._parts, None
        if parts is not None:
            await parts.aclose()

    async def run(self) -> None:
        """Serve until SIGTERM, SIGINT or ``stopping``, then stop. The signal handlers come first: a stop asked
        during start-up is still a clean one."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread, or no signals
                loop.add_signal_handler(sig, self.stopping.set)
        await self.start()
        try:
            await self.stopping.wait()
        finally:
            await self.stop()
