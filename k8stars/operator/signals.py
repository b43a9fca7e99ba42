"""A graceful stop on SIGTERM (a pod's deletion) and SIGINT (Ctrl-C), inside the event loop.

The operator's work is cancelled as a task, so its cleanups run as they would on any cancellation: the Lease is
given up, the webhook and metrics servers close, the API connections are released; the process then exits 0.
(A KeyboardInterrupt raised at an arbitrary point of the loop would leave those to chance.)
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger("k8stars.operator")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


async def until_signalled(work: Coroutine[Any, Any, None]) -> None:
    """Run ``work`` until it returns or a stop signal arrives; on a signal cancel it, wait for its cleanups and
    return normally. Another signal during the cleanups cancels them too (a second Ctrl-C hurries)."""
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(work)
    received: list[signal.Signals] = []

    def stop(sig: signal.Signals) -> None:
        if not received:
            log.info("%s: stopping", sig.name)
        received.append(sig)
        task.cancel()

    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stop, sig)
    try:
        await task
    except asyncio.CancelledError:
        me = asyncio.current_task()
        if not received or (me is not None and me.cancelling()):  # cancelled from outside, not by a signal
            raise
    finally:
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)
    if received:
        log.info("stopped")
