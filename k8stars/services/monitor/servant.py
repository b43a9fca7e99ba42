"""The MonitorQuery servants: ``tars.tarsquerystat.QueryObj`` answers from the call history, and
``tars.tarsqueryproperty.QueryObj`` from the property history."""

from __future__ import annotations

import logging

from k8stars.services.monitor.query import answer
from k8stars.services.stat.store import HistoryStore, Table
from k8stars.tars.protocol.monitorquery import MonitorQuery_query_result, MonitorQueryReq, MonitorQueryServant

log = logging.getLogger("k8stars.services.monitor")


class QueryImp(MonitorQueryServant):
    def __init__(self, store: HistoryStore, table: Table) -> None:
        self.store, self.table = store, table

    async def query(self, req: MonitorQueryReq) -> MonitorQuery_query_result:
        rsp = await answer(self.store, self.table, req)
        if rsp.ret:
            log.info("%s query refused: %s", self.table.name, rsp.msg)
        return MonitorQuery_query_result(rsp.ret, rsp)  # as upstream: the return value is rsp.ret
