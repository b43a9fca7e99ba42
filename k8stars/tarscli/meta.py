"""``_server_meta.yaml`` (K8STARS's ServerConf) and ``data/server_info.yaml`` (the resolved configuration).

Same keys and defaults as K8STARS, so existing images keep working; unknown keys (``version: v1``) are ignored.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped,unused-ignore]  # no stubs unless types-PyYAML is installed

DEFAULT_LOCATOR = "tars.tarsregistry.QueryObj@tcp -h tars-registry.${namespace}.svc.cluster.local -p 17890"
DEFAULT_ADAPTER_ENDPOINT = "tcp -h ${local_ip} -p ${random_port} -t 30000"
DEFAULT_LOCAL_ENDPOINT = "tcp -h 127.0.0.1 -p ${random_port} -t 5000"


class MetaError(ValueError):
    """A meta or server_info file that cannot be used."""


@dataclass
class Adapter:
    object: str = ""
    endpoint: str = DEFAULT_ADAPTER_ENDPOINT
    maxconns: int = 200000
    protocol: str = "tars"
    queuecap: int = 10000
    queuetimeout: int = 60000
    threads: int = 5


@dataclass
class ServerConf:
    """Field names are the YAML keys (K8STARS's mixed snake and camel case included)."""

    application: str = ""
    server: str = ""
    set_id: str = ""
    locator: str = DEFAULT_LOCATOR
    sample_rate: int = 100000
    max_sample_count: int = 50
    statObj: str = "tars.tarsstat.StatObj"
    propertyObj: str = "tars.tarsproperty.PropertyObj"
    asyncThreadNum: int = 3
    sync_invoke_timeout: int = 3000
    async_invoke_timeout: int = 5000
    report_interval: int = 6000
    refresh_endpoint_interval: int = 60000
    adapters: list[Adapter] = field(default_factory=list)
    local: str = DEFAULT_LOCAL_ENDPOINT
    logSize: str = "100M"
    logNum: int = 5
    configObj: str = "tars.tarsconfig.ConfigObj"
    notifyObj: str = "tars.tarsnotify.NotifyObj"
    logObj: str = "tars.tarslog.LogObj"
    logLevel: str = "DEBUG"
    deactivating_timeout: int = 3000

    @property
    def name(self) -> str:
        return f"{self.application}.{self.server}"

    def servant(self, adapter: Adapter) -> str:
        return f"{self.application}.{self.server}.{adapter.object}"

    @classmethod
    def from_dict(cls, doc: dict[str, Any] | None) -> ServerConf:
        doc = doc or {}
        conf = cls(**_known(cls, doc, skip={"adapters"}))
        items = doc.get("adapters") or []
        if not isinstance(items, list):
            raise MetaError("adapters must be a list")
        for item in items:
            if not isinstance(item, dict):
                raise MetaError(f"adapter entry {item!r} must be a mapping")
            a = Adapter(**_known(Adapter, item))
            if not a.endpoint:
                a.endpoint = DEFAULT_ADAPTER_ENDPOINT
            conf.adapters.append(a)
        return conf

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _known(cls: type, doc: dict[str, Any], skip: frozenset[str] | set[str] = frozenset()) -> dict[str, Any]:
    """The keys of ``doc`` that are fields of ``cls``, converted to the field's type (YAML may say ``threads: "5"``
    or leave a value empty)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name in skip or f.name not in doc or doc[f.name] is None:
            continue
        value = doc[f.name]
        try:
            out[f.name] = int(value) if f.type == "int" else str(value)
        except (TypeError, ValueError):
            raise MetaError(f"{f.name}: {value!r} is not a number") from None
    return out


def load_meta(path: Path) -> ServerConf:
    """The meta file over the defaults; a missing or unreadable file gives the defaults, as in K8STARS."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return ServerConf()
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise MetaError(f"{path}: {e}") from None
    if doc is not None and not isinstance(doc, dict):
        raise MetaError(f"{path}: expected a mapping at the top")
    return ServerConf.from_dict(doc)


@dataclass
class ServerInfo:
    """``data/server_info.yaml``: what genconf resolved. K8STARS's keys (conf, local_ip, tars_path) plus ``node``
    (the supervisor's ServerF endpoint, when supervised) and ``build_server``."""

    conf: ServerConf
    local_ip: str
    tars_path: str
    node: str = ""
    build_server: str = ""

    def dump(self) -> str:
        doc: dict[str, Any] = {"conf": self.conf.to_dict(), "local_ip": self.local_ip, "tars_path": self.tars_path}
        if self.node:
            doc["node"] = self.node
        if self.build_server:
            doc["build_server"] = self.build_server
        return str(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=4096))

    @classmethod
    def parse(cls, text: str) -> ServerInfo:
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise MetaError(f"server_info: {e}") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("conf"), dict):
            raise MetaError("server_info: no conf mapping")
        return cls(
            conf=ServerConf.from_dict(doc["conf"]),
            local_ip=str(doc.get("local_ip") or ""),
            tars_path=str(doc.get("tars_path") or ""),
            node=str(doc.get("node") or ""),
            build_server=str(doc.get("build_server") or ""),
        )

    @classmethod
    def load(cls, path: Path) -> ServerInfo:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise MetaError(f"cannot read {path}: {e.strerror} (has genconf or the supervisor run?)") from None
        return cls.parse(text)
