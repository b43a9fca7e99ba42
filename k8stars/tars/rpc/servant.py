"""How a request becomes a call of one of a servant's methods (the servant base is :mod:`k8stars.tars.stub`)."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from k8stars.tars import errors
from k8stars.tars.errors import DecodeError, EncodeError, TarsRpcError
from k8stars.tars.idl.compiler import py_name
from k8stars.tars.interface import Interface, Operation
from k8stars.tars.jsonvalue import from_json, loads_object, to_json
from k8stars.tars.packet import (
    JSONVERSION,
    STATUS_RESULT_CODE,
    STATUS_RESULT_DESC,
    TUPVERSION,
    TUPVERSION2,
    RequestPacket,
)
from k8stars.tars.stub import Servant
from k8stars.tars.tup import UniAttribute

log = logging.getLogger("k8stars.tars.rpc")


@dataclass
class Reply:
    """What to send back for one request: iRet, body, description, and (for TUP) the status map."""

    ret: int
    body: bytes = b""
    desc: str = ""
    status: dict[str, str] | None = None


Handler = Callable[..., Awaitable[Any]]


class Dispatcher:
    """Operations of one servant instance by function name, with their bound methods."""

    def __init__(self, servant: Servant, interface: Interface | None = None) -> None:
        self.servant = servant
        self.interface = interface or type(servant).__tars_interface__
        self.table: dict[str, tuple[Operation, Handler]] = {}
        for name, op in self.interface.operations.items():
            method = getattr(servant, py_name(name), None)
            if method is not None:
                self.table[name] = (op, method)

    async def dispatch(self, req: RequestPacket) -> Reply:
        entry = self.table.get(req.sFuncName)
        if entry is None:
            return Reply(errors.TARSSERVERNOFUNCERR, desc=f"no function {req.sFuncName} in {req.sServantName}")
        op, method = entry
        version = req.iVersion
        try:
            args = _decode_args(op, req.sBuffer, version)
        except (DecodeError, EncodeError, ValueError) as e:
            return Reply(errors.TARSSERVERDECODEERR, desc=f"{op.name}: cannot decode parameters: {e}")
        try:
            result = await method(*args)
        except TarsRpcError as e:
            return Reply(e.code, desc=e.message or str(e))
        except NotImplementedError:
            return Reply(errors.TARSSERVERNOFUNCERR, desc=f"{op.name} is not implemented")
        except Exception as e:  # a handler bug must not take the server down; the caller gets the text
            log.exception("%s.%s failed", req.sServantName, op.name)
            return Reply(errors.TARSSERVERUNKNOWNERR, desc=f"{type(e).__name__}: {e}")
        try:
            return Reply(0, _encode_result(op, result, version))
        except (EncodeError, TypeError) as e:
            log.error("%s.%s returned a value that cannot be encoded: %s", req.sServantName, op.name, e)
            return Reply(errors.TARSSERVERENCODEERR, desc=f"{op.name}: cannot encode result: {e}")


def _decode_args(op: Operation, body: bytes, version: int) -> list[Any]:
    if version in (TUPVERSION, TUPVERSION2):
        ua = UniAttribute.decode(body, version)
        return [ua.get(f.name, f.type) if f.name in ua else f.default_value() for f in op.in_fields]
    if version == JSONVERSION:
        doc = loads_object(body)
        return [from_json(f.type, doc[f.name], f.name) if f.name in doc else f.default_value() for f in op.in_fields]
    return op.decode_args(body)


def _encode_result(op: Operation, result: Any, version: int) -> bytes:
    if version == 1 or version not in (TUPVERSION, TUPVERSION2, JSONVERSION):
        return op.encode_result(result)
    values = _result_values(op, result)
    if version == JSONVERSION:
        doc = {("tars_ret" if f.name == "ret" and op.ret is not None and i == 0 else f.name): to_json(f.type, v)
               for i, (f, v) in enumerate(zip(op.out_fields, values, strict=True))}  # fmt: skip
        return json.dumps(doc, ensure_ascii=False).encode()
    ua = UniAttribute(version)
    for i, (f, v) in enumerate(zip(op.out_fields, values, strict=True)):
        if i == 0 and op.ret is not None:
            ua.put("", f.type, v)
            ua.put("tars_ret", f.type, v)
        else:
            ua.put(f.name, f.type, v)
    return ua.encode()


def _result_values(op: Operation, result: Any) -> tuple[Any, ...]:
    if op.result_type is None:
        return () if op.ret is None else (result,)
    return tuple(result)


def tup_status(reply: Reply) -> dict[str, str]:
    """The status map of a TUP reply (codes travel in status, not iRet)."""
    return {STATUS_RESULT_CODE: str(reply.ret), STATUS_RESULT_DESC: reply.desc}
