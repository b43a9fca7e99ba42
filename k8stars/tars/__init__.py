"""TARS in Python: the wire codec, the asyncio RPC runtime and the IDL compiler, the bottom layer of k8stars.

What a user needs is here (``from k8stars.tars import Communicator, Struct, ...``):

- the codec: :class:`Struct` (base of generated structs), :class:`Field`, :class:`TarsType` and the types
  (``INT``, ``STRING``, ``vector_of(...)``, ``map_of(...)``, ``struct_of(...)``, ...), :func:`encode` and
  :func:`decode`;
- the bases generated code subclasses: :class:`ServantProxy` (clients) and :class:`Servant` (servers), with the
  per-call :class:`CallOptions`;
- the runtime: :class:`Communicator` (proxies), :class:`Server` and :class:`Application` (servers),
  :func:`current` (the call being served);
- the IDL compiler: :func:`generate` (Python sources, what ``k8stars tars2py`` writes) and :func:`load_runtime`
  (run-time types without generated code);
- the errors: :class:`TarsError` and :class:`TarsRpcError` (a call answered with a TARS code).

The submodules stay importable (``k8stars.tars.codec``, ``k8stars.tars.rpc``, ``k8stars.tars.protocol.queryf``
...); they import one another, never this face. The layers, bottom up: the codec, the framework structs and the
stub bases, the generated framework interfaces, the runtime that uses them. Importing any of them runs this module
first, so it loads the runtime and the compiler only when one of their names is first asked for: a liveness probe
(``tarscli hzcheck``) or ``tarscli genconf`` reads ``k8stars.tars.endpoint`` and must not pay for asyncio.
"""

import importlib
from typing import TYPE_CHECKING, Any

from k8stars.tars.codec import (
    BOOL,
    BYTE,
    BYTES,
    DOUBLE,
    FLOAT,
    INT,
    LONG,
    SHORT,
    STRING,
    UBYTE,
    UINT,
    USHORT,
    Field,
    Struct,
    TarsType,
    decode,
    encode,
    enum_of,
    map_of,
    struct_of,
    vector_of,
)
from k8stars.tars.errors import TarsError, TarsRpcError
from k8stars.tars.stub import CallOptions, Servant, ServantProxy

if TYPE_CHECKING:
    from k8stars.tars.idl.codegen import generate
    from k8stars.tars.idl.compiler import load_runtime
    from k8stars.tars.rpc import AdapterConfig, Application, Communicator, CommunicatorConfig, Server
    from k8stars.tars.rpc.current import Current, current

_ON_FIRST_USE = {
    **dict.fromkeys(
        ("AdapterConfig", "Application", "Communicator", "CommunicatorConfig", "Server"), "k8stars.tars.rpc"
    ),
    "Current": "k8stars.tars.rpc.current",
    "current": "k8stars.tars.rpc.current",
    "generate": "k8stars.tars.idl.codegen",
    "load_runtime": "k8stars.tars.idl.compiler",
}

__all__ = [
    "BOOL",
    "BYTE",
    "BYTES",
    "DOUBLE",
    "FLOAT",
    "INT",
    "LONG",
    "SHORT",
    "STRING",
    "UBYTE",
    "UINT",
    "USHORT",
    "AdapterConfig",
    "Application",
    "CallOptions",
    "Communicator",
    "CommunicatorConfig",
    "Current",
    "Field",
    "Servant",
    "ServantProxy",
    "Server",
    "Struct",
    "TarsError",
    "TarsRpcError",
    "TarsType",
    "current",
    "decode",
    "encode",
    "enum_of",
    "generate",
    "load_runtime",
    "map_of",
    "struct_of",
    "vector_of",
]


def __getattr__(name: str) -> Any:
    where = _ON_FIRST_USE.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(where), name)
    globals()[name] = value  # asked once
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
