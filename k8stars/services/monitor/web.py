"""The JSON view of the query services, for our console: ``POST /api/query/stat`` and ``/api/query/property`` take
the fields of a ``MonitorQueryReq`` as JSON (``op`` by name, EQ, GT, GTE, LT, LTE, LIKE, or by number as
``k8stars call`` writes it) and answer
``{"ret": 0, "msg": "", "result": {"<group>": [<index values>]}}`` (400 with ret -1 when the request is refused)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from k8stars.services.monitor.query import answer
from k8stars.services.stat.store import PROPERTY, STAT, HistoryStore
from k8stars.tars.protocol.monitorquery import OP, Condition, MonitorQueryReq

TABLES = {"stat": STAT, "property": PROPERTY}
_STRINGS = ("uid", "method", "dataid", "date", "tflag1", "tflag2")


def _strings(body: dict[str, Any], name: str) -> list[str]:
    value = body.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{name}: expected a list of strings")
    return value


def _op(value: object) -> OP:
    if isinstance(value, str) and value in OP.__members__:
        return OP[value]
    if isinstance(value, int) and not isinstance(value, bool) and value in OP._value2member_map_:
        return OP(value)
    raise ValueError(f"conditions: op {value!r} is not one of {', '.join(OP.__members__)} (or 0..5)")


def request_of(body: object) -> MonitorQueryReq:
    """A MonitorQueryReq from JSON; ValueError names the field that is not one."""
    if not isinstance(body, dict):
        raise ValueError("expected a JSON object")
    req = MonitorQueryReq()
    for name in _STRINGS:
        value = body.get(name, getattr(req, name))
        if not isinstance(value, str):
            raise ValueError(f"{name}: expected a string")
        setattr(req, name, value)
    conditions = body.get("conditions", [])
    if not isinstance(conditions, list):
        raise ValueError("conditions: expected a list")
    for c in conditions:
        if not isinstance(c, dict) or not all(isinstance(c.get(k), str) for k in ("field", "val")):
            raise ValueError('conditions: expected {"field": ..., "op": "EQ", "val": ...} items')
        req.conditions.append(Condition(c["field"], _op(c.get("op")), c["val"]))
    req.indexs, req.groupby = _strings(body, "indexs"), _strings(body, "groupby")
    return req


def add_routes(app: web.Application, store: HistoryStore) -> None:
    async def query(request: web.Request) -> web.Response:
        table = TABLES.get(request.match_info["kind"])
        if table is None:
            raise web.HTTPNotFound(text="expected /api/query/stat or /api/query/property\n")
        try:
            req = request_of(await request.json())
        except ValueError as e:  # json.JSONDecodeError is one
            return web.json_response({"ret": -1, "msg": str(e), "result": {}}, status=400)
        rsp = await answer(store, table, req)
        body = {"ret": rsp.ret, "msg": rsp.msg, "result": rsp.result}
        return web.json_response(body, status=400 if rsp.ret and not rsp.msg.startswith("store ") else 200)

    app.router.add_post("/api/query/{kind}", query)
