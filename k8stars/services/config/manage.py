"""``k8stars config put|get|list|rm``: files of the SQL store, addressed as TarsWeb shows them.

``TARGET`` is ``App`` (an app-level file, shared by the app's servers) or ``App.Server`` (a server-level file); with
``--host IP`` the file is that node's node-level file of the server; ``--set name.area.group`` puts it in a TARS set.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from k8stars.services.config.servant import ConfigLookupError, check_filename, check_size, check_target
from k8stars.services.config.sqlstore import (
    LEVEL_APP,
    LEVEL_NODE,
    LEVEL_SERVER,
    FileRow,
    SetDivision,
    SqlConfigStore,
    parse_set_division,
)

LEVEL_NAMES = {LEVEL_APP: "app", LEVEL_SERVER: "server", LEVEL_NODE: "node"}


class UsageError(ValueError):
    """Bad arguments (exit 2); the message says which."""


class NotFound(LookupError):
    """No such file (exit 1)."""


@dataclass(frozen=True)
class Target:
    owner: str  # t_config_files.server_name: App or App.Server
    level: int
    host: str
    sd: SetDivision

    def describe(self, filename: str) -> str:
        where = f" on {self.host}" if self.host else ""
        in_set = f" in set {'.'.join(self.sd)}" if any(self.sd) else ""
        return f"{self.owner} {filename} ({LEVEL_NAMES[self.level]} level{where}{in_set})"


def parse_target(target: str, host: str | None = None, set_division: str | None = None) -> Target:
    parts = target.strip().split(".")
    if len(parts) > 2 or not all(parts):
        raise UsageError(f"bad target {target!r}: expected App (app level) or App.Server")
    try:
        check_target(parts[0], parts[1] if len(parts) == 2 else "")  # the registry's rule: what it would refuse
    except ConfigLookupError as e:
        raise UsageError(f"bad target {target!r}: {e}") from None
    host = (host or "").strip()
    if host:
        if len(parts) == 1:
            raise UsageError("--host needs App.Server: app-level files have no node level")
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise UsageError(f"--host {host!r}: expected the node's IP address (t_config_files.host)") from None
    try:
        sd = parse_set_division(set_division or "")
    except ValueError as e:
        raise UsageError(f"--set: {e}") from None
    level = LEVEL_NODE if host else LEVEL_SERVER if len(parts) == 2 else LEVEL_APP
    return Target(".".join(parts), level, host, sd)


def check_name(name: str) -> str:
    try:
        return check_filename(name)
    except ConfigLookupError as e:
        raise UsageError(str(e)) from None


async def put(store: SqlConfigStore, target: Target, name: str, content: str, *, user: str = "", reason: str = "",
              references: Sequence[str] | None = None) -> str:  # fmt: skip
    if references and target.level == LEVEL_APP:
        raise UsageError("--ref: app-level files reference nothing (references point from a server's files to the "
                         "app's)")  # fmt: skip
    check_name(name)
    try:
        check_size(name, content)  # what loadConfig could never answer is refused here, naming the limit
    except ConfigLookupError as e:
        raise UsageError(str(e)) from None
    try:
        row, created = await store.put(target.owner, name, target.level, content, host=target.host,
                                       sd=target.sd, user=user, reason=reason, references=references)  # fmt: skip
    except ValueError as e:  # a referenced file does not exist
        raise NotFound(str(e)) from None
    return f"{'created' if created else 'updated'} {target.describe(name)}, id {row.id}"


async def get(store: SqlConfigStore, target: Target, name: str) -> str:
    row = await store.file(target.owner, check_name(name), target.level, target.host, target.sd)
    if row is None:
        raise NotFound(f"no {target.describe(name)}")
    return row.config


async def remove(store: SqlConfigStore, target: Target, name: str) -> str:
    if not await store.remove(target.owner, check_name(name), target.level, target.host, target.sd):
        raise NotFound(f"no {target.describe(name)}")
    return f"removed {target.describe(name)}"


def _table(rows: list[FileRow]) -> list[str]:
    cells = [("FILE", "LEVEL", "HOST", "SET", "UPDATED", "BY")]
    cells += [(r.filename, LEVEL_NAMES.get(r.level, str(r.level)), r.host or "-", r.set_text or "-",
               r.posttime or "-", r.lastuser or "-") for r in rows]  # fmt: skip
    widths = [max(len(c[i]) for c in cells) for i in range(len(cells[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]


async def listing(store: SqlConfigStore, target: Target) -> list[str]:
    """A table of the owner's files (every level, host and set; ``--host``/``--set`` narrow it)."""
    rows = await store.files(target.owner)
    if target.host:
        rows = [r for r in rows if r.host == target.host]
    if any(target.sd):
        rows = [r for r in rows if r.set_division == target.sd]
    return _table(rows) if rows else []
