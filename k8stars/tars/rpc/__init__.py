"""The asyncio TARS RPC runtime: servants and adapters on the server side, proxies on the client side."""

from k8stars.tars.rpc.proxy import ServantProxy
from k8stars.tars.rpc.servant import Servant

__all__ = ["Servant", "ServantProxy"]
