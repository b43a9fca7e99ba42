"""The StatF and PropertyF servants: each report is folded into StatMetrics (and the per-minute history, when kept)
at once (no queue, no thread: folding is a few dictionary updates per entry)."""

from __future__ import annotations

from k8stars.services.stat.history import History
from k8stars.services.stat.metrics import StatMetrics
from k8stars.tars.protocol.propertyf import PropertyFServant, StatPropMsgBody, StatPropMsgHead
from k8stars.tars.protocol.statf import StatFServant, StatMicMsgBody, StatMicMsgHead, StatSampleMsg
from k8stars.tars.rpc.current import current


class StatImp(StatFServant):
    def __init__(self, metrics: StatMetrics, history: History | None = None) -> None:
        self.metrics, self.history = metrics, history

    async def reportMicMsg(self, msg: dict[StatMicMsgHead, StatMicMsgBody], bFromClient: bool) -> int:
        # 0 even when entries were refused: reporters do not retry (TarsGo only logs), the rest was kept
        self.metrics.add_calls(msg, bFromClient)
        if self.history is not None:
            self.history.add_calls(msg, bFromClient, current().peer_host)
        return 0

    async def reportSampleMsg(self, msg: list[StatSampleMsg]) -> int:
        # call-chain samples have no Prometheus form (they are traces): counted, not kept
        self.metrics.samples.inc(len(msg))
        return 0


class PropertyImp(PropertyFServant):
    def __init__(self, metrics: StatMetrics, history: History | None = None) -> None:
        self.metrics, self.history = metrics, history

    async def reportPropMsg(self, statmsg: dict[StatPropMsgHead, StatPropMsgBody]) -> int:
        self.metrics.add_properties(statmsg)
        if self.history is not None:
            self.history.add_properties(statmsg)
        return 0
