"""An asynchronous client of the OCI distribution API (Docker Registry v2): blobs (exists, cross-repository mount,
upload, download with the digest checked) and manifests (get, put), with Basic or Bearer authentication from
credentials held in memory only, and retries on 5xx answers and connection errors."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import re
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urljoin

import aiohttp
from multidict import CIMultiDictProxy

from .layer import Blob, sha256_digest
from .reference import Credentials, is_loopback

__all__ = [
    "MANIFEST_TYPES",
    "AuthError",
    "Manifest",
    "RegistryClient",
    "RegistryError",
    "RegistryUnavailable",
]

log = logging.getLogger("k8stars.image")

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFEST_TYPES = (OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST)
RETRIES = 4  # attempts after the first, on 5xx, 429 and connection errors
BACKOFF = (0.2, 0.5, 1.0, 2.0)
MAX_MANIFEST = 4 << 20  # a manifest or config bigger than this is not one
_CHUNK = 1 << 20


class RegistryError(Exception):
    """A registry refused a call; the message names the registry, the call and the registry's own error."""

    def __init__(self, message: str, status: int = 0, code: str = "") -> None:
        super().__init__(message)
        self.status, self.code = status, code


class AuthError(RegistryError):
    """Missing or refused credentials (401/403)."""


class RegistryUnavailable(RegistryError):
    """The registry could not be reached (or kept failing with 5xx) after the retries."""


@dataclass(frozen=True)
class Manifest:
    media_type: str
    data: bytes  # the exact bytes: their sha256 is the manifest's digest
    digest: str

    def json(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.data)
        return value


@dataclass
class _Reply:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes


def _errors(body: bytes) -> tuple[str, str]:
    """The registry's error code and message from its JSON body, else the text."""
    try:
        errs = json.loads(body).get("errors") or []
        first = errs[0]
        return str(first.get("code", "")), str(first.get("message", ""))
    except (ValueError, AttributeError, IndexError, TypeError):
        return "", body[:200].decode(errors="replace").strip()


_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')


class RegistryClient:
    """One registry (``host[:port]``). ``plain_http`` None: plain HTTP for a loopback registry, else HTTPS."""

    def __init__(
        self,
        registry: str,
        *,
        credentials: Credentials | None = None,
        plain_http: bool | None = None,
        session: aiohttp.ClientSession | None = None,
        timeout: float = 300.0,
        retries: int = RETRIES,
    ) -> None:
        self.registry = registry
        self.credentials = credentials
        scheme = "http" if (is_loopback(registry) if plain_http is None else plain_http) else "https"
        self.base = f"{scheme}://{registry}"
        self._session = session
        self._own_session = session is None
        self._timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=10)
        self.retries = retries
        self._basic = False  # the registry asked for Basic: send it from now on
        self._tokens: dict[str, str] = {}  # repository -> the last Bearer token that worked for it

    async def __aenter__(self) -> RegistryClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
        self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    # -- transport ---------------------------------------------------------------------------------------------

    def _auth_header(self, repo: str) -> dict[str, str]:
        if repo in self._tokens:
            return {"Authorization": "Bearer " + self._tokens[repo]}
        if self._basic and self.credentials is not None:
            return {"Authorization": self.credentials.basic()}
        return {}

    async def _request(
        self,
        method: str,
        url: str,
        repo: str,
        *,
        headers: dict[str, str] | None = None,
        body: bytes | Path | None = None,
        sink: Callable[[aiohttp.ClientResponse], Awaitable[None]] | None = None,
        retry: bool = True,
    ) -> _Reply:
        """One call, authenticated on demand (one more try after a 401 challenge) and retried on 5xx, 429 and
        connection errors. With ``sink``, a 200 answer's body goes to it instead of into the reply."""
        url = urljoin(self.base + "/", url)  # a path, or a Location (absolute or relative) the registry gave
        authed = False
        attempt = 0
        while True:
            hdrs = {**(headers or {}), **self._auth_header(repo)}
            try:
                payload: Any = body.open("rb") if isinstance(body, Path) else body
                try:
                    async with self.session.request(method, url, headers=hdrs, data=payload) as resp:
                        if resp.status == 200 and sink is not None:
                            await sink(resp)
                            reply = _Reply(resp.status, resp.headers, b"")
                        else:
                            reply = _Reply(resp.status, resp.headers, await resp.read())
                finally:
                    if isinstance(body, Path):
                        payload.close()
            except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError) as e:
                if not retry or attempt >= self.retries:
                    why = str(e) or type(e).__name__
                    raise RegistryUnavailable(f"registry {self.registry}: {method} {url}: {why}") from None
                await asyncio.sleep(BACKOFF[min(attempt, len(BACKOFF) - 1)])
                attempt += 1
                continue
            if reply.status == 401 and not authed:
                authed = True
                await self._authenticate(reply, repo)
                continue
            if reply.status in (401, 403):
                code, msg = _errors(reply.body)
                code = code or ("UNAUTHORIZED" if reply.status == 401 else "DENIED")  # a HEAD answer has no body
                who = "the credentials were refused" if self.credentials else "it needs credentials and none were given"
                raise AuthError(f"registry {self.registry} ({repo}): {who}: {reply.status} {code} {msg}".rstrip(),
                                reply.status, code)  # fmt: skip
            if (reply.status >= 500 or reply.status == 429) and retry and attempt < self.retries:
                await asyncio.sleep(BACKOFF[min(attempt, len(BACKOFF) - 1)])
                attempt += 1
                continue
            return reply

    async def _authenticate(self, reply: _Reply, repo: str) -> None:
        challenge = reply.headers.get("WWW-Authenticate", "")
        scheme = challenge.split(" ", 1)[0].lower()
        if scheme == "basic":
            if self.credentials is None:
                raise AuthError(f"registry {self.registry} ({repo}): it needs credentials and none were given", 401)
            self._basic = True
            return
        if scheme != "bearer":
            raise AuthError(f"registry {self.registry}: unsupported authentication {challenge!r}", 401)
        params = dict(_CHALLENGE.findall(challenge))
        realm = params.get("realm")
        if not realm:
            raise AuthError(f"registry {self.registry}: a Bearer challenge without a realm", 401)
        query: list[tuple[str, str]] = []
        if params.get("service"):
            query.append(("service", params["service"]))
        for scope in (params.get("scope") or f"repository:{repo}:pull,push").split(" "):
            query.append(("scope", scope))
        headers = {"Authorization": self.credentials.basic()} if self.credentials else {}
        try:
            async with self.session.get(realm + "?" + urlencode(query), headers=headers) as resp:
                body = await resp.read()
                if resp.status != 200:
                    code, msg = _errors(body)
                    raise AuthError(f"registry {self.registry}: the token service refused: {resp.status} {msg}",
                                    resp.status, code)  # fmt: skip
        except aiohttp.ClientError as e:
            raise RegistryUnavailable(f"registry {self.registry}: token service {realm}: {e}") from None
        try:
            data = json.loads(body)
            token = str(data.get("token") or data.get("access_token") or "")
        except (ValueError, AttributeError):
            token = ""
        if not token:
            raise AuthError(f"registry {self.registry}: the token service gave no token", 401)
        self._tokens[repo] = token

    def _fail(self, what: str, reply: _Reply) -> RegistryError:
        code, msg = _errors(reply.body)
        return RegistryError(f"registry {self.registry}: {what}: {reply.status} {code} {msg}".rstrip(), reply.status,
                             code)  # fmt: skip

    # -- blobs -------------------------------------------------------------------------------------------------

    async def blob_exists(self, repo: str, digest: str) -> bool:
        reply = await self._request("HEAD", f"/v2/{repo}/blobs/{digest}", repo)
        if reply.status == 200:
            return True
        if reply.status == 404:
            return False
        raise self._fail(f"HEAD blob {digest} in {repo}", reply)

    async def mount_blob(self, repo: str, digest: str, from_repo: str) -> bool:
        """Mount a blob of another repository of this registry; False when the registry would not (then nothing
        was started)."""
        query = urlencode({"mount": digest, "from": from_repo})
        reply = await self._request("POST", f"/v2/{repo}/blobs/uploads/?{query}", repo)
        if reply.status == 201:
            return True
        if reply.status == 202:  # an upload was opened instead: close it
            location = reply.headers.get("Location")
            if location:
                await self._request("DELETE", location, repo, retry=False)
            return False
        raise self._fail(f"mount {digest} from {from_repo} into {repo}", reply)

    async def push_blob(self, repo: str, blob: Blob, *, mount_from: str | None = None) -> bool:
        """Make the blob present in ``repo``: already there, mounted, or uploaded. True when uploaded."""
        if await self.blob_exists(repo, blob.digest):
            return False
        if mount_from and mount_from != repo and await self.mount_blob(repo, blob.digest, mount_from):
            return False
        attempt = 0
        while True:  # an upload session dies with a failed PUT: a retry starts a new one
            try:
                await self._upload(repo, blob)
                return True
            except RegistryError as e:
                if isinstance(e, AuthError) or not (e.status >= 500 or isinstance(e, RegistryUnavailable)):
                    raise
                if attempt >= self.retries:
                    raise
                await asyncio.sleep(BACKOFF[min(attempt, len(BACKOFF) - 1)])
                attempt += 1

    async def _upload(self, repo: str, blob: Blob) -> None:
        reply = await self._request("POST", f"/v2/{repo}/blobs/uploads/", repo)
        if reply.status != 202 or not reply.headers.get("Location"):
            raise self._fail(f"start upload in {repo}", reply)
        location = reply.headers["Location"]
        url = urljoin(self.base + "/", location)
        url += ("&" if "?" in url else "?") + urlencode({"digest": blob.digest})
        body: bytes | Path = blob.data if blob.data is not None else blob.path  # type: ignore[assignment]
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(blob.size)}
        reply = await self._request("PUT", url, repo, headers=headers, body=body, retry=False)
        if reply.status != 201:
            raise self._fail(f"upload {blob.digest} to {repo}", reply)
        got = reply.headers.get("Docker-Content-Digest")
        if got and got != blob.digest:
            raise RegistryError(f"registry {self.registry}: stored {blob.digest} as {got}")

    async def get_blob(self, repo: str, digest: str, *, limit: int = MAX_MANIFEST) -> bytes:
        """A small blob (a config), its digest checked."""
        chunks: list[bytes] = []

        async def sink(resp: aiohttp.ClientResponse) -> None:
            size = 0
            async for chunk in resp.content.iter_chunked(_CHUNK):
                size += len(chunk)
                if size > limit:
                    raise RegistryError(f"registry {self.registry}: blob {digest} is over {limit} bytes")
                chunks.append(chunk)

        reply = await self._request("GET", f"/v2/{repo}/blobs/{digest}", repo, sink=sink)
        if reply.status != 200:
            raise self._fail(f"GET blob {digest} from {repo}", reply)
        data = b"".join(chunks)
        if sha256_digest(data) != digest:
            raise RegistryError(f"registry {self.registry}: blob {digest} of {repo} does not match its digest")
        return data

    async def download_blob(self, repo: str, digest: str, dest: Path) -> Blob:
        """A blob into a file, its digest checked before the file is named ``dest``."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=dest.parent, suffix=".part")  # builds may fetch the same blob at once
        os.close(fd)
        part = Path(name)

        async def sink(resp: aiohttp.ClientResponse) -> None:
            h = hashlib.sha256()
            with part.open("wb") as f:
                async for chunk in resp.content.iter_chunked(_CHUNK):
                    h.update(chunk)
                    await asyncio.to_thread(f.write, chunk)
            if "sha256:" + h.hexdigest() != digest:
                part.unlink(missing_ok=True)
                raise RegistryError(f"registry {self.registry}: blob {digest} of {repo} does not match its digest")

        try:
            reply = await self._request("GET", f"/v2/{repo}/blobs/{digest}", repo, sink=sink)
            if reply.status != 200:
                raise self._fail(f"GET blob {digest} from {repo}", reply)
            part.replace(dest)
        finally:
            part.unlink(missing_ok=True)
        return Blob(digest=digest, size=dest.stat().st_size, path=dest)

    # -- manifests ---------------------------------------------------------------------------------------------

    async def get_manifest(self, repo: str, reference: str) -> Manifest:
        """A manifest or index by tag or digest; a digest reference is checked against the bytes."""
        reply = await self._request("GET", f"/v2/{repo}/manifests/{reference}", repo,
                                    headers={"Accept": ", ".join(MANIFEST_TYPES)})  # fmt: skip
        if reply.status == 404:
            code, msg = _errors(reply.body)
            raise RegistryError(f"registry {self.registry}: no image {repo}:{reference} ({code or msg})", 404, code)
        if reply.status != 200:
            raise self._fail(f"GET manifest {repo}:{reference}", reply)
        if len(reply.body) > MAX_MANIFEST:
            raise RegistryError(f"registry {self.registry}: manifest {repo}:{reference} is too big")
        digest = sha256_digest(reply.body)
        if reference.startswith("sha256:") and digest != reference:
            raise RegistryError(f"registry {self.registry}: manifest {repo}@{reference} does not match its digest")
        media_type = reply.headers.get("Content-Type", "").split(";")[0].strip()
        try:
            declared = json.loads(reply.body).get("mediaType")
        except (ValueError, AttributeError):
            raise RegistryError(f"registry {self.registry}: manifest {repo}:{reference} is not JSON") from None
        media_type = declared or media_type
        if media_type not in MANIFEST_TYPES:
            raise RegistryError(f"registry {self.registry}: {repo}:{reference} has an unsupported manifest type "
                                f"{media_type!r} (OCI or Docker v2 schema 2 expected)")  # fmt: skip
        return Manifest(media_type, reply.body, digest)

    async def put_manifest(self, repo: str, reference: str, media_type: str, data: bytes) -> str:
        reply = await self._request("PUT", f"/v2/{repo}/manifests/{reference}", repo,
                                    headers={"Content-Type": media_type}, body=data)  # fmt: skip
        if reply.status not in (200, 201):
            raise self._fail(f"PUT manifest {repo}:{reference}", reply)
        digest = sha256_digest(data)
        got = reply.headers.get("Docker-Content-Digest")
        if got and got != digest:
            raise RegistryError(f"registry {self.registry}: stored manifest {digest} as {got}")
        return digest
