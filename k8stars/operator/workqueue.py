"""A keyed work queue, controller-runtime style: a key is queued at most once and handled by one worker at a time."""

from __future__ import annotations

import asyncio

Key = tuple[str, str]  # (namespace, name)


class WorkQueue:
    """Keys to reconcile: each key is queued at most once and processed by one worker at a time."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[Key] = asyncio.Queue()
        self._queued: set[Key] = set()
        self._active: set[Key] = set()

    def add(self, key: Key) -> None:
        if key in self._queued:
            return
        self._queued.add(key)
        if key not in self._active:
            self._queue.put_nowait(key)

    def add_after(self, key: Key, delay: float) -> None:
        asyncio.get_running_loop().call_later(delay, self.add, key)

    async def get(self) -> Key:
        key = await self._queue.get()
        self._queued.discard(key)
        self._active.add(key)
        return key

    def done(self, key: Key) -> None:
        self._active.discard(key)
        if key in self._queued:
            self._queue.put_nowait(key)

    def __len__(self) -> int:
        return len(self._queued) + len(self._active)
