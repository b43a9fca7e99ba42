"""A notification as the service keeps it, built from NotifyF's three report operations with TarsFramework's rules.

TarsFramework's NotifyServer stores a level tag in ``t_server_notifys.command``: for a framework report (``REPORT``,
``reportServer``) the first of ``[alarm]``, ``[error]``, ``[warn]``, ``[fail]`` (stored as ``[error]``) found in the
message, else ``[normal]``; for a business alarm (``NOTIFY``, ``notifyServer``) the tag of its NOTIFYLEVEL. The
reporting node is ``ReportInfo.sNodeName``, else the caller's address.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from k8stars.tars.protocol.notifyf import NOTIFYLEVEL, ReportInfo, ReportType

ALARM, ERROR, WARN, NORMAL = "[alarm]", "[error]", "[warn]", "[normal]"
_MESSAGE_TAGS = ((ALARM, ALARM), (ERROR, ERROR), (WARN, WARN), ("[fail]", ERROR))  # searched in this order
_LEVEL_TAGS = {NOTIFYLEVEL.NOTIFYNORMAL: NORMAL, NOTIFYLEVEL.NOTIFYWARN: WARN, NOTIFYLEVEL.NOTIFYERROR: ERROR}
WARNING_TAGS = frozenset({ALARM, ERROR, WARN})  # a Kubernetes Event of type Warning
MAX_MESSAGE = 16384  # characters kept of one message: a flood of huge messages must not hold much memory either


def tag_of_message(message: str) -> str:
    for needle, tag in _MESSAGE_TAGS:
        if needle in message:
            return tag
    return NORMAL


def tag_of_level(level: int) -> str:
    try:
        return _LEVEL_TAGS[NOTIFYLEVEL(level)]
    except ValueError:
        return NORMAL


def split_set(text: str) -> tuple[str, str, str]:
    """``name.area.group`` -> its parts; anything else (TarsFramework logs it and stores no set) -> empty."""
    parts = text.strip().split(".")
    if len(parts) != 3 or parts[0] in ("", "*") or parts[1] in ("", "*") or not parts[2]:
        return ("", "", "")
    return (parts[0], parts[1], parts[2])


def _now() -> datetime:
    # local time, as TarsFramework's now() in MySQL and TarsWeb's display of it
    return datetime.now().replace(microsecond=0)


@dataclass(frozen=True, slots=True)
class Notification:
    """One report: whose it is, where it came from, its level tag and text."""

    app: str
    server: str
    message: str
    command: str = NORMAL  # the level tag, TarsFramework's t_server_notifys.command
    node: str = ""  # sNodeName, else the caller's address
    peer: str = ""  # the caller's address (the pod IP of a server reporting from its pod)
    set_division: tuple[str, str, str] = ("", "", "")
    container: str = ""
    thread_id: str = ""
    notify: bool = False  # a business alarm (NOTIFY) rather than a framework report (REPORT)
    time: datetime = field(default_factory=_now)

    @property
    def server_id(self) -> str:
        return f"{self.app}.{self.server}_{self.node}"

    @property
    def warning(self) -> bool:
        return self.command in WARNING_TAGS


def from_report(info: ReportInfo, peer: str) -> Notification:
    """``reportNotifyInfo``. A REPORT without a tag in its text takes its ``eLevel`` (TarsGo and tarscli send one;
    TarsFramework ignores it and stores ``[normal]``)."""
    level = int(info.eLevel or 0)
    if info.eType == ReportType.NOTIFY:
        command = tag_of_level(level)
    else:
        command = tag_of_message(info.sMessage)
        if command == NORMAL:
            command = tag_of_level(level)
    return Notification(
        app=info.sApp, server=info.sServer, message=info.sMessage[:MAX_MESSAGE], command=command,
        node=info.sNodeName or peer, peer=peer, set_division=split_set(info.sSet), container=info.sContainer,
        thread_id=info.sThreadId, notify=info.eType == ReportType.NOTIFY,
    )  # fmt: skip


def split_server(name: str) -> tuple[str, str]:
    """``App.Server`` -> (App, Server); a name without a dot is both (as TarsFramework)."""
    app, dot, server = name.partition(".")
    return (app, server.split(".")[0]) if dot else (name, name)


def from_report_server(server_name: str, thread_id: str, message: str, peer: str) -> Notification:
    """``reportServer``: a framework report; the node is the caller."""
    app, server = split_server(server_name)
    return Notification(app=app, server=server, message=message[:MAX_MESSAGE], command=tag_of_message(message),
                        node=peer, peer=peer, thread_id=thread_id)  # fmt: skip


def from_notify_server(server_name: str, level: int, message: str, peer: str) -> Notification:
    """``notifyServer``: a business alarm with its level; the node is the caller."""
    app, server = split_server(server_name)
    return Notification(app=app, server=server, message=message[:MAX_MESSAGE], command=tag_of_level(level),
                        node=peer, peer=peer, notify=True)  # fmt: skip
