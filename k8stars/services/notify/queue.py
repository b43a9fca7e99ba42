"""The NotifyF servant and the bounded queue between it and a store.

Reports are one-way in spirit (every operation returns nothing), so the servant only puts them in a queue of
fixed capacity and answers at once; one writer task takes them out in batches and hands them to the store. When the
store is slower than the reports (a flood, a slow database or apiserver), the queue fills and further reports are
dropped and counted, with a log line at most every few seconds: memory never grows with the flood.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from k8stars.services.notify.filters import NotifyFilter
from k8stars.services.notify.model import (
    Notification,
    from_notify_server,
    from_report,
    from_report_server,
)
from k8stars.services.notify.sqlstore import NotifyPage
from k8stars.tars.errors import TarsRpcError
from k8stars.tars.protocol.notifyf import (
    NOTIFYLEVEL,
    Notify_getNotifyInfo_result,
    NotifyInfo,
    NotifyItem,
    NotifyKey,
    NotifyServant,
    ReportInfo,
)
from k8stars.tars.rpc import current

log = logging.getLogger("k8stars.services.notify")

DEFAULT_CAPACITY = 10000
BATCH = 200  # notifications per store write (one multi-row INSERT)
DROP_LOG_INTERVAL = 10.0  # seconds between two "dropping" log lines


class NotifySink(Protocol):
    """A store: where notifications end up."""

    kind: str
    where: str

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def write(self, items: Sequence[Notification]) -> int:
        """Store a batch; returns how many were stored (the others are logged by the store)."""
        ...


@dataclass
class Counters:
    received: int = 0
    stored: int = 0
    dropped: int = 0  # the queue was full
    failed: int = 0  # the store refused them
    filtered: int = 0  # TarsFramework's filters dropped them (k8stars.services.notify.filters)

    def __str__(self) -> str:
        text = f"received {self.received}, stored {self.stored}, dropped {self.dropped}, failed {self.failed}"
        return f"{text}, filtered {self.filtered}" if self.filtered else text


class NotifyQueue:
    """Fixed-capacity queue + the writer task that empties it into ``sink``."""

    def __init__(self, sink: NotifySink, capacity: int = DEFAULT_CAPACITY, batch: int = BATCH) -> None:
        if capacity < 1:
            raise ValueError(f"queue capacity {capacity}: must be at least 1")
        self.sink = sink
        self.batch = batch
        self.counters = Counters()
        self._queue: asyncio.Queue[Notification] = asyncio.Queue(capacity)
        self._last_drop_log = -DROP_LOG_INTERVAL
        self._dropped_since_log = 0
        self._writer: asyncio.Task[None] | None = None
        self._in_flight = 0  # taken out of the queue, not yet counted

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    def offer(self, item: Notification) -> bool:
        """Queue a notification; False (counted, logged now and then) when the queue is full."""
        self.counters.received += 1
        try:
            self._queue.put_nowait(item)
            return True
        except asyncio.QueueFull:
            self.counters.dropped += 1
            self._dropped_since_log += 1
            now = time.monotonic()
            if now - self._last_drop_log >= DROP_LOG_INTERVAL:
                log.warning("notify queue full (%d): dropped %d notification(s), e.g. %s.%s: %.80s; %s",
                            self._queue.maxsize, self._dropped_since_log, item.app, item.server, item.message,
                            self.counters)  # fmt: skip
                self._last_drop_log, self._dropped_since_log = now, 0
            return False

    def start(self) -> None:
        self._writer = asyncio.create_task(self._write_loop(), name="notify-writer")

    async def _take_batch(self) -> list[Notification]:
        items = [await self._queue.get()]
        while len(items) < self.batch and not self._queue.empty():
            items.append(self._queue.get_nowait())
        return items

    async def _write(self, items: list[Notification]) -> None:
        self._in_flight = len(items)
        try:
            stored = await self.sink.write(items)
        except Exception as e:  # the store failed the whole batch: count it, keep serving
            stored = 0
            log.warning("notify store %s: %d notification(s) lost: %s", self.sink.where, len(items), e)
        except asyncio.CancelledError:  # stopped in the middle of a write: those count as failed
            self.counters.failed += len(items)
            raise
        finally:
            self._in_flight = 0
        self.counters.stored += stored
        self.counters.failed += len(items) - stored

    async def _write_loop(self) -> None:
        while True:
            await self._write(await self._take_batch())

    async def stop(self, timeout: float = 5.0) -> None:
        """Let the writer write what is still queued (for at most ``timeout`` seconds), then stop it."""
        if self._writer is not None:
            if not self._writer.done():
                await self.flush(timeout)
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
            self._writer = None
        if not self._queue.empty():
            log.warning("notify: %d queued notification(s) not written at stop", self._queue.qsize())

    async def flush(self, timeout: float = 5.0) -> bool:
        """Until the queue is empty and the writer idle (tests, ``tars.notifystat``); False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._queue.empty() and self.counters.received == self._done():
                return True
            await asyncio.sleep(0.02)
        return False

    def _done(self) -> int:
        c = self.counters
        return c.stored + c.dropped + c.failed + c.filtered


@runtime_checkable
class NotifyQueryable(Protocol):
    """A store that answers getNotifyInfo: page ``page`` (from 0) of ``name``'s records (``App.Server``), newest
    first, only those of ``where`` (a node IP; on the Kubernetes store a pod name too) when given."""

    async def notify_page(self, name: str, where: str, page: int) -> NotifyPage: ...


class NotifyImp(NotifyServant):
    """NotifyF: every operation queues a notification (unless TarsFramework's filters drop it) and answers at once."""

    def __init__(self, queue: NotifyQueue, filters: NotifyFilter | None = None) -> None:
        self.queue = queue
        self.filters = filters or NotifyFilter()

    def _offer(self, n: Notification) -> None:
        if self.filters and self.filters.drops(n):
            self.queue.counters.received += 1
            self.queue.counters.filtered += 1
            return
        self.queue.offer(n)

    async def reportNotifyInfo(self, info: ReportInfo) -> None:
        self._offer(from_report(info, current().peer_host))

    async def reportServer(self, sServerName: str, sThreadId: str, sMessage: str) -> None:
        self._offer(from_report_server(sServerName, sThreadId, sMessage, current().peer_host))

    async def notifyServer(self, sServerName: str, level: NOTIFYLEVEL, sMessage: str) -> None:
        self._offer(from_notify_server(sServerName, int(level), sMessage, current().peer_host))

    async def getNotifyInfo(self, stKey: NotifyKey) -> Notify_getNotifyInfo_result:
        store = self.queue.sink
        if not isinstance(store, NotifyQueryable):
            raise TarsRpcError(f"getNotifyInfo: the {store.kind} store cannot be queried")
        page = await store.notify_page(stKey.name, stKey.ip, stKey.page)
        items = [NotifyItem(sTimeStamp=t, sServerId=sid, iLevel=lvl, sMessage=m) for t, sid, lvl, m in page.items]
        return Notify_getNotifyInfo_result(0, NotifyInfo(nextpage=page.nextpage, notifyItems=items))
