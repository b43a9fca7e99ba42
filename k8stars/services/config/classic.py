"""``tars.tarsconfig.ConfigObj`` over the classic ``db_tars`` tables: TarsFramework ConfigServer's semantics.

What a server gets for its file ``F`` (levels of ``t_config_files``, see ``sqlstore``):

- app level (``loadConfig`` with no server, ``bAppOnly``): the app's row of ``F``; with a ``setdivision`` the app's
  row of that set follows it;
- server ``App.Server`` on node ``host``: the app-level files the server-level row references, the server-level row,
  then the app-level files the node-level row (``host``) references and the node-level row — each part that exists,
  in that order, joined by ``"\\r\\n\\r\\n"`` as TarsFramework does (so a TARS config's later values win where the
  client merges domains). With a ``setdivision`` the server and node rows are those of the set, and each referenced
  app-level file is followed by the app's row of that set.

Differences from TarsFramework, on purpose: a file with no row at all answers -1 and says so (upstream answers 0 and
an empty file, which clients then write); listings answer the server-level and the node's node-level files (upstream
``ListConfig``/``ListConfigByInfo`` list the node-level ones only, so a server without node-level files sees none);
``loadConfigByHost("App", ...)`` answers the app-level file; an empty host means the caller's address; no per-client
rate limit. Answers are cached for ``CACHE_TTL`` so a burst of starting servers costs the database one read each.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from k8stars.services.config.servant import (
    ConfigLookupError,
    caller_ip,
    check_filename,
    check_size,
    check_target,
    refusals,
    refused,
    split_app_server,
)
from k8stars.services.config.sqlstore import (
    LEVEL_APP,
    LEVEL_NODE,
    LEVEL_SERVER,
    FileRow,
    SetDivision,
    SqlConfigStore,
    parse_set_division,
)
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
from k8stars.tars.untrusted import printable

log = logging.getLogger("k8stars.services.config")

OK, FAILED = 0, -1
SEP = "\r\n\r\n"  # TarsFramework's separator between merged files
CACHE_TTL = 0.5  # seconds: a change reaches the answers within this (plus one read)
CACHE_MAX = 10000  # entries; cleared when full

T = TypeVar("T")


def merge(low: str, high: str) -> str:
    """TarsFramework's mergeConfig: the higher-priority part after the lower one, empty parts dropped."""
    return high if not low else low if not high else low + SEP + high


class ClassicConfigImp(ConfigServant):
    def __init__(self, store: SqlConfigStore, cache_ttl: float = CACHE_TTL) -> None:
        self.store = store
        self.cache_ttl = cache_ttl
        self.refusals = refusals()
        self._cache: dict[tuple[object, ...], tuple[float, object]] = {}

    async def _cached(self, key: tuple[object, ...], make: Callable[[], Awaitable[T]]) -> T:
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]  # type: ignore[return-value]  # stored by this key's own make()
        value = await make()
        if len(self._cache) >= CACHE_MAX:
            self._cache.clear()
        self._cache[key] = (now + self.cache_ttl, value)
        return value

    # -- the lookups ------------------------------------------------------------------------------------------
    async def _with_references(self, row: FileRow | None, sd: SetDivision) -> str:
        """The app-level files ``row`` references (each followed by its set's row), then ``row`` itself."""
        if row is None:
            return ""
        text = ""
        for ref_id in await self.store.reference_ids(row.id):
            ref = await self.store.by_id(ref_id)
            if ref is None:  # a dangling reference, as upstream: skipped
                continue
            set_row = await self.store.file(ref.server_name, ref.filename, LEVEL_APP, "", sd) if any(sd) else None
            text = merge(text, merge(ref.config, set_row.config if set_row else ""))
        return merge(text, row.config)

    async def app_file(self, app: str, filename: str, sd: SetDivision) -> str | None:
        row = await self.store.file(app, filename, LEVEL_APP)
        set_row = await self.store.file(app, filename, LEVEL_APP, "", sd) if any(sd) else None
        if row is None and set_row is None:
            return None
        return merge(row.config if row else "", set_row.config if set_row else "")

    async def server_file(self, app: str, server: str, filename: str, host: str, sd: SetDivision) -> str | None:
        owner = f"{app}.{server}"
        server_row = await self.store.file(owner, filename, LEVEL_SERVER, "", sd)
        node_row = await self.store.file(owner, filename, LEVEL_NODE, host, sd) if host else None
        if server_row is None and node_row is None:
            return None
        return merge(await self._with_references(server_row, sd), await self._with_references(node_row, sd))

    async def lookup(self, app: str, server: str, filename: str, host: str, setdivision: str = "") -> str:
        check_target(app, server)
        check_filename(filename)
        try:
            sd = parse_set_division(setdivision)
        except ValueError as e:
            raise ConfigLookupError(str(e)) from None
        host = host.strip() or caller_ip()
        if server:
            found = await self._cached(("server", app, server, filename, host, sd),
                                       lambda: self.server_file(app, server, filename, host, sd))  # fmt: skip
        else:
            found = await self._cached(("app", app, filename, sd), lambda: self.app_file(app, filename, sd))
        if found is None:
            owner = f"server {app}.{server}" if server else f"app {app}"
            raise ConfigLookupError(f"config {filename} of {owner} not found: no row in t_config_files")
        return check_size(filename, found)

    async def load(self, app: str, server: str, filename: str, host: str, sd: str = "") -> tuple[int, str]:
        try:
            return OK, await self.lookup(app, server, filename, host, sd)
        except ConfigLookupError as e:
            refused(self.refusals, "load", app, server, filename, e)
            return FAILED, str(e)
        except Exception as e:  # the database failed: the caller reads why, the service keeps going
            log.warning("load %s of %s.%s: config store: %s", printable(filename), app, server, e)
            return FAILED, f"config store error: {e}"

    async def check(self, app: str, server: str, filename: str, host: str, sd: str = "") -> tuple[int, str]:
        ret, content = await self.load(app, server, filename, host, sd)
        if ret != OK:
            return ret, content
        try:
            TarsConfig.parse(content)
        except ConfigError as e:
            return FAILED, f"{filename} is not a valid TARS config: {e}"
        return OK, content

    async def list_names(self, app: str, server: str, host: str | None, setdivision: str = "",
                         every_level: bool = False) -> tuple[int, list[str]]:  # fmt: skip
        """App-level files (``server`` empty), else the server level's and ``host``'s node level's; with
        ``every_level`` (ListAllConfigByInfo) any level and set unless ``host`` narrows it to that node's."""
        try:
            check_target(app, server)
        except ConfigLookupError as e:
            refused(self.refusals, "list", app, server, "", e)
            return FAILED, []
        try:
            sd = parse_set_division(setdivision)
            return OK, await self._cached(("list", app, server, host, sd, every_level),
                                          lambda: self._names(app, server, host, sd, every_level))  # fmt: skip
        except Exception as e:
            log.warning("list %s.%s: %s", app, server, printable(str(e)))
            return FAILED, []

    async def _names(self, app: str, server: str, host: str | None, sd: SetDivision, every_level: bool) -> list[str]:
        if not server:
            return await self.store.filenames(app, LEVEL_APP, sd=None if every_level else sd)
        owner = f"{app}.{server}"
        if every_level:  # upstream: every file of the server, or only the node's when a host is given
            if host:
                return await self.store.filenames(owner, LEVEL_NODE, host, sd)
            return await self.store.filenames(owner, None, None, sd)
        names = set(await self.store.filenames(owner, LEVEL_SERVER, "", sd))
        if host:
            names.update(await self.store.filenames(owner, LEVEL_NODE, host, sd))
        return sorted(names)

    # -- ConfigF ----------------------------------------------------------------------------------------------
    async def ListConfig(self, app: str, server: str) -> Config_ListConfig_result:
        return Config_ListConfig_result(*await self.list_names(app, server, caller_ip()))

    async def loadConfig(self, app: str, server: str, filename: str) -> Config_loadConfig_result:
        return Config_loadConfig_result(*await self.load(app, server, filename, ""))

    async def loadConfigByHost(self, appServerName: str, filename: str, host: str) -> Config_loadConfigByHost_result:
        try:
            app, server = split_app_server(appServerName)
        except ConfigLookupError as e:
            return Config_loadConfigByHost_result(FAILED, str(e))
        return Config_loadConfigByHost_result(*await self.load(app, server, filename, host))

    async def checkConfig(self, appServerName: str, filename: str, host: str) -> Config_checkConfig_result:
        try:
            app, server = split_app_server(appServerName)
        except ConfigLookupError as e:
            return Config_checkConfig_result(FAILED, str(e))
        return Config_checkConfig_result(*await self.check(app, server, filename, host))

    async def ListConfigByInfo(self, configInfo: ConfigInfo) -> Config_ListConfigByInfo_result:
        i = configInfo
        server = "" if i.bAppOnly else i.servername
        return Config_ListConfigByInfo_result(*await self.list_names(i.appname, server, i.host or caller_ip(),
                                                                     i.setdivision))  # fmt: skip

    async def loadConfigByInfo(self, configInfo: ConfigInfo) -> Config_loadConfigByInfo_result:
        i = configInfo
        server = "" if i.bAppOnly else i.servername
        return Config_loadConfigByInfo_result(*await self.load(i.appname, server, i.filename, i.host,
                                                               i.setdivision))  # fmt: skip

    async def checkConfigByInfo(self, configInfo: ConfigInfo) -> Config_checkConfigByInfo_result:
        i = configInfo
        server = "" if i.bAppOnly else i.servername
        return Config_checkConfigByInfo_result(*await self.check(i.appname, server, i.filename, i.host,
                                                                 i.setdivision))  # fmt: skip

    async def ListAllConfigByInfo(self, configInfo: GetConfigListInfo) -> Config_ListAllConfigByInfo_result:
        i = configInfo
        server = "" if i.bAppOnly else i.servername
        return Config_ListAllConfigByInfo_result(*await self.list_names(i.appname, server, i.host or None,
                                                                        i.setdivision, every_level=True))  # fmt: skip
