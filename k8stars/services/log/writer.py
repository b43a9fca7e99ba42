"""The log files' writer: records are appended to per-file buffers as they arrive and written once a second (or
sooner when much is pending) through a bounded LRU of open file descriptors; a cap on pending bytes keeps memory
bounded under a flood (records beyond it are dropped and counted). asyncio only: the writes are plain appends to
local files, made in one batch per file per flush."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import stat
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from k8stars.tars.untrusted import Throttle

log = logging.getLogger("k8stars.services.log")

DEFAULT_MAX_PENDING = 32 * 1024 * 1024  # bytes waiting for the next flush at most
DEFAULT_MAX_OPEN = 128  # open log files at most
FLUSH_INTERVAL = 1.0
REOPEN_AFTER = 10.0  # seconds: a file deleted or moved away (rotation) is recreated, as TarsCpp's logger does
WARN_EVERY = 10.0  # seconds between two warnings of one kind
RECORD_COST = 64  # bytes charged per record on top of its own: a flood of tiny records is bounded too


@dataclass
class LogCounters:
    received: int = 0  # records accepted
    written: int = 0  # records written to their file
    dropped: int = 0  # records over the pending cap
    refused: int = 0  # calls with a name that cannot be a file under the log directory
    failed: int = 0  # records lost to a write error

    def __str__(self) -> str:
        return (f"received {self.received}, written {self.written}, dropped {self.dropped}, "
                f"refused {self.refused}, failed {self.failed}")  # fmt: skip


class _Pending:
    __slots__ = ("chunks", "records")

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.records = 0


class LogWriter:
    def __init__(self, log_dir: str | Path, *, max_pending: int = DEFAULT_MAX_PENDING,
                 max_open: int = DEFAULT_MAX_OPEN, stdout: TextIO | None = None) -> None:  # fmt: skip
        self.root = Path(log_dir).resolve()
        self.max_pending, self.max_open, self.stdout = max_pending, max_open, stdout
        self.counters = LogCounters()
        self.pending_bytes = 0
        self._pending: dict[tuple[str, ...], _Pending] = {}
        self._open: OrderedDict[tuple[str, ...], tuple[int, float]] = OrderedDict()  # path -> (fd, opened at)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._warnings = Throttle(log, WARN_EVERY)

    @property
    def open_files(self) -> int:
        return len(self._open)

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self._task = asyncio.create_task(self._loop(), name="log-writer")

    async def stop(self) -> None:
        """Write what is pending and close every file."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.flush()
        self._close_all()

    def warn(self, kind: str, message: str, *args: object) -> None:
        """A warning at most every WARN_EVERY seconds per kind: a flood must not flood our own log too."""
        self._warnings.emit(kind, message, *args)

    def add(self, path: tuple[str, ...], records: list[str], prefix: str, label: str) -> None:
        """Queue ``records`` (each after ``prefix``, ending with a newline) for the file at ``path``."""
        slot = self._pending.get(path)
        kept = 0
        for record in records:
            # TarsFramework writes a record as it is; senders end theirs with a newline (TarsGo, TarsCpp) and one
            # that does not would be glued to the next: it gets one
            line = prefix + record if record.endswith("\n") else prefix + record + "\n"
            data = line.encode("utf-8", "surrogateescape")
            cost = len(data) + RECORD_COST
            if self.pending_bytes + cost > self.max_pending:
                self.counters.dropped += len(records) - kept
                self.warn("dropped", "log: %d bytes pending, dropping records (%s); dropped so far %d",
                          self.pending_bytes, label, self.counters.dropped)  # fmt: skip
                break
            if slot is None:
                slot = self._pending[path] = _Pending()
            slot.chunks.append(data)
            slot.records += 1
            self.pending_bytes += cost
            kept += 1
            if self.stdout is not None:
                self._echo(label, record)
        self.counters.received += kept
        if self.pending_bytes >= self.max_pending // 4:  # a burst: write now rather than at the next tick
            self._wake.set()

    def _echo(self, label: str, record: str) -> None:
        assert self.stdout is not None
        try:
            for line in record.rstrip("\r\n").split("\n"):
                self.stdout.write(f"{label}: {line}\n")
        except (OSError, ValueError) as e:  # stdout gone (a closed pipe): the files matter more
            self.warn("stdout", "log: cannot write to stdout: %s", e)

    async def _loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), FLUSH_INTERVAL)
            self._wake.clear()
            self.flush()

    def flush(self) -> None:
        """Write every pending buffer (one write per file), then close files open for longer than REOPEN_AFTER."""
        pending, self._pending, self.pending_bytes = self._pending, {}, 0
        for path, slot in pending.items():
            try:
                self._write(path, b"".join(slot.chunks))
                self.counters.written += slot.records
            except OSError as e:
                self.counters.failed += slot.records
                self._close(path)
                self.warn("failed", "log: cannot write %s: %s", self.root.joinpath(*path), e)
        if self.stdout is not None:
            with contextlib.suppress(OSError, ValueError):
                self.stdout.flush()
        now = time.monotonic()
        for path in [p for p, (_, opened) in self._open.items() if now - opened > REOPEN_AFTER]:
            self._close(path)

    def _write(self, path: tuple[str, ...], data: bytes) -> None:
        fd = self._fd(path)
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]

    def _fd(self, path: tuple[str, ...]) -> int:
        entry = self._open.get(path)
        if entry is not None:
            self._open.move_to_end(path)
            return entry[0]
        while len(self._open) >= self.max_open:
            self._close(next(iter(self._open)))
        fd = open_below(self.root, path)
        self._open[path] = (fd, time.monotonic())
        return fd

    def _close(self, path: tuple[str, ...]) -> None:
        entry = self._open.pop(path, None)
        if entry is not None:
            with contextlib.suppress(OSError):
                os.close(entry[0])

    def _close_all(self) -> None:
        for path in list(self._open):
            self._close(path)


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: a FIFO planted where a log file goes fails at once (ENXIO) instead of blocking the event loop
_FILE_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


def open_below(root: Path, path: tuple[str, ...]) -> int:
    """An append descriptor of the regular file ``root/path``, creating directories on the way. Each component is
    opened relative to its parent with O_NOFOLLOW, so a symlink anywhere below ``root`` (an app's directory, a set's,
    the file itself) fails the open (OSError) instead of leading outside; so does a hard link or anything that is not
    a regular file."""
    dir_fd = os.open(root, _DIR_FLAGS)
    try:
        for part in path[:-1]:
            with contextlib.suppress(FileExistsError):
                os.mkdir(part, 0o755, dir_fd=dir_fd)
            parent, dir_fd = dir_fd, os.open(part, _DIR_FLAGS, dir_fd=dir_fd)
            os.close(parent)
        fd = os.open(path[-1], _FILE_FLAGS, 0o644, dir_fd=dir_fd)
    finally:
        os.close(dir_fd)
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_nlink > 1:
        os.close(fd)
        raise OSError(errno.EPERM, "not a regular file of its own (a link to another file?)", str(root.joinpath(*path)))
    return fd
