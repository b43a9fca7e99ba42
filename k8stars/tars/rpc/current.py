"""The call being served: request, peer and response context, reachable from handlers via :func:`current`."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field

from k8stars.tars.packet import RequestPacket


@dataclass
class Current:
    request: RequestPacket
    peer: tuple[str, int] | None
    adapter: str
    response_context: dict[str, str] = field(default_factory=dict)

    @property
    def context(self) -> dict[str, str]:
        return self.request.context

    @property
    def status(self) -> dict[str, str]:
        return self.request.status

    @property
    def func(self) -> str:
        return self.request.sFuncName

    @property
    def servant(self) -> str:
        return self.request.sServantName

    @property
    def timeout_ms(self) -> int:
        return self.request.iTimeout

    @property
    def peer_host(self) -> str:
        return self.peer[0] if self.peer else ""


_current: ContextVar[Current] = ContextVar("k8stars_tars_current")


def current() -> Current:
    """The call a servant method is serving (LookupError outside a call)."""
    return _current.get()


def set_current(c: Current) -> None:
    _current.set(c)
