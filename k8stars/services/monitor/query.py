"""``MonitorQuery.query`` over the history store: K8SFramework's request, answered from SQL.

Upstream pastes the request's fields and values into its query text; here every name is checked against the table's
columns (an unknown one is refused, naming what is allowed) and every value is a parameter, so a value such as
``x' OR '1'='1`` is only a string that matches nothing.

The answer: one entry per group (the ``groupby`` values joined by commas, ``""`` without groupby), each the sums of
the ``indexs`` in the order asked. No rows (a day without data) is an empty result, not an error.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from k8stars.services.stat.store import PROPERTY, STAT, HistoryStore, Table
from k8stars.tars.protocol.monitorquery import OP, Condition, MonitorQueryReq, MonitorQueryRsp

DATA_IDS = {STAT.name: "tars_stat", PROPERTY.name: "tars_property"}
OPERATORS = {OP.EQ: "=", OP.GT: ">", OP.GTE: ">=", OP.LT: "<", OP.LTE: "<=", OP.LIKE: "LIKE"}
_DATE = re.compile(r"\d{8}")
_TFLAG = re.compile(r"\d{4}")


class QueryError(ValueError):
    """A request that cannot be answered; the message says which field and why (``rsp.msg``, ret -1)."""


@dataclass(frozen=True)
class Plan:
    sql: str
    params: tuple[object, ...]
    groups: tuple[str, ...]
    dashed: bool  # the date was asked as YYYY-MM-DD: f_date values are answered so (TarsWeb matches keys by it)


def _names(what: str, given: Sequence[str], allowed: Sequence[str]) -> list[str]:
    for name in given:
        if name not in allowed:
            raise QueryError(f"{what} {name!r} is not one of {', '.join(allowed)}")
    return list(given)


def _condition(table: Table, c: Condition) -> tuple[str, object]:
    _names("condition field", [c.field], table.fields)
    op = OPERATORS.get(c.op)
    if op is None:
        raise QueryError(f"condition on {c.field}: unknown op {int(c.op)} (EQ, GT, GTE, LT, LTE, LIKE)")
    value: object = c.val
    if c.field in table.ints and op != "LIKE":
        try:
            value = int(c.val)
        except ValueError:
            raise QueryError(f"condition on {c.field}: {c.val!r} is not a number") from None
    return f"{table.column(c.field)} {op} ?", value


def plan(table: Table, req: MonitorQueryReq) -> Plan:
    """The SQL of ``req`` on ``table``; QueryError for a request that is not one."""
    if req.method not in ("", "query"):
        raise QueryError(f"method {req.method!r}: only query")
    if req.dataid not in ("", DATA_IDS[table.name]):
        raise QueryError(f"dataid {req.dataid!r}: this service answers {DATA_IDS[table.name]}")
    date = req.date.replace("-", "")
    if not _DATE.fullmatch(date):
        raise QueryError(f"date {req.date!r}: expected YYYYMMDD")
    where: list[str] = ["m.f_date = ?"]
    params: list[object] = [date]
    for name, flag, op in (("tflag1", req.tflag1, ">="), ("tflag2", req.tflag2, "<=")):
        if flag:
            if not _TFLAG.fullmatch(flag):
                raise QueryError(f"{name} {flag!r}: expected HHMM")
            where.append(f"m.f_tflag {op} ?")
            params.append(flag)
    for c in req.conditions:
        clause, value = _condition(table, c)
        where.append(clause)
        params.append(value)
    if not req.indexs:
        raise QueryError(f"indexs: name at least one of {', '.join(table.values)}")
    indexs = _names("index", req.indexs, table.values)
    groups = _names("groupby", req.groupby, table.fields)
    columns = [table.column(g) for g in groups]
    select = [*columns, *(f"SUM(m.{i})" for i in indexs), "COUNT(*)"]
    # series first (CROSS JOIN keeps SQLite from reordering; MySQL reads it as JOIN): a server's few series, then
    # each one's minutes of the day by primary key, instead of every minute of the day
    sql = (f"SELECT {', '.join(select)} FROM {table.series} s CROSS JOIN {table.minute} m ON m.k = s.k "
           f"WHERE {' AND '.join(where)}")  # fmt: skip
    if groups:
        sql += f" GROUP BY {', '.join(columns)} ORDER BY {', '.join(columns)}"
    return Plan(sql, tuple(params), tuple(groups), "-" in req.date)


def _text(value: object, group: str, dashed: bool) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value)
    return f"{text[:4]}-{text[4:6]}-{text[6:]}" if dashed and group == "f_date" else text


async def answer(store: HistoryStore, table: Table, req: MonitorQueryReq) -> MonitorQueryRsp:
    """The response to ``req``: ret 0 and the result, or ret -1 and why (a bad request, the store failing)."""
    rsp = MonitorQueryRsp()
    try:
        p = plan(table, req)
        rows = await store.db.fetch(p.sql, p.params)
    except QueryError as e:
        rsp.ret, rsp.msg = -1, str(e)
        return rsp
    except Exception as e:  # the database failed (driver errors share no useful base): the caller sees why
        rsp.ret, rsp.msg = -1, f"store {store.where}: {e}"
        return rsp
    for row in rows:
        if not row[-1]:  # no rows matched: SUM over nothing is NULL, and no group exists
            continue
        n = len(p.groups)
        key = ",".join(_text(v, g, p.dashed) for v, g in zip(row[:n], p.groups, strict=True))
        rsp.result[key] = [float(v or 0) for v in row[n:-1]]
    return rsp
