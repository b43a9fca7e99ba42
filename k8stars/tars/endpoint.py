"""Endpoint strings (``tcp -h H -p P -t T``) and proxy strings (``App.Server.Obj@tcp -h ... -p ...:udp ...``)."""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass, replace

from k8stars.tars.protocol.endpointf import EndpointF

PROTOCOLS = {"tcp": 1, "udp": 0, "ssl": 2}  # -> EndpointF.istcp
_PROTO_BY_ISTCP = {v: k for k, v in PROTOCOLS.items()}
DEFAULT_TIMEOUT = 3000
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1  # EndpointF's fields are TARS ints

# ASCII decimal only: Python's int() also takes "2_0001" and "\u0662\u0660\u0660\u0660\u0661" (Arabic digits),
# which no TARS peer reads, and a leading zero is octal to TarsGo (base 0) but decimal to TarsCpp
_PORT = re.compile(r"0|[1-9][0-9]{0,4}")
_INT = re.compile(r"-?(?:0|[1-9][0-9]{0,9})")
_LABEL = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")
_NUMBER_LABEL = re.compile(r"[0-9]+|0[xX][0-9A-Fa-f]*")  # inet_aton reads "0", "127.1", "0x7f.1" as IPv4
_OPTION_NAMES = {"t": "timeout", "g": "grid", "q": "qos", "w": "weight", "v": "weightType", "e": "authType"}


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
        """An endpoint string, read as strictly as the strictest TARS peer: what one peer accepts, every peer must
        read the same way (a registered endpoint goes to all of them)."""
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
        if not is_host(host):
            raise EndpointError(f"endpoint {text!r}: -h {host!r} is not an IP address or a host name")
        if not _PORT.fullmatch(opts["p"]) or int(opts["p"]) > 65535:
            raise EndpointError(f"endpoint {text!r}: -p {opts['p']!r} is not a port (0..65535, ASCII digits)")
        numbers: dict[str, int] = {}
        for flag in "tgqwve":
            if flag in opts:
                numbers[flag] = _number(text, flag, opts[flag])
        weight_type = numbers.get("v", 0)
        weight = numbers.get("w", 100 if weight_type else -1)
        if weight_type and weight > 100:
            weight = 100
        return cls(
            host=host,
            port=int(opts["p"]),
            protocol=words[0].lower(),
            timeout=numbers.get("t", DEFAULT_TIMEOUT),
            grid=numbers.get("g", 0),
            qos=numbers.get("q", 0),
            weight=weight,
            weight_type=weight_type,
            auth_type=numbers.get("e", 0),
            set_division=opts.get("s", ""),
        )

    @property
    def is_wildcard(self) -> bool:
        """Listens on every interface (``*``, 0.0.0.0, ``::`` in any spelling): no address a client could call."""
        try:
            return ipaddress.ip_address(self.host).is_unspecified
        except ValueError:
            return False

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


def _number(text: str, flag: str, value: str) -> int:
    lowest = 0 if flag == "t" else INT32_MIN  # a negative timeout means nothing to any peer
    n = int(value) if _INT.fullmatch(value) else None
    if n is None or not lowest <= n <= INT32_MAX:
        raise EndpointError(
            f"endpoint {text!r}: -{flag} {value!r} ({_OPTION_NAMES[flag]}) is not an integer in {lowest}..{INT32_MAX}"
        )
    return n


def is_host(host: str) -> bool:
    """An IP address, or a DNS name (letters, digits, ``-`` and ``_`` in dot-separated labels) that a resolver
    cannot mistake for a number (``0``, ``127.1``, ``0x7f000001`` are IPv4 addresses to inet_aton)."""
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    name = host[:-1] if host.endswith(".") else host  # a fully qualified name
    labels = name.split(".")
    if len(name) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        return False
    return not all(_NUMBER_LABEL.fullmatch(label) for label in labels)


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
