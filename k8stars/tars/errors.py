"""Errors of the TARS protocol layer.

Codec errors are raised for bad bytes or bad values; ``TarsRpcError`` and its subclasses carry a TARS iRet code
(BaseF.tars) so that a server can answer with the right code and a client can tell what happened.
"""

from __future__ import annotations


class TarsError(Exception):
    """Base of every error k8stars.tars raises."""


class DecodeError(TarsError):
    """The bytes are not a valid TARS encoding of the expected type (truncated, wrong type code, bad length...)."""


class EncodeError(TarsError):
    """A value cannot be written as the declared TARS type (out of range, wrong Python type, missing field)."""


class FrameError(DecodeError):
    """A length-prefixed frame is malformed or larger than allowed; the connection must be closed."""


class IdlError(TarsError):
    """A .tars file cannot be parsed or compiled; the message names file, line and column."""

    def __init__(self, message: str, file: str = "<string>", line: int = 0, column: int = 0) -> None:
        self.file, self.line, self.column, self.reason = file, line, column, message
        super().__init__(f"{file}:{line}:{column}: {message}")


# iRet codes of BaseF.tars.
TARSSERVERSUCCESS = 0
TARSSERVERDECODEERR = -1
TARSSERVERENCODEERR = -2
TARSSERVERNOFUNCERR = -3
TARSSERVERNOSERVANTERR = -4
TARSSERVERRESETGRID = -5
TARSSERVERQUEUETIMEOUT = -6
TARSASYNCCALLTIMEOUT = -7
TARSINVOKETIMEOUT = -7
TARSPROXYCONNECTERR = -8
TARSSERVEROVERLOAD = -9
TARSADAPTERNULL = -10
TARSINVOKEBYINVALIDESET = -11
TARSCLIENTDECODEERR = -12
TARSSENDREQUESTERR = -13
TARSSERVERUNKNOWNERR = -99

_CODE_NAMES = {
    0: "TARSSERVERSUCCESS",
    -1: "TARSSERVERDECODEERR",
    -2: "TARSSERVERENCODEERR",
    -3: "TARSSERVERNOFUNCERR",
    -4: "TARSSERVERNOSERVANTERR",
    -5: "TARSSERVERRESETGRID",
    -6: "TARSSERVERQUEUETIMEOUT",
    -7: "TARSINVOKETIMEOUT",
    -8: "TARSPROXYCONNECTERR",
    -9: "TARSSERVEROVERLOAD",
    -10: "TARSADAPTERNULL",
    -11: "TARSINVOKEBYINVALIDESET",
    -12: "TARSCLIENTDECODEERR",
    -13: "TARSSENDREQUESTERR",
    -99: "TARSSERVERUNKNOWNERR",
}


def code_name(code: int) -> str:
    """The BaseF.tars name of an iRet code, or the number for business codes."""
    return _CODE_NAMES.get(code, str(code))


class TarsRpcError(TarsError):
    """A call failed with a TARS iRet code (from the server, or client-side like a timeout)."""

    code = TARSSERVERUNKNOWNERR

    def __init__(self, message: str = "", code: int | None = None) -> None:
        if code is not None:
            self.code = code
        self.message = message
        name = code_name(self.code)
        label = name if name == str(self.code) else f"{name} ({self.code})"  # business codes have no name
        super().__init__(f"{label}: {message}" if message else label)


class ServerDecodeError(TarsRpcError):
    code = TARSSERVERDECODEERR


class ServerEncodeError(TarsRpcError):
    code = TARSSERVERENCODEERR


class NoFunctionError(TarsRpcError):
    code = TARSSERVERNOFUNCERR


class NoServantError(TarsRpcError):
    code = TARSSERVERNOSERVANTERR


class QueueTimeoutError(TarsRpcError):
    code = TARSSERVERQUEUETIMEOUT


class InvokeTimeoutError(TarsRpcError):
    code = TARSINVOKETIMEOUT


class ConnectError(TarsRpcError):
    code = TARSPROXYCONNECTERR


class OverloadError(TarsRpcError):
    code = TARSSERVEROVERLOAD


class AdapterNullError(TarsRpcError):
    code = TARSADAPTERNULL


class ClientDecodeError(TarsRpcError):
    code = TARSCLIENTDECODEERR


class SendRequestError(TarsRpcError):
    code = TARSSENDREQUESTERR


class ServerUnknownError(TarsRpcError):
    code = TARSSERVERUNKNOWNERR


_BY_CODE: dict[int, type[TarsRpcError]] = {
    cls.code: cls
    for cls in (
        ServerDecodeError,
        ServerEncodeError,
        NoFunctionError,
        NoServantError,
        QueueTimeoutError,
        InvokeTimeoutError,
        ConnectError,
        OverloadError,
        AdapterNullError,
        ClientDecodeError,
        SendRequestError,
        ServerUnknownError,
    )
}


def rpc_error(code: int, message: str = "") -> TarsRpcError:
    """The named exception for an iRet code; business codes give a plain TarsRpcError carrying the code."""
    cls = _BY_CODE.get(code)
    return cls(message) if cls is not None else TarsRpcError(message, code)
