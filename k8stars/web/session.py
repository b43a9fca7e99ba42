"""The console's session: a signed cookie (HMAC-SHA256, the key from a Secret or a file) carrying the user, a CSRF
token and a fingerprint of the account's password hash, so a password change ends every other session."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from k8stars.kube.client import Kube, Resource, is_status

SECRET = Resource("", "v1", "secrets", "Secret")
COOKIE = "k8stars_web"
KEY_FIELD = "session-key"
MAX_AGE = 12 * 3600  # seconds a session lasts after its login


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Session:
    """What the cookie says: ``user`` (empty before login), ``csrf`` (the token every POST must carry), ``pw`` (the
    fingerprint of the password hash at login), ``flash`` (a message for the next page), ``issued`` (login time)."""

    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    user: str = ""
    pw: str = ""
    issued: float = field(default_factory=time.time)
    flash: list[str] = field(default_factory=list)  # [kind, text] or empty
    changed: bool = True  # write the cookie back

    def say(self, kind: str, text: str) -> None:
        self.flash = [kind, text[:300]]  # bounded: the cookie must stay small
        self.changed = True

    def take_flash(self) -> list[str]:
        flash, self.flash = self.flash, []
        if flash:
            self.changed = True
        return flash

    def login(self, user: str, pw: str) -> None:
        """A new session (and CSRF token) at login: a token seen before login is worth nothing after it."""
        self.user, self.pw, self.issued = user, pw, time.time()
        self.csrf = secrets.token_urlsafe(24)
        self.changed = True


class Signer:
    """Signs and checks session cookies with one key."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("the session key must have at least 32 bytes")
        self._key = key

    def _mac(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())

    def fingerprint(self, password_hash: str) -> str:
        """A keyed digest of the stored hash: the cookie never carries the hash itself."""
        return self._mac("pw:" + password_hash)[:16]

    def dump(self, s: Session) -> str:
        body: dict[str, Any] = {"c": s.csrf, "u": s.user, "p": s.pw, "i": int(s.issued), "f": s.flash}
        payload = _b64(json.dumps(body, separators=(",", ":")).encode())
        return f"{payload}.{self._mac(payload)}"

    def load(self, cookie: str | None) -> Session | None:
        """The session of a valid, unexpired cookie; None for anything else."""
        if not cookie or "." not in cookie:
            return None
        payload, mac = cookie.rsplit(".", 1)
        if not hmac.compare_digest(mac, self._mac(payload)):
            return None
        try:
            body = json.loads(_unb64(payload))
            s = Session(csrf=str(body["c"]), user=str(body["u"]), pw=str(body["p"]), issued=float(body["i"]),
                        flash=[str(x) for x in body.get("f") or []][:2], changed=False)  # fmt: skip
        except (ValueError, KeyError, TypeError, binascii.Error):
            return None
        if time.time() - s.issued > MAX_AGE:
            return None
        return s


def key_from_file(path: Path) -> bytes:
    """The key in ``path``; a new random one written there (mode 0600) when the file does not exist."""
    try:
        return _unb64(path.read_text().strip())
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(_b64(key) + "\n")
    return key


async def key_from_secret(kube: Kube, namespace: str, name: str) -> bytes:
    """The key in Secret ``name`` (field ``session-key``), created with a random key when missing (every replica of
    the console then signs with the same key; the Helm chart creates it beforehand)."""
    for _ in range(3):  # bounded: a concurrent creator wins, we read what it wrote
        obj = await kube.get(SECRET, namespace, name)
        raw = ((obj or {}).get("data") or {}).get(KEY_FIELD)
        if raw:
            return base64.b64decode(raw)
        if obj is not None:
            raise ValueError(f"Secret {name} has no {KEY_FIELD}")
        key = secrets.token_bytes(32)
        body = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                "metadata": {"name": name, "labels": {"app.kubernetes.io/name": "tars-web"}},
                "data": {KEY_FIELD: base64.b64encode(key).decode()}}  # fmt: skip
        try:
            await kube.create(SECRET, namespace, body)
            return key
        except Exception as e:
            if not is_status(e, 409):
                raise
    raise RuntimeError(f"Secret {name}: could not read or create the session key")
