"""TarsFramework's notify filters: reports whose message contains a configured text are dropped.

TarsFramework's NotifyServer reads them from its config's ``<tars><filter>``: each key is a server (``App.Server``;
its ``reportNotifyInfo`` path looks them up as ``AppServer``, without the dot, so both spellings are honoured here)
or ``default`` (every server), each value texts separated by ``;`` or ``|``. A report of that server (or of any
server, for ``default``) whose message contains one of the texts is not stored. Here the same rules come from
``--filter KEY=TEXTS`` (repeatable), and dropped reports are counted.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from k8stars.services.notify.model import Notification

DEFAULT = "default"
_SEPARATORS = re.compile(r"[;|]")
MAX_TEXTS = 1024  # texts in all: a filter is configuration, not data


class FilterError(ValueError):
    """A --filter that cannot be read; the message says why."""


class NotifyFilter:
    """``drops(n)``: whether TarsFramework's filters drop notification ``n``."""

    def __init__(self, texts: dict[str, frozenset[str]] | None = None) -> None:
        self.texts = texts or {}

    @classmethod
    def parse(cls, entries: Iterable[str]) -> NotifyFilter:
        """From ``KEY=TEXT;TEXT|TEXT`` entries (a key given twice adds its texts)."""
        found: dict[str, set[str]] = {}
        for entry in entries:
            key, eq, value = entry.partition("=")
            key = key.strip()
            if not eq or not key:
                raise FilterError(f"--filter {entry!r}: expected App.Server=TEXT;TEXT or default=TEXT")
            texts = {t for t in _SEPARATORS.split(value) if t}  # TarsFramework's sepstr drops empty fields
            if not texts:
                raise FilterError(f"--filter {entry!r}: no text to filter on")
            found.setdefault(key, set()).update(texts)
        if sum(len(t) for t in found.values()) > MAX_TEXTS:
            raise FilterError(f"--filter: more than {MAX_TEXTS} texts")
        return cls({k: frozenset(v) for k, v in found.items()})

    def __bool__(self) -> bool:
        return bool(self.texts)

    def drops(self, n: Notification) -> bool:
        for key in (f"{n.app}.{n.server}", f"{n.app}{n.server}", DEFAULT):
            if any(text in n.message for text in self.texts.get(key, ())):
                return True
        return False

    def describe(self) -> str:
        return ", ".join(f"{k}: {len(v)} text(s)" for k, v in sorted(self.texts.items())) or "none"
