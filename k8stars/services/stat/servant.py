"""The StatF and PropertyF servants: each report is folded into StatMetrics at once (no queue, no thread: folding is
a few dictionary updates per entry)."""

from __future__ import annotations

from k8stars.services.stat.metrics import StatMetrics
from k8stars.tars.protocol.propertyf import PropertyFServant, StatPropMsgBody, StatPropMsgHead
from k8stars.tars.protocol.statf import StatFServant, StatMicMsgBody, StatMicMsgHead, StatSampleMsg


class StatImp(StatFServant):
    def __init__(self, metrics: StatMetrics) -> None:
        self.metrics = metrics

    async def reportMicMsg(self, msg: dict[StatMicMsgHead, StatMicMsgBody], bFromClient: bool) -> int:
        # 0 even when entries were refused: reporters do not retry (TarsGo only logs), the rest was kept
        self.metrics.add_calls(msg, bFromClient)
        return 0

    async def reportSampleMsg(self, msg: list[StatSampleMsg]) -> int:
        # call-chain samples have no Prometheus form (they are traces): counted, not kept
        self.metrics.samples.inc(len(msg))
        return 0


class PropertyImp(PropertyFServant):
    def __init__(self, metrics: StatMetrics) -> None:
        self.metrics = metrics

    async def reportPropMsg(self, statmsg: dict[StatPropMsgHead, StatPropMsgBody]) -> int:
        self.metrics.add_properties(statmsg)
        return 0
