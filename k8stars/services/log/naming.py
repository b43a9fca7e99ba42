"""Where a remote log record goes: TarsFramework LogServer's file naming, as pure functions.

``logger(app, server, file, format)``: ``<dir>/<app>/<server>/<app>.<server>[_<file>]_<time>.log``.
``loggerbyInfo(info)``: ``<dir>/<app>/[<set>/]<server>/<name>[<concat><time>][.log]`` where ``<name>`` is
``<app>.<server>[<concat><file>]`` with ``bHasAppNamePrefix`` (else just ``<file>``), ``<set>`` is the set division
``name.area.group`` as ``nameareagroup`` (``namearea`` when the group is ``*``), ``.log`` only with ``bHasSufix``
and ``<time>`` the local time formatted with ``sFormat`` — or, with ``sLogType`` (``[N]day``, ``[N]hour``,
``[N]minute``), the start of the current N-day/hour/minute period, epoch aligned, as TarsCpp's TC_DayLogger rolls.
Everything a caller names is checked first: no component can leave the log directory.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

from k8stars.tars.protocol.logf import LogInfo

HOURLY_FORMAT = "%Y%m%d%H"  # TarsFramework's hour list forces this format
MAX_NAME = 200  # bytes of one path component we build (file systems allow 255)
MAX_FORMAT = 64
# sLogType -> (default time format, seconds per unit, default count): TarsCpp's LogByDay/LogByHour/LogByMinute
LOG_TYPES = {"day": ("%Y%m%d", 86400, 1), "hour": ("%Y%m%d%H", 3600, 1), "minute": ("%Y%m%d%H%M", 60, 10)}
_BAD_CHARS = re.compile(r"[/\\\x00-\x1f\x7f]")  # control characters too: a name must not forge a log line


class BadLogName(ValueError):
    """A name, set, format or separator that would escape the log directory or cannot be a file name."""


@dataclass(frozen=True)
class NamingRules:
    """The service side's say over names (TarsFramework's ``/tars/log/format<hour>`` and ``/tars/log/logtype``)."""

    hourly: frozenset[str] = frozenset()  # "App.Server": always %Y%m%d%H
    log_types: dict[str, str] = field(default_factory=dict)  # "App.Server.file" -> "hour" (overrides the caller's)


def check_part(what: str, value: str, *, empty_ok: bool = False) -> str:
    """``value`` if it is safe inside one path component, else BadLogName naming ``what``."""
    if not value and not empty_ok:
        raise BadLogName(f"{what} is empty")
    if _BAD_CHARS.search(value) or ".." in value or value == ".":
        raise BadLogName(f"{what} {value[:80]!r}: path separators, control characters and '..' are not allowed")
    if len(value.encode("utf-8", "surrogateescape")) > MAX_NAME:
        raise BadLogName(f"{what} {value[:40]!r}...: longer than {MAX_NAME} bytes")
    return value


def set_dir(setdivision: str) -> str:
    """TarsFramework's set directory: ``name.area.group`` -> ``nameareagroup`` (``namearea`` for group ``*``), any
    other shape -> no directory."""
    parts = [p for p in setdivision.split(".") if p]
    if len(parts) != 3:
        return ""
    return check_part("setdivision", parts[0] + parts[1] + ("" if parts[2] == "*" else parts[2]))


def time_suffix(fmt: str, now: float) -> str:
    """The local time formatted as TC_Common::tm2str does (strftime); checked like a name."""
    if len(fmt) > MAX_FORMAT:
        raise BadLogName(f"format {fmt[:40]!r}...: longer than {MAX_FORMAT} characters")
    try:
        text = time.strftime(fmt, time.localtime(now))
    except ValueError as e:
        raise BadLogName(f"format {fmt!r}: {e}") from None
    return check_part("format", text, empty_ok=True)


def parse_log_type(log_type: str) -> tuple[str, int] | None:
    """``[N]day`` / ``[N]hour`` / ``[N]minute`` (any case) -> (default format, period in seconds); None for anything
    else, which TarsFramework treats as no log type (the plain format)."""
    lowered = log_type.lower()
    for unit, (fmt, seconds, default_n) in LOG_TYPES.items():
        pos = lowered.find(unit)
        if pos < 0:
            continue
        prefix = lowered[:pos]
        n = int(prefix) if prefix.isdigit() else default_n
        return fmt, seconds * (n or 1)
    return None


def logger_path(app: str, server: str, file: str, fmt: str, now: float, rules: NamingRules) -> tuple[str, ...]:
    """The path, relative to the log directory, of a ``Log.logger`` record."""
    check_part("app", app), check_part("server", server), check_part("file", file, empty_ok=True)
    if f"{app}.{server}" in rules.hourly:
        fmt = HOURLY_FORMAT
    name = f"{app}.{server}_{file}" if file else f"{app}.{server}"
    return app, server, check_part("log name", f"{name}_{time_suffix(fmt, now)}.log")


def info_path(info: LogInfo, now: float, rules: NamingRules) -> tuple[str, ...]:
    """The path, relative to the log directory, of a ``Log.loggerbyInfo`` record."""
    app, server, file = info.appname, info.servername, info.sFilename
    check_part("app", app), check_part("server", server)
    check_part("file", file, empty_ok=info.bHasAppNamePrefix)  # without the prefix the file is the whole name
    check_part("sConcatStr", info.sConcatStr, empty_ok=True)
    fmt, log_type = info.sFormat, info.sLogType
    if f"{app}.{server}" in rules.hourly:
        fmt = HOURLY_FORMAT
    override = rules.log_types.get(f"{app}.{server}.{file}")
    type_format = fmt
    if override is not None:  # the service's configuration wins, with the type's own format
        log_type, type_format = override, ""
    parsed = parse_log_type(log_type) if log_type else None
    if parsed is not None:
        default_format, period = parsed
        suffix = time_suffix(type_format or default_format, now - now % period)
    else:
        suffix = time_suffix(fmt, now)
    if info.bHasAppNamePrefix:
        base = f"{app}.{server}{info.sConcatStr}{file}" if file else f"{app}.{server}"
    else:
        base = file
    name = f"{base}{info.sConcatStr}{suffix}{'.log' if info.bHasSufix else ''}"
    division = set_dir(info.setdivision)
    return tuple(p for p in (app, division, server, check_part("log name", name)) if p)
