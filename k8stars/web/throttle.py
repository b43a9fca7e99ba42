"""Failed logins slow an attacker down: after ``limit`` failures for one user name within ``window`` seconds, that
name is refused until the window has passed (per console process; bcrypt makes each guess slow besides)."""

from __future__ import annotations

import time
from collections import OrderedDict


class Throttle:
    def __init__(self, limit: int = 5, window: float = 300.0, capacity: int = 10_000) -> None:
        self.limit, self.window, self.capacity = limit, window, capacity
        self._failures: OrderedDict[str, list[float]] = OrderedDict()  # bounded: the oldest name goes first

    def _recent(self, name: str, now: float) -> list[float]:
        times = [t for t in self._failures.get(name, []) if now - t < self.window]
        if times:
            self._failures[name] = times
        else:
            self._failures.pop(name, None)
        return times

    def blocked(self, name: str) -> bool:
        return len(self._recent(name, time.monotonic())) >= self.limit

    def failed(self, name: str) -> None:
        now = time.monotonic()
        times = self._recent(name, now)
        self._failures[name] = [*times, now][-self.limit :]
        self._failures.move_to_end(name)
        while len(self._failures) > self.capacity:
            self._failures.popitem(last=False)

    def succeeded(self, name: str) -> None:
        self._failures.pop(name, None)
