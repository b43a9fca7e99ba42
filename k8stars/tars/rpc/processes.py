"""A server on every core: the first process of a server binds its adapters' ports, then starts ``processes - 1``
copies of itself (the same command line) that bind the same ports with ``SO_REUSEPORT``; the kernel spreads the
connections between them. One Python process runs on one core, so this is what TarsCpp's ``netthread``/``threads``
and TarsGo's goroutines are to theirs.

Only the first process keeps the server's own parts: AdminObj (its ``local`` endpoint), the node heartbeats and
registrations. A copy learns it is one from ``K8STARS_SERVER_PROCESS`` (its index and the read end of a pipe whose
write end the first process holds) and the bound ports from ``K8STARS_SERVER_PORTS``; both are removed from its
environment at once, so that its own children never take them for theirs. When the pipe closes (the first process
stops, or dies however it dies), the copy stops gracefully: no copy outlives the first process. A copy that exits
while the server runs is started again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("k8stars.tars.rpc")

PROCESS_ENV = "K8STARS_SERVER_PROCESS"  # "<index>:<fd>" in a copy
PORTS_ENV = "K8STARS_SERVER_PORTS"  # "<adapter>=<port>,..." the ports the first process bound
RESTART_DELAY_S = 1.0  # a copy that keeps exiting is started again at most this often
STOP_EXTRA_S = 5.0  # after the grace period, copies get this long to exit before SIGKILL


def cpu_count() -> int:
    """The cores this process may run on (its affinity, not the machine's)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def parse_processes(text: str | int) -> int:
    """``processes=`` as a config or command line gives it: a count >= 1, or ``0``/``max``: one per core."""
    value = str(text).strip().lower()
    if value in ("max", "0"):
        return cpu_count()
    try:
        n = int(value)
    except ValueError:
        raise ValueError(f"processes={text!r}: give a number of processes, or max (one per core)") from None
    if n < 1:
        raise ValueError(f"processes={text!r}: give a number >= 1, or max (one per core)")
    return n


@dataclass(frozen=True)
class Copy:
    """What a copy of a server learns from the first process."""

    index: int
    pipe_fd: int
    ports: dict[str, int]


_copy: Copy | None = None
_read = False


def this_copy() -> Copy | None:
    """This process's place when it is a copy started by the first process of a server (read once)."""
    global _copy, _read
    if not _read:
        _read = True
        spec = os.environ.pop(PROCESS_ENV, "")
        ports = os.environ.pop(PORTS_ENV, "")
        if spec:
            index, _, fd = spec.partition(":")
            pairs = (p.rpartition("=") for p in ports.split(",") if p)
            _copy = Copy(int(index), int(fd), {name: int(port) for name, _, port in pairs})
    return _copy


def watch_first_process(copy: Copy, on_gone: Callable[[], None]) -> None:
    """Call ``on_gone`` once the first process closes the pipe (it stops, or died)."""
    loop = asyncio.get_running_loop()
    os.set_blocking(copy.pipe_fd, False)

    def readable() -> None:
        try:
            data = os.read(copy.pipe_fd, 64)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            loop.remove_reader(copy.pipe_fd)
            on_gone()

    loop.add_reader(copy.pipe_fd, readable)


class Copies:
    """The first process's side: starts the copies, starts again one that exits, stops them all."""

    def __init__(self, count: int, ports: dict[str, int], argv: list[str] | None = None) -> None:
        self.count = count
        self.ports = ports
        self.argv = argv or [sys.executable, *sys.orig_argv[1:]]
        self.procs: dict[int, tuple[subprocess.Popen[bytes], int]] = {}  # index -> (process, write end of its pipe)
        self.stopping = False
        self._watch: asyncio.Task[None] | None = None

    def start(self) -> None:
        for index in range(1, self.count):
            self._spawn(index)
        self._watch = asyncio.get_running_loop().create_task(self._restart_exited(), name="tars-server-processes")

    @property
    def pids(self) -> list[int]:
        return [p.pid for p, _ in self.procs.values()]

    def _spawn(self, index: int) -> None:
        read_end, write_end = os.pipe()
        env = dict(os.environ)
        env[PROCESS_ENV] = f"{index}:{read_end}"
        env[PORTS_ENV] = ",".join(f"{name}={port}" for name, port in self.ports.items())
        try:
            proc = subprocess.Popen(self.argv, env=env, pass_fds=(read_end,), stdin=subprocess.DEVNULL)
        except BaseException:
            os.close(write_end)
            raise
        finally:
            os.close(read_end)
        os.set_inheritable(write_end, False)
        self.procs[index] = (proc, write_end)
        log.info("server process %d started (pid %d)", index, proc.pid)

    async def _restart_exited(self) -> None:
        while not self.stopping:
            await asyncio.sleep(RESTART_DELAY_S)
            for index, (proc, write_end) in list(self.procs.items()):
                if proc.poll() is not None and not self.stopping:
                    log.warning("server process %d (pid %d) exited with %s; starting it again", index, proc.pid,
                                proc.returncode)  # fmt: skip
                    os.close(write_end)
                    del self.procs[index]
                    self._spawn(index)

    async def stop(self, grace: float) -> None:
        """Close every pipe (each copy stops gracefully), wait for them; SIGKILL what is left after the grace."""
        self.stopping = True
        if self._watch is not None:
            self._watch.cancel()
        for _, write_end in self.procs.values():
            os.close(write_end)
        deadline = time.monotonic() + grace + STOP_EXTRA_S
        while any(p.poll() is None for p, _ in self.procs.values()) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for index, (proc, _) in self.procs.items():
            if proc.poll() is None:
                log.warning("server process %d (pid %d) did not stop in time; killing it", index, proc.pid)
                proc.kill()
                proc.wait()
        self.procs.clear()
