"""Endpoint strings (``tcp -h H -p P -t T``) and proxy strings (``App.Server.Obj@tcp -h ... -p ...:udp ...``)."""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass, replace

from k8stars.tars.protocol.endpointf import EndpointF

PROTOCOLS = {"tcp": 1, "udp": 0, "ssl": 2}  # -> EndpointF.istcp
_PROTO_BY_ISTCP = {v: k for k, v in PROTOCOLS.items()}
DEFAULT_TIMEOUT = 3000


class EndpointError(ValueError):
    """An endpoint or proxy string that cannot be parsed."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One address of a servant. ``timeout`` is the idle timeout of a listening adapter, in ms."""

    host: str
    port: int
    protocol: str = "tcp"
    timeout: int = DEFAULT_TIMEOUT
    grid: int = 0
    qos: int = 0
    weight: int = -1
    weight_type: int = 0
    auth_type: int = 0
    set_division: str = ""
    node_name: str = ""

    @classmethod
    def parse(cls, text: str) -> Endpoint:
        words = text.split()
        if not words or words[0].lower() not in PROTOCOLS:
            raise EndpointError(f"endpoint {text!r} must start with tcp, udp or ssl")
        opts: dict[str, str] = {}
        i = 1
        while i < len(words):
            w = words[i]
            if not w.startswith("-") or len(w) != 2:
                raise EndpointError(f"endpoint {text!r}: unexpected {w!r}")
            if i + 1 >= len(words):
                raise EndpointError(f"endpoint {text!r}: option {w} has no value")
            opts[w[1]] = words[i + 1]
            i += 2
        if "h" not in opts or "p" not in opts:
            raise EndpointError(f"endpoint {text!r} needs -h HOST and -p PORT")
        host = "0.0.0.0" if opts["h"] == "*" else opts["h"]
        try:
            port = int(opts["p"])
            numbers = {k: int(opts[k]) for k in "tgqwve" if k in opts}
        except ValueError as e:
            raise EndpointError(f"endpoint {text!r}: {e}") from None
        if not 0 <= port <= 65535:
            raise EndpointError(f"endpoint {text!r}: port {port} out of range")
        weight_type = numbers.get("v", 0)
        weight = numbers.get("w", 100 if weight_type else -1)
        if weight_type and weight > 100:
            weight = 100
        return cls(
            host=host,
            port=port,
            protocol=words[0].lower(),
            timeout=numbers.get("t", DEFAULT_TIMEOUT),
            grid=numbers.get("g", 0),
            qos=numbers.get("q", 0),
            weight=weight,
            weight_type=weight_type,
            auth_type=numbers.get("e", 0),
            set_division=opts.get("s", ""),
        )

    def __str__(self) -> str:
        parts = [f"{self.protocol} -h {self.host} -p {self.port} -t {self.timeout}"]
        for flag, value, default in (
            ("g", self.grid, 0),
            ("q", self.qos, 0),
            ("w", self.weight, -1),
            ("v", self.weight_type, 0),
            ("e", self.auth_type, 0),
        ):
            if value != default:
                parts.append(f"-{flag} {value}")
        return " ".join(parts)

    @property
    def is_tcp(self) -> bool:
        return self.protocol != "udp"

    def to_endpointf(self) -> EndpointF:
        return EndpointF(
            host=self.host,
            port=self.port,
            timeout=self.timeout,
            istcp=PROTOCOLS[self.protocol],
            grid=self.grid,
            qos=self.qos,
            weight=self.weight,
            weightType=self.weight_type,
            authType=self.auth_type,
            setId=self.set_division,
            nodeName=self.node_name,
        )

    @classmethod
    def from_endpointf(cls, ep: EndpointF) -> Endpoint:
        return cls(
            host=ep.host,
            port=ep.port,
            protocol=_PROTO_BY_ISTCP.get(ep.istcp, "tcp"),
            timeout=ep.timeout,
            grid=ep.grid,
            qos=ep.qos,
            weight=ep.weight,
            weight_type=ep.weightType,
            auth_type=ep.authType,
            set_division=ep.setId,
            node_name=ep.nodeName,
        )

    def with_host(self, host: str) -> Endpoint:
        return replace(self, host=host)


_SPLIT = re.compile(r"(?=\b(?:tcp|udp|ssl)\s)", re.IGNORECASE)


def parse_endpoints(text: str) -> list[Endpoint]:
    """Endpoints joined by ``:`` (split at each protocol keyword, as TarsCpp does)."""
    chunks = [c.strip().strip(":").strip() for c in _SPLIT.split(text)]
    eps = [Endpoint.parse(c) for c in chunks if c]
    if not eps:
        raise EndpointError(f"no endpoint in {text!r}")
    return eps


def parse_proxy(text: str) -> tuple[str, list[Endpoint]]:
    """``Obj@endpoints`` -> (object name, endpoints); a bare ``Obj`` has no endpoints (resolve it by locator).
    A ``#N`` suffix on the name (a distinct proxy instance in TarsCpp) is dropped."""
    name, sep, rest = text.strip().partition("@")
    name = name.split("#", 1)[0].strip()
    if not name:
        raise EndpointError(f"proxy {text!r} has no object name")
    return name, parse_endpoints(rest) if sep else []


def local_ip() -> str:
    """This host's address for endpoints and registrations when none is given. In a pod, Kubernetes writes the
    hostname with the pod IP into /etc/hosts, so this is the pod IP, found without touching the network."""
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return "127.0.0.1"
