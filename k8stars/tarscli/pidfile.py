"""PID files that survive PID reuse (pid + kernel start time). Apart from proc.py so that ``tarscli hzcheck`` and
``genconf`` read them without importing asyncio."""

from __future__ import annotations

from pathlib import Path

from k8stars.tarscli.env import read_text, write_atomic


def start_time(pid: int) -> int | None:
    """The kernel's start time of ``pid`` (clock ticks since boot), None if it does not exist or is a zombie."""
    stat = read_text(Path(f"/proc/{pid}/stat"))
    if stat is None:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def write_pid_file(path: Path, pid: int) -> None:
    write_atomic(path, f"{pid} {start_time(pid) or 0}\n")


def live_pid(path: Path) -> int | None:
    """The PID recorded in ``path`` if that very process (same start time) is still running."""
    text = read_text(path)
    if not text:
        return None
    try:
        pid_s, _, started_s = text.strip().partition(" ")
        pid, started = int(pid_s), int(started_s or "0")
    except ValueError:
        return None
    now = start_time(pid)
    if now is None or (started and now != started):
        return None
    return pid
