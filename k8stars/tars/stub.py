"""The bases generated code subclasses: :class:`ServantProxy` (a client's side of an IDL interface) and
:class:`Servant` (a server's side), with the per-call :class:`CallOptions`.

They live below the RPC runtime so that generated modules (``k8stars/tars/protocol/*.py`` and every module
``k8stars tars2py`` writes) import only the codec and this module; the runtime (:mod:`k8stars.tars.rpc`) uses the
generated framework interfaces and so sits above them. A proxy calls through a :class:`CallTarget`, which the
runtime's communicator provides.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Protocol, TypeVar

from k8stars.tars.endpoint import Endpoint
from k8stars.tars.errors import ClientDecodeError, DecodeError
from k8stars.tars.interface import Interface
from k8stars.tars.packet import PING_FUNC, ResponsePacket

P = TypeVar("P", bound="ServantProxy")


@dataclass(frozen=True)
class CallOptions:
    timeout_ms: int | None = None  # None: the communicator's sync-invoke-timeout
    context: dict[str, str] = field(default_factory=dict)
    status: dict[str, str] = field(default_factory=dict)
    oneway: bool = False
    hash_code: int | None = None  # route by hash instead of round robin


class CallTarget(Protocol):
    """One servant name as the runtime reaches it (the communicator's object proxy)."""

    name: str
    endpoints: list[Endpoint]

    async def resolve(self) -> None: ...

    async def invoke(self, func: str, body: bytes, opts: CallOptions) -> ResponsePacket | None: ...


class ServantProxy:
    """Base of generated proxy classes; generated methods call :meth:`tars_invoke`. Every name a proxy adds
    starts with ``tars`` so that it cannot collide with an IDL operation. Get one from
    :meth:`k8stars.tars.rpc.Communicator.string_to_proxy`."""

    __tars_interface__: ClassVar[Interface]

    def __init__(self, target: CallTarget, options: CallOptions | None = None, interface: Interface | None = None):
        self._target = target
        self._options = options or CallOptions()
        self._interface = interface or type(self).__tars_interface__

    @property
    def tars_name(self) -> str:
        return self._target.name

    @property
    def tars_interface(self) -> Interface:
        return self._interface

    def tars_options(self: P, **changes: Any) -> P:
        """A proxy to the same servant with other call options (timeout_ms, context, status, oneway, hash_code)."""
        clone = type(self).__new__(type(self))
        ServantProxy.__init__(clone, self._target, replace(self._options, **changes), self._interface)
        return clone

    async def tars_invoke(self, func: str, args: Any) -> Any:
        op = self._interface.operations[func]
        body = op.encode_args(args)
        rsp = await self._target.invoke(func, body, self._options)
        if rsp is None:
            return None
        try:
            return op.decode_result(rsp.sBuffer)
        except DecodeError as e:
            raise ClientDecodeError(f"{self.tars_name}.{func}: {e}") from None

    async def tars_invoke_raw(self, func: str, body: bytes) -> ResponsePacket | None:
        """Send an already encoded parameter body; returns the ResponsePacket (None for one-way calls)."""
        return await self._target.invoke(func, body, self._options)

    async def tars_ping(self) -> None:
        await self._target.invoke(PING_FUNC, b"", self._options)

    async def tars_endpoints(self) -> list[Endpoint]:
        """The active endpoints calls go to (resolving through the locator if needed)."""
        await self._target.resolve()
        return list(self._target.endpoints)


class Servant:
    """Base of generated servant classes. Subclass the generated ``XServant`` and implement its async methods;
    a method returns its IDL return value, or a tuple ``(ret, out1, ...)`` when the operation has out params.
    Raise :class:`~k8stars.tars.errors.TarsRpcError` with a code to answer with that code. Serve it with
    :class:`k8stars.tars.rpc.Server` or :class:`k8stars.tars.rpc.Application`."""

    __tars_interface__: ClassVar[Interface]
