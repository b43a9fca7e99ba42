"""``k8stars notify list``: the newest notifications of a server in the SQL store, as a table."""

from __future__ import annotations

import re

from k8stars.services.notify.sqlstore import SqlNotifyStore

_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*")


class UsageError(ValueError):
    """Bad arguments (exit 2)."""


def parse_target(target: str) -> tuple[str, str | None]:
    """``App`` (every server of the app) or ``App.Server``."""
    parts = target.split(".")
    if len(parts) > 2 or not all(_NAME.fullmatch(p) for p in parts):
        raise UsageError(f"bad target {target!r}: expected App or App.Server")
    return parts[0], parts[1] if len(parts) == 2 else None


async def listing(store: SqlNotifyStore, target: str, node: str | None, limit: int) -> list[str]:
    """Lines: a header, then TIME LEVEL SERVER NODE MESSAGE, newest first (``no notifications ...`` when none)."""
    app, server = parse_target(target)
    try:
        rows = await store.recent(app, server, node, limit)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if not rows:
        return [f"no notifications of {target}" + (f" from {node}" if node else "")]
    lines = [f"{'TIME':<19}  {'LEVEL':<8}  {'SERVER':<24}  {'NODE':<15}  MESSAGE"]
    for r in rows:
        message = r.message.replace("\r", " ").replace("\n", " ")
        lines.append(f"{r.time:<19}  {r.command:<8}  {r.app + '.' + r.server:<24}  {r.node:<15}  {message}")
    return lines
