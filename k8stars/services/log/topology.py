"""The call chain: ``tars.tarslog.TopologyObj`` (K8SFramework's interface ``Topology``), answered from the traces the
log service gathers (``traces``). Times are milliseconds; ``date`` is a day ``YYYYMMDD`` (or ``YYYY-MM-DD``).

- ``graphTrace``: one trace as a graph of functions (``Servant.function``): a vertex per function with the time its
  server spent (ss - sr), the first vertex the trace's opener with its whole time; an edge per call with its client
  time (cr - cs), the span, the four times and data, ret and its depth (``order``, 1 for the first call).
- ``graphServer`` / ``graphFunction``: the day's traces grouped by shape (the same servants, or functions, calling
  each other in the same way), each shape one graph whose counts and times add up its traces; those with a vertex
  named ``serverName`` (also ``serverName.*``) or ``functionName``.
- ``listTrace`` / ``listTraceSummary``: the traces in which a span calls or serves ``serverName`` (a module
  ``App.Server`` or a servant), by start time; the summary within ``[beginTime, endTime]``, newest first.
- ``listFunction``: the functions ``serverName.*`` called that day.

A date of another form answers -1; an unknown trace an empty graph.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from k8stars.services.log.traces import Day, Trace, TraceIndex
from k8stars.tars.protocol.topology import (
    Edge,
    Graph,
    Summary,
    Topology_graphFunction_result,
    Topology_graphServer_result,
    Topology_graphTrace_result,
    Topology_listFunction_result,
    Topology_listTrace_result,
    Topology_listTraceSummary_result,
    TopologyServant,
    Vertex,
)

_DAY = re.compile(r"\d{8}|\d{4}-\d{2}-\d{2}")  # TarsWeb sends some operations YYYY-MM-DD


@dataclass(slots=True)
class _Shape:
    """A graph under construction: vertices and edges by their keys, in order of appearance."""

    vertices: dict[str, Vertex]
    edges: dict[tuple[str, str, int], Edge]

    def vertex(self, name: str, count: int, spent: int) -> None:
        v = self.vertices.get(name)
        if v is None:
            self.vertices[name] = Vertex(vertex=name, callCount=count, callTime=spent)
        else:
            v.callCount += count
            v.callTime += spent

    def edge(self, edge: Edge) -> None:
        e = self.edges.get((edge.fromVertex, edge.toVertex, edge.order))
        if e is None:
            self.edges[(edge.fromVertex, edge.toVertex, edge.order)] = edge
        else:
            e.callCount += edge.callCount
            e.callTime += edge.callTime

    def key(self) -> tuple[object, ...]:
        return tuple(sorted(self.edges)), tuple(sorted(self.vertices))

    def merge(self, other: _Shape) -> None:
        for v in other.vertices.values():
            self.vertex(v.vertex, v.callCount, v.callTime)
        for e in other.edges.values():
            self.edge(_copy(e))

    def graph(self) -> Graph:
        vs = sorted(self.vertices.values(), key=lambda v: v.vertex)
        es = sorted(self.edges.values(), key=lambda e: (e.order, e.csTime, e.fromVertex, e.toVertex))
        return Graph(vs=vs, es=es)


def _copy(e: Edge) -> Edge:
    return Edge(fromVertex=e.fromVertex, toVertex=e.toVertex, callCount=e.callCount, callTime=e.callTime,
                order=e.order)  # fmt: skip


def _elapsed(begin: int, end: int) -> tuple[int, int]:
    """(count, time) of one call: counted only when both ends are known and in order."""
    return (1, end - begin) if begin and end and begin <= end else (0, 0)


def trace_shape(trace: Trace, name: Callable[[str, str], str], details: bool) -> _Shape:
    """The graph of one trace; ``name(slave, function)`` names a vertex (a servant, or ``servant.function``)."""
    shape = _Shape({}, {})
    if not trace.root:
        return shape
    shape.vertex(trace.master, *_elapsed(trace.start, trace.end))
    seen: set[str] = set()
    stack = [(trace.root, trace.master, 1)]
    while stack:
        span_id, caller, order = stack.pop(0)
        span = trace.spans.get(span_id)
        if span is None or span_id in seen:  # a record that never came, or a loop: the rest of the trace stands
            continue
        seen.add(span_id)
        vertex = name(span.slave, span.function)
        shape.vertex(vertex, *_elapsed(span.sr_time, span.ss_time))
        count, spent = _elapsed(span.cs_time, span.cr_time)
        edge = Edge(fromVertex=caller, toVertex=vertex, callCount=count, callTime=spent, order=order)
        if details:
            edge.spanId, edge.ret = span.span, span.ret
            edge.csTime, edge.srTime, edge.ssTime, edge.crTime = span.cs_time, span.sr_time, span.ss_time, span.cr_time
            edge.csData, edge.srData, edge.ssData, edge.crData = span.cs_data, span.sr_data, span.ss_data, span.cr_data
        shape.edge(edge)
        stack.extend((child, vertex, order + 1) for child in span.children)
    return shape


def _function(slave: str, function: str) -> str:
    return f"{slave}.{function}"


def _server(slave: str, _function: str) -> str:
    return slave


class _DayGraphs:
    """The day's traces grouped by server shape and by function shape (rebuilt when the day has new records)."""

    def __init__(self, day: Day) -> None:
        self.version = day.version
        self.servers = self._group(day, _server)
        self.functions = self._group(day, _function)

    @staticmethod
    def _group(day: Day, name: Callable[[str, str], str]) -> list[_Shape]:
        groups: dict[tuple[object, ...], _Shape] = {}
        for trace in day.traces.values():
            shape = trace_shape(trace, name, details=False)
            if not shape.vertices:
                continue
            key = shape.key()
            if key in groups:
                groups[key].merge(shape)
            else:
                groups[key] = shape
        return list(groups.values())


def _names(vertex: str, wanted: str) -> bool:
    return vertex == wanted or vertex.startswith(wanted + ".")


class TopologyImp(TopologyServant):
    def __init__(self, index: TraceIndex) -> None:
        self.index = index
        self._graphs: dict[str, _DayGraphs] = {}

    def _day(self, date: str) -> Day | None:
        return self.index.day(date.replace("-", "")) if _DAY.fullmatch(date) else None

    def _day_graphs(self, date: str) -> _DayGraphs | None:
        day = self._day(date)
        if day is None:
            return None
        date = date.replace("-", "")
        graphs = self._graphs.get(date)
        if graphs is None or graphs.version != day.version:
            graphs = self._graphs[date] = _DayGraphs(day)
            for old in [d for d in self._graphs if d not in self.index.days()]:
                del self._graphs[old]
        return graphs

    async def graphServer(self, date: str, serverName: str) -> Topology_graphServer_result:
        g = self._day_graphs(date)
        if g is None:
            return Topology_graphServer_result(-1, [])
        found = [s.graph() for s in g.servers if any(_names(v, serverName) for v in s.vertices)]
        return Topology_graphServer_result(0, found)

    async def graphFunction(self, date: str, functionName: str) -> Topology_graphFunction_result:
        g = self._day_graphs(date)
        if g is None:
            return Topology_graphFunction_result(-1, [])
        return Topology_graphFunction_result(0, [s.graph() for s in g.functions if functionName in s.vertices])

    async def graphTrace(self, date: str, traceId: str) -> Topology_graphTrace_result:
        day = self._day(date)
        if day is None:
            return Topology_graphTrace_result(-1, Graph())
        trace = day.traces.get(traceId)
        if trace is None:
            return Topology_graphTrace_result(0, Graph())
        return Topology_graphTrace_result(0, trace_shape(trace, _function, details=True).graph())

    async def listFunction(self, date: str, serverName: str) -> Topology_listFunction_result:
        g = self._day_graphs(date)
        if g is None:
            return Topology_listFunction_result(-1, [])
        prefix = serverName + "."
        names = {v for s in g.functions for v in s.vertices if v.startswith(prefix)}
        return Topology_listFunction_result(0, sorted(names))

    async def listTrace(self, date: str, serverName: str) -> Topology_listTrace_result:
        day = self._day(date)
        if day is None:
            return Topology_listTrace_result(-1, [])
        found = sorted((t for t in day.traces.values() if t.touches(serverName)), key=lambda t: t.start)
        return Topology_listTrace_result(0, [t.trace for t in found])

    async def listTraceSummary(self, date: str, beginTime: int, endTime: int,
                               serverName: str) -> Topology_listTraceSummary_result:  # fmt: skip
        day = self._day(date)
        if day is None:
            return Topology_listTraceSummary_result(-1, [])
        found = [Summary(name=t.trace, startTime=t.start, endTime=t.end) for t in day.traces.values()
                 if beginTime <= t.start <= endTime and t.touches(serverName)]  # fmt: skip
        found.sort(key=lambda s: s.startTime, reverse=True)
        return Topology_listTraceSummary_result(0, found)
