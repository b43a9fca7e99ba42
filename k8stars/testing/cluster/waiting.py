"""Bounded polling for tests: wait for an eventually-consistent cluster without endless loops."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(probe: Callable[[], Awaitable[T | None]], *, timeout: float = 30.0, what: str = "condition") -> T:
    """Poll `probe` until it returns something other than None or False, at most `timeout` s.

    Raises AssertionError (so a test failure reads naturally) with the last value seen.
    """
    deadline = time.monotonic() + timeout
    delay = 0.05
    last: T | None = None
    while True:
        last = await probe()
        if last is not None and last is not False:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")
        await asyncio.sleep(delay)
        delay = min(delay * 1.5, 0.5)
