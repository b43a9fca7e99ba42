"""A server's monitoring: its calls per group (function, caller, IP) and per minute on a day against another day,
sortable, rates in %, a curve per row; its properties likewise. From the query services (``k8stars monitor``)."""

from __future__ import annotations

import datetime as dt
import re

from aiohttp import web

from ..keys import MONITOR
from ..monitoring import (
    QUERYPROPERTY_OBJ,
    QUERYSTAT_OBJ,
    SORTS,
    STAT_GROUPS,
    MonitorUnavailable,
    properties,
    property_request,
    sort_rows,
    stat_request,
    stat_series,
    total,
)
from ..render import page
from .common import server_of

_DATE = re.compile(r"(\d{4})-?(\d{2})-?(\d{2})")


def day_of(text: str, default: dt.date) -> dt.date:
    """``YYYY-MM-DD`` (a date input's value) or ``YYYYMMDD``; anything else is the default."""
    m = _DATE.fullmatch(text.strip())
    if not m:
        return default
    try:
        return dt.date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        return default


async def monitoring(request: web.Request) -> web.Response:
    tserver, app, server = await server_of(request, "view")
    q = request.query
    today = dt.date.today()  # the stat service keeps local dates, as K8SFramework's does
    day = day_of(q.get("date", ""), today)
    other = day_of(q.get("other", ""), day - dt.timedelta(days=1))
    group = q.get("group", "interface_name")
    group = group if group in STAT_GROUPS else "interface_name"
    sort = q.get("sort", "calls")
    sort = sort if sort in SORTS else "calls"
    desc = q.get("desc", "1" if sort != "key" else "") == "1"
    monitor, who = request.app[MONITOR], f"{app}.{server}"
    now = dt.datetime.now()
    until = now.hour * 60 + now.minute if day == today else None  # today: the other day up to this minute
    error = ""
    rows, props = [], []
    try:
        d, o = day.strftime("%Y%m%d"), other.strftime("%Y%m%d")
        rows = stat_series(await monitor.query(QUERYSTAT_OBJ, stat_request(d, who, group)),
                           await monitor.query(QUERYSTAT_OBJ, stat_request(o, who, group)), until)  # fmt: skip
        props = properties(await monitor.query(QUERYPROPERTY_OBJ, property_request(d, who)),
                           await monitor.query(QUERYPROPERTY_OBJ, property_request(o, who)))  # fmt: skip
    except MonitorUnavailable as e:
        error = str(e)
    everything = total(rows)
    minutes = sorted(set(everything.day_minutes) | set(everything.other_minutes))
    return page(request, "monitoring.html", title=f"{who} monitoring", app=app, server=server,
                name=tserver["metadata"]["name"], day=day, other=other, group=group, groups=STAT_GROUPS,
                sort=sort, desc=desc, rows=sort_rows(rows, sort, desc), all=everything, minutes=minutes,
                properties=props, error=error,
                until="" if until is None else f"{until // 60:02d}:{until % 60:02d}")  # fmt: skip


def setup(app: web.Application) -> None:
    app.router.add_get("/servers/{name}/monitoring", monitoring)
