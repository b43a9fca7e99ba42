"""``tars.tarsconfig.ConfigObj``: every ConfigF operation over a :class:`ConfigStore`, K8SFramework's semantics.

A file of server ``App.Server`` for pod N is the content of the activated pod-level TConfig (podSeq "N") when there
is one, else the server-level one (podSeq "m"). Upstream K8SFramework concatenates both (a reported bug); here the
pod level replaces the server level. App-level files (empty ``server``) have no pod level.

Which pod asks: the ``host`` of the request (a pod IP, or a pod name ``lower(app)-lower(server)-N``, also as a DNS
name ``...-N.<service>...``), else the caller's address, since TarsGo's rconf sends no host.

Failures answer -1 and never raise: the out string says what is wrong (list operations have no out string; they
answer -1 with an empty list and log the reason).
"""

from __future__ import annotations

import logging

from k8stars.services.config.store import SERVER_LEVEL, ConfigEntry, ConfigStore
from k8stars.tars import untrusted
from k8stars.tars.config import ConfigError, TarsConfig
from k8stars.tars.packet import MAX_FRAME_SIZE
from k8stars.tars.protocol.configf import (
    Config_checkConfig_result,
    Config_checkConfigByInfo_result,
    Config_ListAllConfigByInfo_result,
    Config_ListConfig_result,
    Config_ListConfigByInfo_result,
    Config_loadConfig_result,
    Config_loadConfigByHost_result,
    Config_loadConfigByInfo_result,
    ConfigInfo,
    ConfigServant,
    GetConfigListInfo,
)
from k8stars.tars.rpc import current
from k8stars.tars.untrusted import printable

log = logging.getLogger("k8stars.services.config")

OK, FAILED = 0, -1
MAX_FILENAME = 128  # t_config_files.filename
# A file, or a merged answer, must fit in one reply frame, whose limit at every peer (TarsGo, TarsJava, k8stars) is
# MAX_FRAME_SIZE (10 MiB): 8 MiB leaves room for the reply's other fields
MAX_CONFIG_BYTES = 8 * 1024 * 1024
_CONTROL = frozenset(map(chr, [*range(0x20), 0x7F]))


class ConfigLookupError(ValueError):
    """A request that cannot be answered; the message is what the caller reads."""


def check_target(app: str, server: str) -> None:
    """The registry's name rule for the application and (when not empty: app level) the server."""
    try:
        untrusted.check_name("appname", app, untrusted.MAX_APPLICATION)
        if server:
            untrusted.check_name("servername", server, untrusted.MAX_SERVER)
    except untrusted.BadName as e:
        raise ConfigLookupError(str(e)) from None


def check_filename(name: str) -> str:
    """A plain file name, as servers write it into their basepath: no path, no control character."""
    if not name.strip():
        raise ConfigLookupError("filename is empty")
    if "/" in name or "\\" in name or name in (".", "..") or _CONTROL.intersection(name):
        raise ConfigLookupError(f"bad file name {name[:MAX_FILENAME]!r}: a plain file name, without path separators "
                                "or control characters")  # fmt: skip
    if len(name) > MAX_FILENAME:
        raise ConfigLookupError(f"file name {name[:20]!r}...: longer than {MAX_FILENAME} characters")
    return name


def check_size(what: str, content: str) -> str:
    size = len(content.encode("utf-8", "surrogatepass"))
    if size > MAX_CONFIG_BYTES:
        raise ConfigLookupError(f"{what} is {size} bytes: a config file (or merged answer) is at most "
                                f"{MAX_CONFIG_BYTES} bytes (8 MiB), so that it fits in one TARS frame "
                                f"({MAX_FRAME_SIZE} bytes)")  # fmt: skip
    return content


def refusals() -> untrusted.Throttle:
    """Where a servant logs the requests it could not answer: one line a second at most, with a count of the rest
    (a flood of bad requests must not flood the log)."""
    return untrusted.Throttle(log, 1.0, level=logging.INFO)


def refused(throttle: untrusted.Throttle, what: str, app: str, server: str, filename: str, e: Exception) -> None:
    """Log a request that could not be answered (the caller reads why), every value escaped: a name cannot forge
    a line."""
    throttle.emit(what, "%s %s of %s.%s: %s", what, printable(filename), printable(app), printable(server),
                   printable(str(e)))  # fmt: skip


def ordinal_from_name(name: str, app: str, server: str) -> int | None:
    """N of a pod name ``lower(app)-lower(server)-N`` (or of the DNS name ``<that>.<more labels>``)."""
    first = name.strip().lower().split(".", 1)[0]
    prefix = f"{app.lower()}-{server.lower()}-"
    rest = first[len(prefix) :] if first.startswith(prefix) else ""
    if not rest or not rest.isascii() or not rest.isdigit():
        return None
    return int(rest)


def split_app_server(app_server: str) -> tuple[str, str]:
    """``App`` -> (App, "") (app level), ``App.Server`` -> (App, Server)."""
    parts = app_server.strip().split(".")
    if len(parts) > 2 or not all(parts):
        raise ConfigLookupError(f"bad appServerName {app_server!r}: expected App or App.Server")
    app, server = parts[0], parts[1] if len(parts) == 2 else ""
    check_target(app, server)
    return app, server


def choose(entries: list[ConfigEntry], pod_seq: str) -> ConfigEntry | None:
    """The TConfig of one podSeq; should two be activated for a moment, the one not being deactivated, then the
    one activated last (created, or re-activated: the operator's rule) wins."""
    wanted = [e for e in entries if e.pod_seq == pod_seq]
    return max(wanted, key=lambda e: (not e.deactivating, e.since, e.object_name), default=None)


def caller_ip() -> str:
    try:
        return current().peer_host
    except LookupError:  # called outside a TARS request (tests, tools)
        return ""


class ConfigImp(ConfigServant):
    def __init__(self, store: ConfigStore) -> None:
        self.store = store
        self.refusals = refusals()

    # -- the lookups behind every operation -------------------------------------------------------------------
    def pod_ordinal(self, app: str, server: str, host: str) -> int | None:
        """The ordinal of the asking pod in App.Server's StatefulSet, or None (not one of its pods)."""
        if not server:
            return None
        host = host.strip() or caller_ip()
        if not host:
            return None
        return ordinal_from_name(self.store.pod_name(host) or host, app, server)

    def lookup(self, app: str, server: str, filename: str, host: str) -> ConfigEntry:
        check_target(app, server)
        check_filename(filename)
        entries = self.store.entries(app, server, filename)
        ordinal = self.pod_ordinal(app, server, host)
        found = choose(entries, str(ordinal)) if ordinal is not None else None
        found = found or choose(entries, SERVER_LEVEL)
        if found is None:
            owner = f"server {app}.{server}" if server else f"app {app}"
            raise ConfigLookupError(f"config {filename} of {owner} not found: no activated TConfig")
        log.debug("%s.%s %s for %s (pod %s): TConfig %s", app, server, filename, printable(host or caller_ip()),
                  ordinal, found.object_name)  # fmt: skip
        return found

    def load(self, app: str, server: str, filename: str, host: str) -> tuple[int, str]:
        try:
            return OK, check_size(filename, self.lookup(app, server, filename, host).content)
        except ConfigLookupError as e:
            refused(self.refusals, "load", app, server, filename, e)
            return FAILED, str(e)

    def check(self, app: str, server: str, filename: str, host: str) -> tuple[int, str]:
        ret, content = self.load(app, server, filename, host)
        if ret != OK:
            return ret, content
        try:
            TarsConfig.parse(content)
        except ConfigError as e:
            return FAILED, f"{filename} is not a valid TARS config: {e}"
        return OK, content

    def list_names(self, app: str, server: str) -> tuple[int, list[str]]:
        try:
            check_target(app, server)
        except ConfigLookupError as e:
            refused(self.refusals, "list", app, server, "", e)
            return FAILED, []
        return OK, self.store.names(app, server)

    # -- ConfigF ----------------------------------------------------------------------------------------------
    async def ListConfig(self, app: str, server: str) -> Config_ListConfig_result:
        return Config_ListConfig_result(*self.list_names(app, server))

    async def loadConfig(self, app: str, server: str, filename: str) -> Config_loadConfig_result:
        return Config_loadConfig_result(*self.load(app, server, filename, ""))

    async def loadConfigByHost(self, appServerName: str, filename: str, host: str) -> Config_loadConfigByHost_result:
        try:
            app, server = split_app_server(appServerName)
        except ConfigLookupError as e:
            return Config_loadConfigByHost_result(FAILED, str(e))
        return Config_loadConfigByHost_result(*self.load(app, server, filename, host))

    async def checkConfig(self, appServerName: str, filename: str, host: str) -> Config_checkConfig_result:
        try:
            app, server = split_app_server(appServerName)
        except ConfigLookupError as e:
            return Config_checkConfig_result(FAILED, str(e))
        return Config_checkConfig_result(*self.check(app, server, filename, host))

    async def ListConfigByInfo(self, configInfo: ConfigInfo) -> Config_ListConfigByInfo_result:
        server = "" if configInfo.bAppOnly else configInfo.servername
        return Config_ListConfigByInfo_result(*self.list_names(configInfo.appname, server))

    async def loadConfigByInfo(self, configInfo: ConfigInfo) -> Config_loadConfigByInfo_result:
        i = configInfo
        return Config_loadConfigByInfo_result(*self.load(i.appname, "" if i.bAppOnly else i.servername, i.filename,
                                                         i.host))  # fmt: skip

    async def checkConfigByInfo(self, configInfo: ConfigInfo) -> Config_checkConfigByInfo_result:
        i = configInfo
        return Config_checkConfigByInfo_result(*self.check(i.appname, "" if i.bAppOnly else i.servername,
                                                           i.filename, i.host))  # fmt: skip

    async def ListAllConfigByInfo(self, configInfo: GetConfigListInfo) -> Config_ListAllConfigByInfo_result:
        # bAppOnly: the app-level files; else the server's (K8SFramework's second listing replaces its first)
        server = "" if configInfo.bAppOnly else configInfo.servername
        return Config_ListAllConfigByInfo_result(*self.list_names(configInfo.appname, server))
