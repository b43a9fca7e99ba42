"""Processes: the service the supervisor runs (spawned without threads, awaited through a pidfd), PID files that
survive PID reuse (pid + kernel start time), and reaping orphans when tarscli is the container's PID 1."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from k8stars.tarscli.env import read_text

log = logging.getLogger("tarscli")

_PR_SET_PDEATHSIG = 1

# The children a Child awaits, by PID: their exit status is theirs to collect, never the orphan reaper's (a status
# reaped by waitpid(pid) elsewhere is lost: Popen then reads it as 0)
_awaited: set[int] = set()


def kill_group(pid: int, sig: int) -> None:
    """Signal the process group led by ``pid`` (services run in their own session), or ``pid`` alone."""
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def stop_group(pgid: int, grace: float) -> None:
    """SIGTERM the group, wait up to ``grace`` seconds for all of it to go, then SIGKILL what is left."""
    kill_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while group_alive(pgid) and time.monotonic() < deadline:
        reap_orphans()
        await asyncio.sleep(0.05)
    if group_alive(pgid):
        log.warning("process group %d still alive after %.1f s: SIGKILL", pgid, grace)
        kill_group(pgid, signal.SIGKILL)


@functools.cache
def die_with_parent(sig: int = signal.SIGTERM) -> Callable[[], None] | None:
    """A function for the child to run before exec: ask for ``sig`` when the thread that started it dies, so that a
    killed parent (a supervisor, a test run) leaves no process behind. ctypes is loaded here, in the parent (a forked
    child should not have to dlopen anything), and only by the commands that start processes."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes
    import ctypes.util

    prctl = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True).prctl

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, sig)

    return preexec


class Child:
    """A process started in its own session (its group is killable as a whole) whose exit is awaited without a
    helper thread: the loop watches a pidfd (Linux >= 5.3), or polls where there is none."""

    def __init__(self, argv: list[str], *, cwd: Path, env: dict[str, str], output: Path | int | None) -> None:
        """``output``: a file (truncated), a file descriptor to share (e.g. our stdout), or None (discarded)."""
        out = open(output, "wb") if isinstance(output, Path) else subprocess.DEVNULL if output is None else output
        try:
            self.proc = subprocess.Popen(
                argv,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent(),
            )
        finally:
            if not isinstance(out, int):
                out.close()
        self.pid = self.proc.pid
        _awaited.add(self.pid)
        self.started = time.monotonic()
        self._exited: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._watch()

    def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            fd = os.pidfd_open(self.pid)
        except (AttributeError, OSError):
            self._poller = loop.create_task(self._poll())
            return

        def on_exit() -> None:
            loop.remove_reader(fd)
            os.close(fd)
            self._collect()

        loop.add_reader(fd, on_exit)

    async def _poll(self) -> None:
        while self.proc.poll() is None:
            await asyncio.sleep(0.2)
        self._collect()

    def _collect(self) -> None:
        code = self.proc.wait()
        _awaited.discard(self.pid)
        if not self._exited.done():
            self._exited.set_result(code)

    @property
    def running(self) -> bool:
        return not self._exited.done()

    @property
    def returncode(self) -> int | None:
        return self._exited.result() if self._exited.done() else None

    async def wait(self) -> int:
        return await asyncio.shield(self._exited)

    async def wait_for(self, timeout: float) -> bool:
        """True if the child exited within ``timeout`` seconds."""
        try:
            await asyncio.wait_for(self.wait(), timeout)
        except TimeoutError:
            return False
        return True


async def run_bounded(
    argv: list[str], *, cwd: Path, env: dict[str, str], output: Path, timeout: float, kill_grace: float
) -> int | None:
    """Run a command (a script beside the service) to completion: its exit code, or None when it was still running
    at ``timeout`` and its whole group was stopped."""
    child = Child(argv, cwd=cwd, env=env, output=output)
    if await child.wait_for(timeout):
        return child.returncode
    await stop_group(child.pid, kill_grace)
    return None


def reap_orphans() -> None:
    """As PID 1 of a container, the orphans of the service become ours: collect their exit status so they do not
    stay zombies. The children a :class:`Child` awaits (the service, its scripts) are left to it, so that their
    exit status is always seen."""
    if os.getpid() != 1:
        return
    me = str(os.getpid())
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in _awaited:
            continue
        stat = read_text(Path(f"/proc/{entry}/stat"))
        if not stat:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if fields[0] == "Z" and fields[1] == me:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(int(entry), os.WNOHANG)
