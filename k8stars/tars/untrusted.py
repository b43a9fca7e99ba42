"""Values a peer sent, as every service handles them: names checked by one rule, text escaped before it reaches a
log, and warnings about bad input rate-limited (a flood of bad packets must not become a flood of log lines)."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable

# TARS names (application, server, object, node, set parts): what TarsFramework's tables and tools accept, and
# nothing that could be read as SQL, a path or a line break
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:\-]*")
MAX_APPLICATION = 50  # db_tars's narrowest application column (t_adapter_conf.application)
MAX_SERVER = 128  # t_server_conf.server_name
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
MAX_SHOWN = 200  # characters of one untrusted value in a log line


class BadName(ValueError):
    """A name that is empty, too long or holds characters no TARS name may hold; the message says which."""


def check_name(what: str, value: str, max_len: int) -> str:
    """``value`` when it is a valid TARS name of at most ``max_len`` characters, else BadName naming ``what``."""
    if not value:
        raise BadName(f"{what} is empty")
    if len(value) > max_len:
        raise BadName(f"{what} {value[:40]!r}... is longer than {max_len} characters")
    if not _NAME.fullmatch(value):
        raise BadName(f"{what} {value[:MAX_SHOWN]!r} may only hold letters, digits and _ . : -")
    return value


def printable(text: str, limit: int = MAX_SHOWN) -> str:
    """``text`` safe for one log line: control characters and line separators escaped (a name holding a newline
    cannot forge a line), cut after ``limit`` characters. (``repr`` is as safe, with quotes.)"""
    cut = text[:limit]
    shown = _UNPRINTABLE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), cut)
    return shown + ("..." if len(text) > limit else "")


class Throttle:
    """Messages of one kind at most once per ``interval`` seconds; the next one says how many were suppressed."""

    def __init__(self, logger: logging.Logger, interval: float = 10.0, *, level: int = logging.WARNING,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.logger, self.interval, self.level, self.clock = logger, interval, level, clock
        self._last: dict[str, float] = {}
        self.suppressed: dict[str, int] = {}

    def emit(self, kind: str, message: str, *args: object) -> None:
        now = self.clock()
        last = self._last.get(kind)
        if last is not None and now - last < self.interval:
            self.suppressed[kind] = self.suppressed.get(kind, 0) + 1
            return
        self._last[kind] = now
        skipped = self.suppressed.pop(kind, 0)
        if skipped:
            message += f" ({skipped} more like this suppressed since the last one)"
        self.logger.log(self.level, message, *args)
