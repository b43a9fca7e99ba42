"""A tiny asyncio HTTP(S) client for the launcher's few calls (health checks, creating Nodes).

Kept dependency-free on purpose: the launcher must run before any test dependency is
importable. It speaks HTTP/1.0 so that Go servers answer without chunked encoding and close the
connection, which makes a response simply "everything until EOF".
"""

from __future__ import annotations

import asyncio
import json
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class HTTPError(Exception):
    """A response whose status the caller did not expect."""

    def __init__(self, method: str, url: str, response: Response) -> None:
        super().__init__(f"{method} {url}: HTTP {response.status}: {response.text[:500]}")
        self.response = response


async def request(
    method: str,
    url: str,
    *,
    ssl_context: ssl.SSLContext | None = None,
    body: Any = None,
    content_type: str = "application/json",
    timeout: float = 10.0,
) -> Response:
    """One request; `body` is JSON-encoded unless it is already bytes."""
    parts = urlsplit(url)
    if parts.hostname is None:
        raise ValueError(f"no host in {url!r}")
    secure = parts.scheme == "https"
    port = parts.port or (443 if secure else 80)
    payload = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    head = [f"{method} {target} HTTP/1.0", f"Host: {parts.netloc}", "Accept: application/json"]
    if payload is not None:
        head += [f"Content-Type: {content_type}", f"Content-Length: {len(payload)}"]
    raw = ("\r\n".join(head) + "\r\n\r\n").encode() + (payload or b"")
    return await asyncio.wait_for(_exchange(parts.hostname, port, ssl_context if secure else None, raw), timeout)


async def _exchange(host: str, port: int, ctx: ssl.SSLContext | None, raw: bytes) -> Response:
    reader, writer = await asyncio.open_connection(host, port, ssl=ctx)
    try:
        writer.write(raw)
        await writer.drain()
        data = await reader.read()
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except (OSError, ssl.SSLError):
            pass  # the peer closing first is the normal end of an HTTP/1.0 exchange
    return _parse(data)


def _parse(data: bytes) -> Response:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status_line = lines[0].split(" ", 2)
    if len(status_line) < 2 or not status_line[0].startswith("HTTP/"):
        raise ValueError(f"not an HTTP response: {lines[0]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = _dechunk(body)
    return Response(status=int(status_line[1]), headers=headers, body=body)


def _dechunk(body: bytes) -> bytes:
    """Servers should not chunk for HTTP/1.0 clients; decode anyway rather than return garbage."""
    out = bytearray()
    while body:
        size_line, _, body = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += body[:size]
        body = body[size + 2 :]
    return bytes(out)
