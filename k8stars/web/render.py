"""Pages from Jinja2 templates (package data), autoescaped: every value a page shows is escaped."""

from __future__ import annotations

import time
from typing import Any

import jinja2
import yaml  # type: ignore[import-untyped,unused-ignore]
from aiohttp import web

from .keys import SESSION, USER

ENV_KEY = web.AppKey("jinja", jinja2.Environment)


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("k8stars.web", "templates"),
        autoescape=True,
        undefined=jinja2.ChainableUndefined,  # a field an object lacks (no release yet) shows as empty
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["yaml"] = to_yaml
    env.filters["datetime"] = lambda t: time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t))
    return env


def to_yaml(obj: Any) -> str:
    """An object as kubectl shows it, without managedFields (noise) and the last-applied annotation."""
    if isinstance(obj, dict) and isinstance(obj.get("metadata"), dict):
        md = {k: v for k, v in obj["metadata"].items() if k != "managedFields"}
        obj = {**obj, "metadata": md}
    return str(yaml.safe_dump(obj, sort_keys=False, default_flow_style=False, allow_unicode=True))


def page(request: web.Request, template: str, status: int = 200, **values: Any) -> web.Response:
    """Render ``template`` with the request's user, CSRF token and flash message."""
    session = request[SESSION]
    text = (
        request.app[ENV_KEY]
        .get_template(template)
        .render(user=request.get(USER), csrf=session.csrf, flash=session.take_flash(), path=request.path, **values)
    )
    return web.Response(text=text, content_type="text/html", status=status)
