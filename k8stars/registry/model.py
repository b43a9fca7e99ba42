"""What the registry stores and how registration requests are checked before anything is written.

Names and lengths follow the classic ``db_tars`` columns, so that a request which passes validation always fits the
tables (MySQL in non-strict mode would otherwise truncate silently, and an enum column would store '' for an unknown
state — K8STARS's bug with node states).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from k8stars.tars import untrusted
from k8stars.tars.endpoint import Endpoint, EndpointError
from k8stars.tars.errors import TarsRpcError

# Business codes of the Registry servant (iRet of a failed call; the text says what was wrong).
ERR_BAD_REQUEST = 1001  # the request itself is invalid: nothing was written
ERR_NOT_REGISTERED = 1002  # keepAlive/registerMetrics for a server that has no row (call onStartup first)
ERR_STORE = 1003  # the store failed (database down, lock timeout); retry later

ACTIVE, INACTIVE, ACTIVATING, DEACTIVATING, DESTROYED = "active", "inactive", "activating", "deactivating", "destroyed"
STATES = (ACTIVE, INACTIVE, ACTIVATING, DEACTIVATING, DESTROYED)  # t_server_conf.present_state's enum
LIVE_STATES = (ACTIVE, ACTIVATING, DEACTIVATING)  # states a lost heartbeat turns into inactive

MAX_ADAPTERS = 100  # per onStartup: real servers have a handful; more is a bug or an attack
DEFAULT_METRICS_PORT = 9325  # K8STARS: registerMetrics with port 0

# Column widths of the classic tables (t_adapter_conf.application is the narrowest place an application goes).
LEN_APPLICATION = untrusted.MAX_APPLICATION
LEN_SERVER = untrusted.MAX_SERVER
LEN_NODE = 50
LEN_ADAPTER_NAME = 100
LEN_SERVANT = LEN_ADAPTER_NAME - len("Adapter")
LEN_ENDPOINT = 128
LEN_PROTOCOL = 64
LEN_VERSION = 128
LEN_SET_NAME, LEN_SET_AREA, LEN_SET_GROUP = 16, 16, 64

_PROTOCOL = re.compile(r"[A-Za-z0-9_\-]*")
# free text (Version, an endpoint's unknown options) is printable ASCII: what every store's column holds as sent
# (MySQL's utf8 columns cannot hold an emoji; SQLite would take it)
_TEXT = re.compile(r"[\x20-\x7e]*")


class RegistryError(TarsRpcError):
    """A registry call that cannot be done; ``code`` is one of the ERR_* business codes."""


def bad_request(message: str) -> RegistryError:
    return RegistryError(message, ERR_BAD_REQUEST)


@dataclass(frozen=True, slots=True, order=True)
class ServerKey:
    """One server instance: the unique key of t_server_conf."""

    application: str
    server: str
    node: str

    def __str__(self) -> str:
        return f"{self.node}.{self.application}.{self.server}"


@dataclass(frozen=True, slots=True)
class AdapterSpec:
    """One adapter as onStartup announces it (t_adapter_conf)."""

    servant: str
    endpoint: str
    protocol: str = "tars"
    max_conns: int = 0
    threads: int = 0
    queue_cap: int = 0
    queue_timeout: int = 0

    @property
    def adapter_name(self) -> str:
        return self.servant + "Adapter"


@dataclass(frozen=True, slots=True)
class Registration:
    """A checked onStartup request."""

    key: ServerKey
    state: str = ACTIVE
    version: str = ""
    set_name: str = ""
    set_area: str = ""
    set_group: str = ""
    disable_flow: bool = False
    adapters: tuple[AdapterSpec, ...] = ()

    @property
    def enable_set(self) -> bool:
        return bool(self.set_name)


@dataclass(slots=True)
class AdapterRow:
    adapter_name: str
    servant: str
    endpoint: str
    protocol: str = "tars"


@dataclass(slots=True)
class ServerRow:
    """One t_server_conf row with its adapters, as the store returns it."""

    key: ServerKey
    setting_state: str = ACTIVE
    present_state: str = ACTIVE
    enable_set: bool = False
    set_name: str = ""
    set_area: str = ""
    set_group: str = ""
    grid_flag: str = "NORMAL"
    bak_flag: int = 0
    enable_group: bool = False
    metrics_port: int = 0
    last_heartbeat: float | None = None  # epoch seconds; None for rows the registry did not write
    adapters: list[AdapterRow] = field(default_factory=list)

    @property
    def set_id(self) -> str:
        return f"{self.set_name}.{self.set_area}.{self.set_group}" if self.enable_set else ""

    @property
    def active(self) -> bool:
        """Clients may call it: enabled, reported active, and not taken out of the flow (disableFlow)."""
        return self.setting_state == ACTIVE and self.present_state == ACTIVE and self.grid_flag != "NO_FLOW"


# ---------------------------------------------------------------------------------------------------------------
# Validation


def check_name(what: str, value: str, max_len: int) -> str:
    try:
        return untrusted.check_name(what, value, max_len)
    except untrusted.BadName as e:
        raise bad_request(str(e)) from None


def check_state(state: str, *, empty_is_active: bool = True) -> str:
    s = state.strip().lower()
    if not s and empty_is_active:
        return ACTIVE  # K8STARS: an empty state means active
    if s not in STATES:
        raise bad_request(f"unknown state {state!r} (valid: {', '.join(STATES)})")
    return s


def server_key(node: str, application: str, server: str) -> ServerKey:
    return ServerKey(
        check_name("application", application, LEN_APPLICATION),
        check_name("server", server, LEN_SERVER),
        check_name("nodeName", node, LEN_NODE),
    )


def split_set_id(set_id: str) -> tuple[str, str, str]:
    """``name.area.group`` -> parts; "" -> no set. The group may be ``*`` (serves every group of the area)."""
    if not set_id:
        return "", "", ""
    parts = set_id.split(".")
    if len(parts) != 3 or not all(parts):
        raise bad_request(f"setID {set_id!r} must be name.area.group")
    name, area, group = parts
    if "*" in (name, area):
        raise bad_request(f"setID {set_id!r}: only the group may be *")
    for what, value, n in (("set name", name, LEN_SET_NAME), ("set area", area, LEN_SET_AREA)):
        check_name(what, value, n)
    if group != "*":
        check_name("set group", group, LEN_SET_GROUP)
    return name, area, group


def check_endpoint(servant: str, text: str) -> str:
    """The endpoint string as it will be stored (whitespace collapsed), or a clear error."""
    normal = " ".join(text.split())
    if len(normal) > LEN_ENDPOINT:
        raise bad_request(f"{servant}: endpoint is longer than {LEN_ENDPOINT} characters")
    try:
        ep = Endpoint.parse(normal)
    except EndpointError as e:
        raise bad_request(f"{servant}: {e}") from None
    if not _TEXT.fullmatch(normal):
        raise bad_request(f"{servant}: endpoint {normal!r} holds more than printable ASCII")
    if ep.is_wildcard:
        raise bad_request(
            f"{servant}: endpoint {normal!r} listens on all interfaces; register an address clients reach"
        )
    if not 0 < ep.port < 65536:
        raise bad_request(f"{servant}: endpoint {normal!r} has no usable port")
    return normal


def check_adapter(key: ServerKey, spec: AdapterSpec) -> AdapterSpec:
    servant = check_name("servant", spec.servant, LEN_SERVANT)
    prefix = f"{key.application}.{key.server}."
    obj = servant[len(prefix) :] if servant.startswith(prefix) else ""
    if not obj or "." in obj:
        # a server may only announce its own objects: anything else could hijack another service's name
        raise bad_request(f"servant {servant!r} is not an object of {key.application}.{key.server} ({prefix}Obj)")
    if len(spec.protocol) > LEN_PROTOCOL or not _PROTOCOL.fullmatch(spec.protocol):
        raise bad_request(f"{servant}: bad protocol {spec.protocol!r}")
    for what, n in (("maxConns", spec.max_conns), ("threadNum", spec.threads), ("queueCap", spec.queue_cap),
                    ("queueTimeout", spec.queue_timeout)):  # fmt: skip
        if n < 0:
            raise bad_request(f"{servant}: {what} {n} is negative")
    return AdapterSpec(
        servant,
        check_endpoint(servant, spec.endpoint),
        spec.protocol or "tars",
        spec.max_conns,
        spec.threads,
        spec.queue_cap,
        spec.queue_timeout,
    )


def registration(
    node: str,
    application: str,
    server: str,
    *,
    state: str = ACTIVE,
    version: str = "",
    set_id: str = "",
    disable_flow: bool = False,
    adapters: list[AdapterSpec] | tuple[AdapterSpec, ...] = (),
) -> Registration:
    """A checked onStartup request; raises RegistryError(ERR_BAD_REQUEST) naming the first problem."""
    key = server_key(node, application, server)
    if len(adapters) > MAX_ADAPTERS:
        raise bad_request(f"{len(adapters)} adapters: at most {MAX_ADAPTERS} per server")
    if len(version) > LEN_VERSION:
        raise bad_request(f"Version is longer than {LEN_VERSION} characters")
    if not _TEXT.fullmatch(version):
        raise bad_request(f"Version {version!r} holds characters other than printable ASCII")
    checked = tuple(check_adapter(key, a) for a in adapters)
    seen: set[str] = set()
    for a in checked:
        if a.servant in seen:
            raise bad_request(f"servant {a.servant} is listed twice")
        seen.add(a.servant)
    name, area, group = split_set_id(set_id.strip())
    return Registration(key, check_state(state), version, name, area, group, disable_flow, checked)
