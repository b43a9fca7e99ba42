"""The asyncio TARS RPC runtime: servants and adapters on the server side, proxies on the client side.

Public face: :class:`Communicator` and :class:`ServantProxy` (clients), :class:`Servant`, :class:`Server` and
:class:`Application` (servers), :func:`current` (the call being served); the property policies :class:`Sum`,
:class:`Avg`, :class:`Max`, :class:`Min`, :class:`Count`, :class:`Distr` for ``Communicator.property_report``.
"""

from typing import TYPE_CHECKING, Any

from k8stars.tars.rpc.current import Current, current
from k8stars.tars.rpc.property import Avg, Count, Distr, Max, Min, Sum
from k8stars.tars.rpc.proxy import CallOptions, Communicator, CommunicatorConfig, ServantProxy
from k8stars.tars.rpc.servant import Servant
from k8stars.tars.rpc.server import AdapterConfig, Server

__all__ = [
    "AdapterConfig",
    "Application",
    "Avg",
    "CallOptions",
    "Communicator",
    "CommunicatorConfig",
    "Count",
    "Current",
    "Distr",
    "Max",
    "Min",
    "Servant",
    "ServantProxy",
    "Server",
    "Sum",
    "current",
]

if TYPE_CHECKING:
    from k8stars.tars.rpc.application import Application


def __getattr__(name: str) -> Any:
    # Application is loaded on first use: it imports generated framework modules, which import this package's
    # proxy and servant modules, so an eager import here would make `import k8stars.tars.protocol.adminf` circular.
    if name == "Application":
        from k8stars.tars.rpc.application import Application

        return Application
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
