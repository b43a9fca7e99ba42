"""Bounds on the memory a server's peers can make it hold, and on how slowly they may send.

Without them (issue 16, item 4) 20 connections each holding a partial 9 MiB frame added 163 MB, pipelined calls
whose replies were never read added 85 MB, and a frame trickled one byte a second held its connection forever.
Now:

- input: the bytes of frames not yet whole, summed over every connection of the process, stay under
  ``input_bytes``; the connection whose data would go beyond is dropped;
- output: a connection whose peer does not read its replies stops being read once ``pause_output`` bytes of them
  wait (backpressure: the peer's sends block, nothing more is decoded), and is dropped when its unsent replies pass
  ``connection_output``, or those of every connection together pass ``output_bytes``;
- time: a frame begun must be whole within ``frame_seconds``, else its connection is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from k8stars.tars.packet import MAX_FRAME_SIZE

MIB = 1 << 20


@dataclass(frozen=True)
class Limits:
    input_bytes: int = 64 * MIB  # partial frames, all connections
    output_bytes: int = 64 * MIB  # unsent replies, all connections
    connection_output: int = MAX_FRAME_SIZE + MIB  # unsent replies of one connection (one largest reply fits)
    pause_output: int = MIB  # reading of a connection pauses above this much unsent output
    frame_seconds: float = 60.0  # from a frame's first byte to its last


@dataclass
class Budget:
    """What the connections sharing it hold now, against ``limits``; ``dropped`` counts the connections dropped."""

    limits: Limits = field(default_factory=Limits)
    input: int = 0
    output: int = 0
    dropped: int = 0

    def describe(self) -> str:
        lim = self.limits
        return (
            f"partial input {self.input} of {lim.input_bytes} bytes, unsent output {self.output} of "
            f"{lim.output_bytes} bytes, frame deadline {lim.frame_seconds:g} s, dropped {self.dropped}"
        )


PROCESS_BUDGET = Budget()  # the adapters of a process share one, unless their config names another


class Held:
    """What one connection holds of a budget; ``update`` returns the reason to drop it, if any."""

    __slots__ = ("budget", "input", "output")

    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self.input = 0
        self.output = 0

    def update_input(self, now_held: int) -> str:
        b = self.budget
        b.input += now_held - self.input
        self.input = now_held
        if now_held and b.input > b.limits.input_bytes:
            return f"partial frames of all connections above {b.limits.input_bytes} bytes"
        return ""

    def update_output(self, now_held: int) -> str:
        b = self.budget
        b.output += now_held - self.output
        self.output = now_held
        if now_held > b.limits.connection_output:
            return f"{now_held} bytes of replies unread (limit {b.limits.connection_output} a connection)"
        if now_held and b.output > b.limits.output_bytes:
            return f"unread replies of all connections above {b.limits.output_bytes} bytes"
        return ""

    def release(self) -> None:
        self.update_input(0)
        self.update_output(0)
