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
from k8stars.tars.config import ConfigError, TarsConfig
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

log = logging.getLogger("k8stars.services.config")

OK, FAILED = 0, -1


class ConfigLookupError(ValueError):
    """A request that cannot be answered; the message is what the caller reads."""


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
    return (parts[0], parts[1] if len(parts) == 2 else "")


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
        if not app.strip():
            raise ConfigLookupError("appname is empty")
        if not filename.strip():
            raise ConfigLookupError("filename is empty")
        entries = self.store.entries(app, server, filename)
        ordinal = self.pod_ordinal(app, server, host)
        found = choose(entries, str(ordinal)) if ordinal is not None else None
        found = found or choose(entries, SERVER_LEVEL)
        if found is None:
            owner = f"server {app}.{server}" if server else f"app {app}"
            raise ConfigLookupError(f"config {filename} of {owner} not found: no activated TConfig")
        log.debug("%s.%s %s for %s (pod %s): TConfig %s", app, server, filename, host or caller_ip(), ordinal,
                  found.object_name)  # fmt: skip
        return found

    def load(self, app: str, server: str, filename: str, host: str) -> tuple[int, str]:
        try:
            return OK, self.lookup(app, server, filename, host).content
        except ConfigLookupError as e:
            log.info("load %s of %s.%s: %s", filename, app, server, e)
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
        if not app.strip():
            log.info("list: appname is empty")
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
