"""Business metrics reported to ``tars.tarsproperty.PropertyObj`` (PropertyF.reportPropMsg), as TarsGo's
``CreatePropertyReport(name, NewSum(), NewAvg(), ...)`` does::

    requests = comm.property_report("requests", Sum(), Count())
    latency = comm.property_report("latency_ms", Avg(), Max(), Distr([10, 50, 100, 500]))
    requests.report(1)
    latency.report(42)

Every ``report-interval`` each property goes out under its StatPropMsgHead (module name, this host's IP, property
name, iPropertyVer 2) with one StatPropInfo per policy whose value is not the policy's idle value — the same policy
names and value texts as TarsGo (Sum/Count: an integer; Avg: the mean, shortest decimal; Max: -9999999 when idle;
Min: 0 when idle; Distr: ``point|count,...``, not sent when all counts are 0) — and the policies start again. A
failed report is dropped (logged at debug). At most ``MAX_PROPERTIES`` properties per communicator.
"""

from __future__ import annotations

import bisect
import logging
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from k8stars.tars.errors import TarsRpcError
from k8stars.tars.protocol.propertyf import PropertyFProxy, StatPropInfo, StatPropMsgBody, StatPropMsgHead
from k8stars.tars.rpc.periodic import SEND_TIMEOUT_MS, Periodic

if TYPE_CHECKING:
    from k8stars.tars.rpc.proxy import Communicator

log = logging.getLogger("k8stars.tars.rpc")

MAX_PROPERTIES = 1000
BATCH = 20  # properties per reportPropMsg, as TarsGo sends them


class Policy:
    """One way of summing a property's values over a report interval."""

    name = ""
    idle = ""  # the value of an interval without reports; such values are not sent

    def set(self, value: int) -> None:
        raise NotImplementedError

    def take(self) -> str:
        """The interval's value as text; starts the next interval."""
        raise NotImplementedError


class Sum(Policy):
    name, idle = "Sum", "0"

    def __init__(self) -> None:
        self.total = 0

    def set(self, value: int) -> None:
        self.total += value

    def take(self) -> str:
        out, self.total = str(self.total), 0
        return out


class Count(Policy):
    name, idle = "Count", "0"

    def __init__(self) -> None:
        self.count = 0

    def set(self, value: int) -> None:
        self.count += 1

    def take(self) -> str:
        out, self.count = str(self.count), 0
        return out


class Avg(Policy):
    name, idle = "Avg", "0"

    def __init__(self) -> None:
        self.total = self.count = 0

    def set(self, value: int) -> None:
        self.total += value
        self.count += 1

    def take(self) -> str:
        if not self.count:
            return "0"
        mean = Decimal(repr(self.total / self.count))
        self.total = self.count = 0
        return format(mean.normalize(), "f")  # Go's FormatFloat(x, 'f', -1): "2.5", "3"


class Max(Policy):
    name, idle = "Max", "-9999999"

    def __init__(self) -> None:
        self.value: int | None = None

    def set(self, value: int) -> None:
        self.value = value if self.value is None else max(self.value, value)

    def take(self) -> str:
        out, self.value = (self.idle if self.value is None else str(self.value)), None
        return out


class Min(Policy):
    name, idle = "Min", "0"

    def __init__(self) -> None:
        self.value: int | None = None

    def set(self, value: int) -> None:
        self.value = value if self.value is None else min(self.value, value)

    def take(self) -> str:
        out, self.value = (self.idle if self.value is None else str(self.value)), None
        return out


class Distr(Policy):
    """Counts per range: a value counts at the first point above it (the last point takes the rest)."""

    name, idle = "Distr", ""

    def __init__(self, points: list[int]) -> None:
        self.points = sorted(set(points))
        if not self.points:
            raise ValueError("Distr needs at least one point")
        self.counts = [0] * len(self.points)

    def set(self, value: int) -> None:
        self.counts[min(bisect.bisect_right(self.points, value), len(self.points) - 1)] += 1

    def take(self) -> str:
        # an interval without values is idle (TarsGo sends its all-zero text anyway)
        out = ",".join(f"{p}|{c}" for p, c in zip(self.points, self.counts, strict=True)) if any(self.counts) else ""
        self.counts = [0] * len(self.points)
        return out


class PropertyReport:
    """One property and its policies; ``report`` is cheap (no I/O)."""

    def __init__(self, name: str, policies: tuple[Policy, ...], reporter: PropertyReporter | None) -> None:
        self.name = name
        self.policies = policies
        self._reporter = reporter

    def report(self, value: int) -> None:
        for p in self.policies:
            p.set(value)
        if self._reporter is not None:
            self._reporter.started()


class PropertyReporter:
    """One per communicator with ``property=``: sends every property every interval."""

    def __init__(self, comm: Communicator, property_obj: str, module: str, ip: str, interval_s: float) -> None:
        self.comm = comm
        self.property_obj = property_obj
        self.module = module or "unknown"
        self.ip = ip
        self.properties: dict[str, PropertyReport] = {}
        self.reported = 0
        self.periodic = Periodic(self.flush, interval_s, "tars-property-report")

    def create(self, name: str, policies: tuple[Policy, ...]) -> PropertyReport:
        found = self.properties.get(name)
        if found is not None:
            return found
        if len(self.properties) >= MAX_PROPERTIES:
            raise ValueError(f"more than {MAX_PROPERTIES} properties: {name!r} is not created")
        made = self.properties[name] = PropertyReport(name, policies, self)
        return made

    def started(self) -> None:
        self.periodic.started()

    def _messages(self) -> list[dict[Any, Any]]:
        batches: list[dict[Any, Any]] = []
        for prop in self.properties.values():
            infos = []
            for policy in prop.policies:
                value = policy.take()
                if value != policy.idle:
                    infos.append(StatPropInfo(policy=policy.name, value=value))
            if not infos:
                continue
            if not batches or len(batches[-1]) >= BATCH:
                batches.append({})
            head = StatPropMsgHead(moduleName=self.module, ip=self.ip, propertyName=prop.name, iPropertyVer=2)
            batches[-1][head] = StatPropMsgBody(vInfo=infos)
        return batches

    async def flush(self) -> None:
        batches = self._messages()
        if not batches:
            return
        try:
            proxy = self.comm.string_to_proxy(PropertyFProxy, self.property_obj)
            proxy = proxy.tars_options(timeout_ms=SEND_TIMEOUT_MS)
            for msg in batches:
                await proxy.reportPropMsg(msg)
            self.reported += 1
        except (TarsRpcError, ValueError) as e:
            log.debug("property report to %s failed: %s", self.property_obj, e)

    async def close(self) -> None:
        """Stop the loop and send what is left (bounded)."""
        await self.periodic.close()
