"""Starting control-plane processes detached, and stopping them by PID (never by name)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from k8stars.tarscli import proc as tarscli_proc


@dataclass(frozen=True)
class Proc:
    """One started component: enough to find, check and stop it from another process later."""

    name: str
    pid: int
    # Kernel start time of the process (clock ticks since boot): with the PID it identifies this
    # very process, so a stop never hits an unrelated process that got the PID later.
    start_ticks: int
    log: str


def spawn(
    name: str,
    argv: Sequence[str],
    log_dir: Path,
    env: dict[str, str] | None = None,
    die_with_parent: bool = False,
) -> Proc:
    """Start `argv` in its own session with output to `<log_dir>/<name>.log`.

    Its own session so that a Ctrl-C meant for the launcher (or pytest) does not reach the
    control plane half-way through; teardown stops it deliberately, in order. Popen rather
    than asyncio's subprocess transport: that one kills the child when the loop closes, and
    `up` must leave the cluster running after the launcher exits. `die_with_parent` is for
    test sessions: a killed pytest must not leave a control plane behind. It is tied to the
    calling *thread*, so call from a thread that lives as long as the cluster should.
    """
    log = log_dir / f"{name}.log"
    with log.open("ab") as out:
        popen = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
            close_fds=True,
            # SIGKILL, not SIGTERM: without its etcd, a terminating kube-apiserver lingers for long
            preexec_fn=tarscli_proc.die_with_parent(signal.SIGKILL) if die_with_parent else None,
        )
    return Proc(name=name, pid=popen.pid, start_ticks=_start_ticks(popen.pid), log=str(log))


def current(name: str) -> Proc:
    """This very process, as a Proc (its log: none)."""
    return Proc(name=name, pid=os.getpid(), start_ticks=_start_ticks(os.getpid()), log="")


def _start_ticks(pid: int) -> int:
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else -1


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (state is [0], starttime is [19])."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may itself contain spaces or parentheses.
    return stat.rpartition(")")[2].split()


def is_ours(proc: Proc) -> bool:
    """True while `proc.pid` is alive and is still the process we started (PIDs get reused)."""
    fields = _stat_fields(proc.pid)
    # A zombie (our own unreaped child) is dead for every purpose here.
    return fields is not None and fields[0] != "Z" and int(fields[19]) == proc.start_ticks


def exit_status(proc: Proc) -> int | None:
    """Reap `proc` if it is our child and has exited; its exit code, else None."""
    try:
        pid, status = os.waitpid(proc.pid, os.WNOHANG)
    except ChildProcessError:
        return None if is_ours(proc) else -1
    if pid == 0:
        return None
    return os.waitstatus_to_exitcode(status)


def log_tail(proc: Proc, lines: int = 25) -> str:
    try:
        text = Path(proc.log).read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def stop(proc: Proc, grace: float = 10.0) -> None:
    """SIGTERM, wait up to `grace` seconds, then SIGKILL; only if the PID is still ours."""
    if not is_ours(proc):
        exit_status(proc)
        return
    _signal(proc, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        exit_status(proc)
        if not is_ours(proc):
            return
        time.sleep(0.05)
    _signal(proc, signal.SIGKILL)
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline and is_ours(proc):
        exit_status(proc)
        time.sleep(0.05)


async def stop_async(proc: Proc, grace: float = 10.0) -> None:
    await asyncio.to_thread(stop, proc, grace)


def _signal(proc: Proc, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, sig)


def rss_bytes(pid: int) -> int:
    """Resident set size of one process, 0 if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0
