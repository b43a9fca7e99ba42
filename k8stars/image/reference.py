"""Image references (``host[:port]/repo[:tag][@digest]``) and registry credentials from ``.dockerconfigjson``."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from k8stars.service.options import is_loopback as is_loopback_host

__all__ = ["Credentials", "ImageRef", "credentials_from_dockerconfig", "is_loopback"]

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
_REPO = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class ImageRef:
    registry: str  # host[:port], as written (docker.io for Docker Hub)
    repository: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, text: str) -> ImageRef:
        """``busybox`` -> docker.io/library/busybox:latest; ``127.0.0.1:5000/a/b:1`` -> that registry's a/b:1."""
        rest, digest = text.strip(), None
        if "@" in rest:
            rest, digest = rest.split("@", 1)
            if not _DIGEST.match(digest):
                raise ValueError(f"image {text!r}: bad digest {digest!r}")
        tag = None
        slash = rest.rfind("/")
        colon = rest.rfind(":")
        if colon > slash:
            rest, tag = rest[:colon], rest[colon + 1 :]
            if not _TAG.match(tag):
                raise ValueError(f"image {text!r}: bad tag {tag!r}")
        first, _, remainder = rest.partition("/")
        if remainder and ("." in first or ":" in first or first == "localhost"):
            registry, repo = first, remainder
        else:
            registry, repo = DOCKER_HUB, rest
            if "/" not in repo:
                repo = "library/" + repo
        if not _REPO.match(repo):
            raise ValueError(f"image {text!r}: bad repository {repo!r} (lower case letters, digits, . _ - and /)")
        if tag is None and digest is None:
            tag = "latest"
        return cls(registry, repo, tag, digest)

    @property
    def reference(self) -> str:
        """What the manifest is fetched by: the digest when pinned, else the tag."""
        return self.digest or self.tag or "latest"

    @property
    def api_host(self) -> str:
        return DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    def with_digest(self, digest: str) -> ImageRef:
        return ImageRef(self.registry, self.repository, None, digest)

    def __str__(self) -> str:
        out = f"{self.registry}/{self.repository}"
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out


def is_loopback(registry: str) -> bool:
    """A registry on this machine: spoken to over plain HTTP by default, as Docker and containerd do."""
    host = registry.rsplit(":", 1)[0] if registry.count(":") == 1 else registry
    return is_loopback_host(host.strip("[]"))


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str

    def __repr__(self) -> str:  # never in a log or a traceback
        return f"Credentials(username={self.username!r}, password=***)"

    def basic(self) -> str:
        return "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()


def _host_of(key: str) -> str:
    key = re.sub(r"^[a-z]+://", "", key.strip()).split("/", 1)[0]
    return DOCKER_HUB if key in ("index.docker.io", "registry-1.docker.io", "docker.io") else key


def credentials_from_dockerconfig(config: Mapping[str, Any] | bytes | str, registry: str) -> Credentials | None:
    """The credentials of ``registry`` in a ``.dockerconfigjson`` (``auths`` keyed by host, with ``auth`` =
    base64(user:pass) or ``username``/``password``); None when it names no such host. Raises ValueError on a
    malformed config."""
    if not isinstance(config, Mapping):
        try:
            config = json.loads(config)
        except ValueError as e:
            raise ValueError(f"the .dockerconfigjson is not JSON: {e}") from None
    auths = config.get("auths") if isinstance(config, Mapping) else None
    if not isinstance(auths, Mapping):
        raise ValueError('the .dockerconfigjson has no "auths" object')
    want = _host_of(registry)
    for key, entry in auths.items():
        if _host_of(str(key)) != want or not isinstance(entry, Mapping):
            continue
        if entry.get("auth"):
            try:
                user, sep, password = base64.b64decode(str(entry["auth"]), validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                raise ValueError(f"the .dockerconfigjson entry of {key}: auth is not base64 of user:password") from None
            if not sep:
                raise ValueError(f"the .dockerconfigjson entry of {key}: auth is not base64 of user:password")
            return Credentials(user, password)
        if entry.get("username") is not None:
            return Credentials(str(entry["username"]), str(entry.get("password", "")))
    return None
