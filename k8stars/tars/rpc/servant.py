"""How a request becomes a call of one of a servant's methods (the servant base is :mod:`k8stars.tars.stub`)."""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import sys
from collections.abc import Awaitable, Callable, Coroutine
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


@dataclass(slots=True)
class Reply:
    """What to send back for one request: iRet, body, description, and (for TUP) the status map."""

    ret: int
    body: bytes = b""
    desc: str = ""
    status: dict[str, str] | None = None


Handler = Callable[..., Awaitable[Any]]


if sys.version_info >= (3, 12):

    def start_call(coro: Coroutine[Any, Any, None], context: contextvars.Context) -> asyncio.Future[None] | None:
        """Run a call in a Task of its own, its first step at once; None when that step already finished it."""
        task = asyncio.Task(coro, loop=asyncio.get_running_loop(), context=context, eager_start=True)
        return None if task.done() else task

else:
    # Python 3.11 has no eager tasks, and a C Task costs a scheduled step plus a weak registration per call (15 % of
    # an echo call's CPU). This Task runs its first step at once, inside the call's context and as the current task,
    # and is registered only if it has to wait; from there on the stdlib's pure-Python Task drives it. It is a full
    # Task (asyncio.timeout, TaskGroup, current_task, cancel work), though not an instance of the C asyncio.Task.
    _PyTask: Any = asyncio.tasks._PyTask  # type: ignore[attr-defined]
    _PyFuture: Any = asyncio.futures._PyFuture  # type: ignore[attr-defined]
    _get_loop: Any = asyncio.futures._get_loop  # type: ignore[attr-defined]
    _current_tasks: dict[asyncio.AbstractEventLoop, Any] = asyncio.tasks._current_tasks  # type: ignore[attr-defined]
    _enter_task, _leave_task, _register_task = (
        asyncio.tasks._enter_task,
        asyncio.tasks._leave_task,
        asyncio.tasks._register_task,
    )

    class _WaitingCall(_PyTask):  # type: ignore[misc]
        """A call that had to wait: the stdlib's Task from there on (its __del__ reports one destroyed pending)."""

        _name = "tars-call"
        # Task.__init__'s per-instance defaults as class attributes: less to allocate for each call
        _num_cancels_requested = 0
        _must_cancel = False
        _fut_waiter: Any = None

    class _CallTask(_WaitingCall):
        def __init__(self, coro: Coroutine[Any, Any, None], loop: asyncio.AbstractEventLoop,
                     context: contextvars.Context) -> None:  # fmt: skip
            # what Task.__init__ sets, without its call_soon and registration
            self._loop, self._coro, self._context = loop, coro, context
            self._callbacks: list[Any] = []
            outer = _current_tasks.get(loop)  # a call started from inside a Task: that one waits, as in 3.12
            if outer is not None:
                _leave_task(loop, outer)
            _enter_task(loop, self)
            try:
                result = context.run(coro.send, None)
            except StopIteration:
                if self._callbacks:  # the handler added done callbacks to its own task: they run
                    _PyFuture.set_result(self, None)
                else:
                    self._state = "FINISHED"
                return
            except asyncio.CancelledError as exc:
                self._cancelled_exc = exc
                _PyFuture.cancel(self)
                return
            except (KeyboardInterrupt, SystemExit) as exc:
                _PyFuture.set_exception(self, exc)
                raise
            except BaseException as exc:
                _PyFuture.set_exception(self, exc)
                return
            finally:
                _leave_task(loop, self)
                if outer is not None:
                    _enter_task(loop, outer)
            self.__class__ = _WaitingCall
            _register_task(self)
            # what Task.__step does with what a coroutine yields
            if getattr(result, "_asyncio_future_blocking", False) and _get_loop(result) is loop:
                result._asyncio_future_blocking = False
                result.add_done_callback(self._Task__wakeup, context=context)
                self._fut_waiter = result
                if self._must_cancel and result.cancel(msg=self._cancel_message):
                    self._must_cancel = False
            elif result is None:  # a bare yield (asyncio.sleep(0))
                loop.call_soon(self._Task__step, context=context)
            else:
                loop.call_soon(self._Task__step, RuntimeError(f"a call yielded {result!r}"), context=context)

        def __del__(self) -> None:
            """Done in its first step (a waiting one is a _WaitingCall): nothing to report, and cheaper than Task's."""

    def start_call(coro: Coroutine[Any, Any, None], context: contextvars.Context) -> asyncio.Future[None] | None:
        """Run a call in a Task of its own, its first step at once; None when that step already finished it."""
        task = _CallTask(coro, asyncio.get_running_loop(), context)
        return None if task.done() else task


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
        try:  # plain TARS (version 1) inline: this is every call's path
            args = op.decode_args(req.sBuffer) if version == 1 else _decode_args(op, req.sBuffer, version)
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
            return Reply(0, op.encode_result(result) if version == 1 else _encode_result(op, result, version))
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
