"""The classic TARS configuration file (TC_Config): nested ``<domain>`` blocks of ``key=value`` lines.

Paths are written ``/tars/application/server<app>`` (TarsCpp/TarsGo style) or ``tars.application.server.app``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

_ESCAPES = {"\\": "\\", "r": "\r", "n": "\n", "t": "\t", "=": "="}


class ConfigError(ValueError):
    """A malformed configuration file; the message names the line."""


@dataclass
class Domain:
    name: str
    params: dict[str, str] = field(default_factory=dict)
    domains: dict[str, Domain] = field(default_factory=dict)

    def child(self, name: str) -> Domain | None:
        return self.domains.get(name)

    def render(self, indent: int = 0) -> str:
        pad = "  " * indent
        lines = [f"{pad}<{self.name}>"]
        for k, v in self.params.items():
            lines.append(f"{pad}  {_escape(k)}={_escape(v)}" if v != "" else f"{pad}  {_escape(k)}")
        for d in self.domains.values():
            lines.append(d.render(indent + 1))
        lines.append(f"{pad}</{self.name}>")
        return "\n".join(lines)


def _escape(s: str) -> str:
    return s.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t").replace("=", "\\=")


def _unescape(s: str, lineno: int) -> str:
    if "\\" not in s:
        return s
    out, i = [], 0
    while i < len(s):
        c = s[i]
        if c == "\\":
            if i + 1 >= len(s) or s[i + 1] not in _ESCAPES:
                raise ConfigError(f"line {lineno}: bad escape in {s!r}")
            out.append(_ESCAPES[s[i + 1]])
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _split_param(line: str, lineno: int) -> tuple[str, str]:
    i = 0
    while i < len(line):
        if line[i] == "\\":
            i += 2
            continue
        if line[i] == "=":
            return _unescape(line[:i].strip(), lineno), _unescape(line[i + 1 :].strip(), lineno)
        i += 1
    return _unescape(line.strip(), lineno), ""


class TarsConfig:
    """A parsed configuration. Later duplicate keys win; domains with the same name merge."""

    def __init__(self, root: Domain) -> None:
        self.root = root

    @classmethod
    def parse(cls, text: str) -> TarsConfig:
        root = Domain("")
        stack = [root]
        for lineno, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("</"):
                if not line.endswith(">"):
                    raise ConfigError(f"line {lineno}: bad closing tag {line!r}")
                name = line[2:-1].strip()
                if len(stack) == 1 or stack[-1].name != name:
                    expected = stack[-1].name if len(stack) > 1 else "no open domain"
                    raise ConfigError(f"line {lineno}: </{name}> does not match <{expected}>")
                stack.pop()
            elif line.startswith("<"):
                if not line.endswith(">") or len(line) < 3:
                    raise ConfigError(f"line {lineno}: bad domain tag {line!r}")
                name = line[1:-1].strip()
                parent = stack[-1]
                stack.append(parent.domains.setdefault(name, Domain(name)))
            else:
                key, value = _split_param(line, lineno)
                stack[-1].params[key] = value
        if len(stack) > 1:
            raise ConfigError(f"<{stack[-1].name}> is never closed")
        return cls(root)

    @classmethod
    def load(cls, path: str | Path) -> TarsConfig:
        return cls.parse(Path(path).read_text(encoding="utf-8"))

    def domain(self, path: str) -> Domain | None:
        """``/tars/application/server`` (or ``tars.application.server``)."""
        d: Domain | None = self.root
        for part in _path_parts(path):
            d = d.child(part) if d else None
        return d

    def get(self, path: str, default: str = "") -> str:
        """``/tars/application/server<app>`` or ``tars.application.server.app``."""
        if "<" in path:
            dom, _, key = path.partition("<")
            key = key.rstrip(">")
        else:
            dom, _, key = path.rpartition(".")
        d = self.domain(dom)
        return d.params.get(key, default) if d else default

    def render(self) -> str:
        return "\n".join(d.render() for d in self.root.domains.values()) + "\n"


def _path_parts(path: str) -> list[str]:
    path = path.strip()
    if path.startswith("/"):
        return [p for p in path.split("/") if p]
    # dotted form: domain names may contain dots (adapter names), so this form cannot address those
    return [p for p in path.split(".") if p]
