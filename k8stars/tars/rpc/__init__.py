"""The asyncio TARS RPC runtime: servants and adapters on the server side, proxies on the client side.

Public face: :class:`Communicator` (clients), :class:`Server` and :class:`Application` (servers), :func:`current`
(the call being served); :mod:`trace` (call chains: ``trace.open_trace()``); the property policies :class:`Sum`,
:class:`Avg`, :class:`Max`, :class:`Min`, :class:`Count`, :class:`Distr` for ``Communicator.property_report``.
:class:`ServantProxy`, :class:`Servant` and :class:`CallOptions` live below the runtime, in
:mod:`k8stars.tars.stub` (generated code imports them from there), and are named here too. The runtime uses the
generated framework interfaces (:mod:`k8stars.tars.protocol`); they never import it.
"""

from k8stars.tars.rpc import trace
from k8stars.tars.rpc.application import Application
from k8stars.tars.rpc.current import Current, current
from k8stars.tars.rpc.property import Avg, Count, Distr, Max, Min, Sum
from k8stars.tars.rpc.proxy import Communicator, CommunicatorConfig
from k8stars.tars.rpc.server import AdapterConfig, Server
from k8stars.tars.stub import CallOptions, Servant, ServantProxy

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
    "trace",
]
