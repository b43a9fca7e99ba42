"""The service skeleton's stop of a background part (``k8stars.service.lifecycle.cancel``): a task that ends on its
cancel is waited for, one that failed says why, and one that does not end (a driver that turned the cancel into an
error its loop retries, as aiomysql once did) is left behind after the bound instead of holding the stop forever."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from k8stars.service.lifecycle import cancel


async def test_a_task_that_ends_on_its_cancel_is_waited_for() -> None:
    ended = asyncio.Event()

    async def loop() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            ended.set()

    task = asyncio.create_task(loop())
    await asyncio.sleep(0)
    await cancel(task, timeout=5)
    assert task.cancelled() and ended.is_set()


async def test_a_task_that_failed_says_why() -> None:
    async def fail() -> None:
        raise ValueError("the store is gone")

    task = asyncio.create_task(fail())
    await asyncio.sleep(0)
    with pytest.raises(ValueError, match="the store is gone"):
        await cancel(task)


async def test_a_task_that_swallows_its_cancel_is_left_behind(caplog: pytest.LogCaptureFixture) -> None:
    stop = asyncio.Event()

    async def stubborn() -> None:
        while not stop.is_set():
            try:
                await asyncio.sleep(0.05)
            except asyncio.CancelledError:  # turned into "an error", and retried
                continue

    task = asyncio.create_task(stubborn(), name="stubborn")
    await asyncio.sleep(0)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING):
        await cancel(task, timeout=0.5)
    assert 0.4 < time.monotonic() - started < 5
    assert "stubborn did not end" in caplog.text
    stop.set()
    await asyncio.wait_for(task, 5)
