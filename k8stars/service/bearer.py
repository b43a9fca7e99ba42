"""A bearer token kept in a file, as a mounted Kubernetes Secret holds it: how a service's HTTP side admits only its
one client (``k8stars log --http-token-file``, asked by ``k8stars web --log-token-file``). The file is read again
when it changes (the kubelet swaps a rotated Secret in as a new file), and tokens are compared in constant time."""

from __future__ import annotations

import hmac
import logging
import os
from collections.abc import Collection
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from k8stars.tars.untrusted import Throttle

log = logging.getLogger("k8stars.service")


class TokenFile:
    """The token in ``path`` (its content, stripped), named ``option`` in every error."""

    def __init__(self, path: str | Path, option: str) -> None:
        self.path, self.option = Path(path), option
        self._seen: tuple[int, ...] = ()
        self._token = ""

    def read(self) -> str:
        """The token, read again when the file is another or was written since; OSError when it cannot be read,
        ValueError when it is empty or not UTF-8 (the message names the option and the file)."""
        try:
            st = os.stat(self.path)
            seen = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
            if seen != self._seen:
                token = self.path.read_bytes().decode("utf-8").strip()
                if not token:
                    raise ValueError("the file is empty")
                self._token, self._seen = token, seen
        except OSError as e:
            raise OSError(e.errno, f"{self.option} {self.path}: {e.strerror or e}") from None
        except ValueError as e:
            raise ValueError(f"{self.option} {self.path}: {e}") from None
        return self._token

    def headers(self) -> dict[str, str]:
        """What a client sends: ``Authorization: Bearer <token>``."""
        return {"Authorization": f"Bearer {self.read()}"}

    def refusal(self, authorization: str) -> str:
        """Why a request with this ``Authorization`` header may not pass ("" when it may)."""
        scheme, _, given = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            return f"this needs 'Authorization: Bearer <token>', the token of {self.option}"
        if not hmac.compare_digest(given.strip().encode(), self.read().encode()):
            return f"the bearer token is not the one of {self.option}"
        return ""


def bearer_middleware(token: TokenFile, open_paths: Collection[str] = ("/healthz", "/metrics")) -> Middleware:
    """Every request but those routed to ``open_paths`` carries the token, else it is answered 401 (503 when the
    token file cannot be read) with ``{"error": why}`` before its handler runs. Unrouted paths need it too."""
    warnings = Throttle(log)

    @web.middleware
    async def bearer(request: web.Request, handler: Handler) -> web.StreamResponse:
        resource = request.match_info.route.resource
        if resource is not None and resource.canonical in open_paths:
            return await handler(request)
        try:
            why = token.refusal(request.headers.get("Authorization", ""))
        except (OSError, ValueError) as e:  # fail closed: a token that cannot be read admits nobody
            warnings.emit("token", "%s: every request refused", e)
            return web.json_response({"error": "the service's token cannot be read (see its log)"}, status=503)
        if why:
            return web.json_response({"error": why}, status=401, headers={"WWW-Authenticate": "Bearer"})
        return await handler(request)

    return bearer
