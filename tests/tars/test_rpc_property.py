"""Business metrics: Communicator.property_report values reach a PropertyF servant every report-interval with
TarsGo's policy names and value texts; idle policies are not sent; closing sends what is left."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from k8stars.tars.protocol.propertyf import PropertyFServant, StatPropMsgBody, StatPropMsgHead
from k8stars.tars.rpc import Avg, Communicator, Count, Distr, Max, Min, Server, Sum
from k8stars.tars.rpc.proxy import CommunicatorConfig

PROPERTY_OBJ = "tars.tarsproperty.PropertyObj"


class PropertyCollector(PropertyFServant):
    def __init__(self) -> None:
        self.reports: list[dict[StatPropMsgHead, StatPropMsgBody]] = []
        self.arrived = asyncio.Event()

    async def reportPropMsg(self, statmsg: dict[StatPropMsgHead, StatPropMsgBody]) -> int:
        self.reports.append(statmsg)
        self.arrived.set()
        return 0


@pytest.fixture
async def collector() -> AsyncIterator[tuple[str, PropertyCollector]]:
    srv = Server(grace_seconds=1)
    servant = PropertyCollector()
    srv.add_servant(servant, PROPERTY_OBJ, "tcp -h 127.0.0.1 -p 0 -t 60000")
    await srv.start()
    yield f"{PROPERTY_OBJ}@{srv.adapters[PROPERTY_OBJ + 'Adapter'].endpoint}", servant
    await srv.stop(0)


def _values(reports: list[dict[StatPropMsgHead, StatPropMsgBody]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for msg in reports:
        for head, body in msg.items():
            assert (head.moduleName, head.ip, head.iPropertyVer) == ("Test.Hello", "127.0.0.9", 2)
            out[head.propertyName] = {i.policy: i.value for i in body.vInfo}
    return out


async def test_policies_are_reported_as_tarsgo_writes_them(collector: tuple[str, PropertyCollector]) -> None:
    obj, servant = collector
    config = CommunicatorConfig(property=obj, report_interval=200, module_name="Test.Hello", node_name="127.0.0.9")
    async with Communicator(config) as comm:
        latency = comm.property_report("latency_ms", Sum(), Avg(), Max(), Min(), Count(), Distr([100, 10, 50]))
        assert comm.property_report("latency_ms", Sum()) is latency  # one report per name
        for value in (5, 20, 60, 500):
            latency.report(value)
        comm.property_report("idle", Sum(), Max())
        await asyncio.wait_for(servant.arrived.wait(), 5)
    values = _values(servant.reports)
    assert values["latency_ms"] == {"Sum": "585", "Avg": "146.25", "Max": "500", "Min": "5", "Count": "4",
                                    "Distr": "10|1,50|1,100|2"}  # fmt: skip
    assert "idle" not in values  # nothing reported: nothing sent


async def test_close_sends_the_rest_and_without_property_nothing_is_sent(
    collector: tuple[str, PropertyCollector],
) -> None:
    obj, servant = collector
    async with Communicator() as plain:
        plain.property_report("kept", Sum()).report(3)  # no property= : kept, never sent
    config = CommunicatorConfig(property=obj, report_interval=3_600_000, module_name="Test.Hello",
                                node_name="127.0.0.9")  # fmt: skip
    async with Communicator(config) as comm:
        comm.property_report("orders", Avg()).report(3)
    assert _values(servant.reports) == {"orders": {"Avg": "3"}}
    with pytest.raises(ValueError, match="give at least one policy"):
        Communicator().property_report("none")
