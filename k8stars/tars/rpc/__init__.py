"""The asyncio TARS RPC runtime: servants and adapters on the server side, proxies on the client side.

Public face: :class:`Communicator` and :class:`ServantProxy` (clients), :class:`Servant`, :class:`Server` and
:class:`Application` (servers), :func:`current` (the call being served).
"""

from k8stars.tars.rpc.application import Application
from k8stars.tars.rpc.current import Current, current
from k8stars.tars.rpc.proxy import CallOptions, Communicator, CommunicatorConfig, ServantProxy
from k8stars.tars.rpc.servant import Servant
from k8stars.tars.rpc.server import AdapterConfig, Server

__all__ = [
    "AdapterConfig",
    "Application",
    "CallOptions",
    "Communicator",
    "CommunicatorConfig",
    "Current",
    "Servant",
    "ServantProxy",
    "Server",
    "current",
]
