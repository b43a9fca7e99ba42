"""Trace records (the ``_t_trace_`` remote log) gathered into traces, as K8SFramework's LogServer aggregates them.

A record, as TarsGo and TarsCpp write it (a date and time may come first; the log file puts the sender's node name,
app and server before it)::

    traceId|spanId|parentSpanId|type|master|slave|function|time ms|ret|data|ex

``type`` is ``cs``/``cr`` (the client's side: span = the call, parent = the caller's span or the span itself for a
root call; ``ts``/``te`` are a root's start and end), ``sr``/``ss`` (the server's side: span = the caller's span,
parent ``*``). Every span collects its four times, four data and ret; a span whose parent is another span is that
span's child; the root (parent == span) gives the trace its start, end, first span and master.

The service keeps the traces of a few days in memory, each day filled from its file on first use (what earlier runs
wrote) and then from the records as they arrive, so answers survive a restart without a store of their own.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("k8stars.services.log")

TRACE_FILE = "_t_trace_"  # LogInfo.sFilename of trace records (TarsGo's and TarsCpp's trace logger)
TRACE_APP, TRACE_SERVER = "_tars_", "_trace_"  # where K8SFramework's LogServer writes them
DAY_FORMAT = "%Y%m%d"
TYPES = frozenset({"cs", "cr", "sr", "ss", "ts", "te"})
MAX_DAYS = 7  # days kept in memory
MAX_TRACES = 100_000  # traces per day; records of further traces are counted and not indexed
MAX_SPANS = 1_000  # spans per trace
MAX_DATA = 4_096  # characters of one data field kept


def trace_path(day: str) -> tuple[str, ...]:
    """The day's trace file under the log directory, as K8SFramework names it (its logger(app, server, file))."""
    return TRACE_APP, TRACE_SERVER, f"{TRACE_APP}.{TRACE_SERVER}_{TRACE_FILE}_{day}.log"


@dataclass(slots=True)
class Record:
    trace: str
    span: str
    parent: str
    type: str
    master: str
    slave: str
    function: str
    time: int
    ret: str
    data: str


def parse_record(line: str) -> Record | None:
    """A record from a line of the trace file or a record as sent (whatever precedes it), None if it is not one."""
    fields = line.rstrip("\r\n").split("|")
    for i in range(3, len(fields) - 5):
        if fields[i] in TYPES and fields[i + 4].isdigit() and _is_int(fields[i + 5]) and fields[i - 3]:
            rest = fields[i + 6 :]
            data = "|".join(rest[:-1]) if len(rest) > 1 else "".join(rest)  # the last field is ex
            t, s, p = fields[i - 3 : i]
            kind, master, slave, func = fields[i : i + 4]
            return Record(t, s, p, kind, master, slave, func, int(fields[i + 4]), fields[i + 5], data[:MAX_DATA])
    return None


def _is_int(text: str) -> bool:
    return text.lstrip("-").isdigit()


@dataclass(slots=True)
class Span:
    span: str
    parent: str = ""
    master: str = ""
    slave: str = ""
    function: str = ""
    cs_time: int = 0
    cr_time: int = 0
    sr_time: int = 0
    ss_time: int = 0
    cs_data: str = ""
    cr_data: str = ""
    sr_data: str = ""
    ss_data: str = ""
    ret: str = ""
    children: list[str] = field(default_factory=list)

    def update(self, r: Record) -> None:
        if r.type in ("cs", "ts", "cr", "te"):
            self.parent = self.parent or r.parent
            self.master = self.master or r.master
        self.slave = self.slave or r.slave
        self.function = self.function or r.function
        if r.type in ("cs", "ts"):
            self.cs_data, self.cs_time = self.cs_data or r.data, r.time
        elif r.type in ("cr", "te"):
            self.ret, self.cr_data, self.cr_time = self.ret or r.ret, self.cr_data or r.data, r.time
        elif r.type == "sr":
            self.sr_data, self.sr_time = self.sr_data or r.data, r.time
        else:
            self.ret, self.ss_data, self.ss_time = self.ret or r.ret, self.ss_data or r.data, r.time


@dataclass(slots=True)
class Trace:
    trace: str
    root: str = ""  # the first span (tSpan)
    master: str = ""  # who opened the trace (tMaster)
    start: int = 0  # ms (tsTime)
    end: int = 0  # ms (teTime)
    spans: dict[str, Span] = field(default_factory=dict)

    def add(self, r: Record) -> None:
        if r.type in ("ts", "te") or (r.parent == r.span and r.type in ("cs", "cr")):
            if r.type in ("cs", "ts"):
                self.start = r.time
            else:
                self.end = r.time
            self.root, self.master = self.root or r.span, self.master or r.master
        elif r.type in ("cs", "cr") and len(self.spans) < MAX_SPANS:
            parent = self.spans.get(r.parent) or self.spans.setdefault(r.parent, Span(r.parent))
            if r.span not in parent.children:
                parent.children.append(r.span)
        span = self.spans.get(r.span)
        if span is None:
            if len(self.spans) >= MAX_SPANS:
                return
            span = self.spans[r.span] = Span(r.span)
        span.update(r)

    def touches(self, server: str) -> bool:
        """A span of this trace calls or serves ``server`` (a module ``App.Server`` or a servant name)."""
        prefix = server + "."
        return any(s.master == server or s.slave == server or s.slave.startswith(prefix) for s in self.spans.values())


class Day:
    """The traces of one day, in the order they began arriving."""

    def __init__(self) -> None:
        self.traces: dict[str, Trace] = {}
        self.version = 0  # bumped by every record: cached graphs of the day are stale
        self.unindexed = 0  # records of traces over MAX_TRACES

    def add(self, r: Record) -> None:
        t = self.traces.get(r.trace)
        if t is None:
            if len(self.traces) >= MAX_TRACES:
                self.unindexed += 1
                return
            t = self.traces[r.trace] = Trace(r.trace)
        t.add(r)
        self.version += 1


class TraceIndex:
    """The days' traces of the log directory ``root``: loaded from the trace file on first use, then fed."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()
        self._days: OrderedDict[str, Day] = OrderedDict()

    def days(self) -> list[str]:
        """The days in memory."""
        return list(self._days)

    def day(self, day: str) -> Day:
        d = self._days.get(day)
        if d is not None:
            self._days.move_to_end(day)
            return d
        d = Day()
        for line in _read_lines(self.root, trace_path(day)):
            r = parse_record(line)
            if r is not None:
                d.add(r)
        self._days[day] = d
        while len(self._days) > MAX_DAYS:
            self._days.popitem(last=False)
        return d

    def add(self, day: str, records: Iterable[str]) -> None:
        """Records as a LogF call brings them (one may hold several lines)."""
        d = self.day(day)
        for record in records:
            for line in record.splitlines():
                r = parse_record(line)
                if r is not None:
                    d.add(r)


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


def _read_lines(root: Path, path: tuple[str, ...]) -> Iterator[str]:
    """The lines of ``root/path``, following no symlink on the way (as the writer); nothing if it is missing or is
    not a regular file."""
    try:
        fd = _open_below(root, path)
    except FileNotFoundError:
        return
    except OSError as e:
        log.warning("log: cannot read %s: %s", root.joinpath(*path), e)
        return
    with os.fdopen(fd, "r", encoding="utf-8", errors="surrogateescape") as f:
        yield from f


def _open_below(root: Path, path: tuple[str, ...]) -> int:
    dir_fd = os.open(root, _DIR_FLAGS)
    try:
        for part in path[:-1]:
            parent, dir_fd = dir_fd, os.open(part, _DIR_FLAGS, dir_fd=dir_fd)
            os.close(parent)
        fd = os.open(path[-1], _READ_FLAGS, dir_fd=dir_fd)
    finally:
        with contextlib.suppress(OSError):
            os.close(dir_fd)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EPERM, "not a regular file")
    return fd
