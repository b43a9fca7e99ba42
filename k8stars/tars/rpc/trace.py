"""Call-chain tracing as TarsGo and TarsCpp do it: when a call is traced, the client writes a ``cs`` record before it
sends and a ``cr`` record when the answer comes, the server an ``sr`` record when the request arrives and an ``ss``
record when it answers; the log service builds the chain from them (``Topology``).

A trace is opened on the client side::

    with trace.open_trace(params=True):        # this task and the tasks it creates
        await proxy.hello("x")                 # traced: the request carries the trace key

The trace travels in the request's status map (``STATUS_TRACE_KEY``, ``traceId|spanId``) with ``iMessageType``
bit ``TARSMESSAGETYPETRACE`` (0x100); a server receiving such a request traces its own calls made while serving it
as children of the caller's span. The trace id is ``<flags hex>[.<max KB>]-<32 hex>``; the flags ask for the
parameters in the records (bits cs 1, cr 2, sr 4, ss 8; TarsGo's OpenTarsTrace uses 15 or 0), each at most
``max KB`` (default 1) or else replaced by ``{"trace_param_over_max_len":true}``.

The records go to the ``_t_trace_`` remote log (LogF.loggerbyInfo, file ``_t_trace_``) as TarsGo writes them:
``YYYY-mm-dd HH:MM:SS|traceId|spanId|parentSpanId|type|master|slave|function|time ms|ret|base64(data)|``, where
``cs``/``cr`` name the client's module and the servant called, and ``sr``/``ss`` key the caller's span with parent
``*``. Tracing off costs one ContextVar lookup per call.
"""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from k8stars.tars.codec import decode_fields
from k8stars.tars.errors import TarsRpcError
from k8stars.tars.jsonvalue import to_json
from k8stars.tars.packet import STATUS_TRACE_KEY, RequestPacket, ResponsePacket
from k8stars.tars.stub import CallOptions

if TYPE_CHECKING:
    from k8stars.tars.interface import Operation
    from k8stars.tars.rpc.proxy import Communicator, ObjectProxy
    from k8stars.tars.rpc.remotelog import RemoteLogHandler
    from k8stars.tars.rpc.servant import Dispatcher, Reply

TRACE_FILE = "_t_trace_"  # the remote log file of trace records (K8SFramework's LogServer reads this name)
CS, CR, SR, SS = "cs", "cr", "sr", "ss"
_FLAG = {CS: 1, CR: 2, SR: 4, SS: 8}
OVER_MAX_LEN = '{"trace_param_over_max_len":true}'
DEFAULT_MAX_KB = 1


@dataclass(frozen=True, slots=True)
class Span:
    """The trace of the running task: its id and the span its calls descend from (empty on the client that opened
    it: its calls are roots)."""

    trace_id: str
    parent: str = ""

    @property
    def flags(self) -> int:
        return _parse_id(self.trace_id)[0]

    @property
    def max_bytes(self) -> int:
        return _parse_id(self.trace_id)[1] * 1024


_span: ContextVar[Span | None] = ContextVar("k8stars_tars_trace", default=None)


def active() -> Span | None:
    """The trace of the running task, if any (the hot path's one lookup)."""
    return _span.get()


def new_trace_id(params: bool = False, max_kb: int = 0) -> str:
    """A trace id as TarsGo's OpenTrace makes it: ``f-<32 hex>`` with parameters, ``0-<32 hex>`` without."""
    flags = "f" if params else "0"
    return f"{flags}.{max_kb}-{secrets.token_hex(16)}" if max_kb > 0 else f"{flags}-{secrets.token_hex(16)}"


@contextlib.contextmanager
def open_trace(params: bool = False, max_kb: int = 0, trace_id: str = "") -> Iterator[str]:
    """Trace the calls this task (and the tasks it creates) makes inside the block; yields the trace id."""
    tid = trace_id or new_trace_id(params, max_kb)
    token = _span.set(Span(tid))
    try:
        yield tid
    finally:
        _span.reset(token)


def _parse_id(trace_id: str) -> tuple[int, int]:
    """(flags, max KB) of a trace id, as TarsGo's initType: flags in hex before ``-``, 0..15, else 0."""
    head, sep, _ = trace_id.partition("-")
    if not sep:
        return 0, DEFAULT_MAX_KB
    flags_text, _, max_text = head.partition(".")
    try:
        flags = int(flags_text, 16)
    except ValueError:
        flags = 0
    max_kb = DEFAULT_MAX_KB
    if max_text.isdigit() and int(max_text) > max_kb:
        max_kb = int(max_text)
    return (flags if 0 <= flags <= 15 else 0), max_kb


def span_from_key(key: str) -> Span | None:
    """The server side of a request's trace key: ``traceId|spanId`` (or TarsGo's 3-part form ``traceId|parent|span``)
    -> the caller's span becomes the parent of this server's calls."""
    parts = key.split("|")
    if len(parts) not in (2, 3) or not parts[0]:
        return None
    return Span(parts[0], parts[1])


class Tracer:
    """Where one process's trace records go: its module name (master) and the ``_t_trace_`` remote log."""

    def __init__(self, module: str, sink: Callable[[], RemoteLogHandler | None]) -> None:
        self.module = module
        self._sink = sink
        self.written = 0

    def write(self, key: str, kind: str, slave: str, func: str, ret: int, data: str) -> None:
        handler = self._sink()
        if handler is None:
            return
        now = time.time()
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now))
        encoded = base64.b64encode(data.encode()).decode() if data else ""
        line = f"{stamp}|{key}|{kind}|{self.module}|{slave}|{func}|{int(now * 1000)}|{ret}|{encoded}|\n"
        handler.queue_line(line)
        self.written += 1


def log_to(comm: Communicator, log_obj: str, app: str, server: str) -> RemoteLogHandler:
    """Send ``comm``'s trace records to the log service ``log_obj`` as module ``app.server`` (a client without an
    Application; an Application does this from ``log=``). Close the handler (``aclose``) before the communicator."""
    from k8stars.tars.rpc.remotelog import RemoteLogHandler

    handler = RemoteLogHandler(comm, log_obj, app, server, TRACE_FILE, set_division=comm.config.set_division)
    comm.tracer = Tracer(comm.config.module_name or f"{app}.{server}", lambda: handler)
    return handler


def _param_data(span: Span, kind: str, values: Callable[[], dict[str, Any]]) -> str:
    flags, max_kb = _parse_id(span.trace_id)
    if not flags & _FLAG[kind]:
        return ""
    try:
        text = json.dumps(values(), ensure_ascii=False, separators=(",", ":"), default=str)
    except Exception as e:  # a body or value JSON cannot say: the record still tells the call happened
        text = json.dumps({"trace_param_error": f"{type(e).__name__}: {e}"})
    return OVER_MAX_LEN if len(text) > max_kb * 1024 else text


# -- the client side -----------------------------------------------------------------------------------------------
async def call_traced(target: ObjectProxy, span: Span, func: str, body: bytes, opts: CallOptions) -> Any:
    """One traced call (ObjectProxy.invoke's hook): a new span, cs, the call with the trace key, cr."""
    tracer = target.comm.tracer if not opts.oneway else None  # one-way calls: the key travels, no cs/cr (TarsGo)
    span_id = secrets.token_hex(8)
    parent = span.parent or span_id  # a root call is its own parent, as TarsGo writes it
    key = f"{span.trace_id}|{span_id}|{parent}"
    if tracer is not None:
        tracer.write(key, CS, target.name, func, 0, "")
    ret = 0
    rsp: ResponsePacket | None = None
    try:
        rsp = await target.invoke(func, body, opts, f"{span.trace_id}|{span_id}")
    except TarsRpcError as e:
        ret = e.code
        raise
    finally:
        if tracer is not None:
            tracer.write(key, CR, target.name, func, ret if rsp is None else rsp.iRet, "")
    return rsp


# -- the server side -----------------------------------------------------------------------------------------------
async def serve_traced(tracer: Tracer | None, dispatcher: Dispatcher, req: RequestPacket) -> Reply:
    """A traced request (the adapter's hook): the caller's span for this call's own calls, sr, the call, ss."""
    span = span_from_key(req.status.get(STATUS_TRACE_KEY, ""))
    entry = dispatcher.table.get(req.sFuncName)
    if span is None or entry is None:  # no function: answered before any record, as TarsGo's dispatch does
        return await dispatcher.dispatch(req)
    token = _span.set(span)
    key = f"{span.trace_id}|{span.parent}|*"
    op = entry[0]
    plain = req.iVersion == 1  # parameters in the records for plain TARS calls (TUP/JSON bodies differ)
    try:
        if tracer is not None:
            data = _param_data(span, SR, lambda: _in_params(op, req)) if plain else ""
            tracer.write(key, SR, req.sServantName, req.sFuncName, 0, data)
        reply = await dispatcher.dispatch(req)
        if tracer is not None:
            data = ""
            if plain and not reply.ret:
                data = _param_data(span, SS, lambda: _out_params(op, reply))
            tracer.write(key, SS, req.sServantName, req.sFuncName, reply.ret, data)
        return reply
    finally:
        _span.reset(token)


def _in_params(op: Operation, req: RequestPacket) -> dict[str, Any]:
    values = op.decode_args(req.sBuffer)
    return {f.name: to_json(f.type, v) for f, v in zip(op.in_fields, values, strict=False)}


def _out_params(op: Operation, reply: Reply) -> dict[str, Any]:
    values = decode_fields(op.out_fields, reply.body) if op.out_fields else []
    names = ["" if i == 0 and op.ret is not None else f.name for i, f in enumerate(op.out_fields)]
    return {n: to_json(f.type, v) for n, f, v in zip(names, op.out_fields, values, strict=False)}
