"""A thin, dict-based Kubernetes API client on top of kubernetes_asyncio's transport.

Objects stay plain JSON dicts (no model round trips, every kind alike). Writes are server-side apply (one field
manager, `force`) or merge patches; nothing sends a resourceVersion it read, so no write can fail with "the object
has been modified".
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.rest import ApiException

from .meta import FIELD_MANAGER

Obj = dict[str, Any]

__all__ = ["ApiException", "Kube", "Obj", "Resource", "is_status"]

_JSON = "application/json"
TOO_MANY_RETRIES = 10


def _retry_after(exc: ApiException) -> float:
    try:
        headers: Any = exc.headers or {}
        return min(5.0, max(0.1, float(headers.get("Retry-After", 1))))
    except (TypeError, ValueError):
        return 1.0


@dataclass(frozen=True)
class Resource:
    """An API resource: where its objects live."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None = None, name: str | None = None, sub: str | None = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace is not None:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        if name is not None:
            base += f"/{name}"
        if sub is not None:
            base += f"/{sub}"
        return base


def is_status(exc: BaseException, *codes: int) -> bool:
    return isinstance(exc, ApiException) and exc.status in codes


class Kube:
    """Raw API calls with JSON bodies; one instance per event loop."""

    def __init__(
        self, api: client.ApiClient, field_manager: str = FIELD_MANAGER, headers: Mapping[str, str] | None = None
    ) -> None:
        self.api = api
        self.field_manager = field_manager
        self.headers = dict(headers or {})  # sent with every request (e.g. Impersonate-User in tests)
        self.fence: Callable[[], None] | None = None  # called before every write; raises to refuse it

    def fenced(self, check: Callable[[], None]) -> Kube:
        """The same connection, with `check()` called before every write (a leader's writes stop at its deadline)."""
        other = Kube(self.api, self.field_manager, self.headers)
        other.fence = check
        return other

    @classmethod
    async def connect(cls, kubeconfig: str | None = None, field_manager: str = FIELD_MANAGER) -> Kube:
        """From a kubeconfig file, else $KUBECONFIG / ~/.kube/config, else the in-cluster service account."""
        if kubeconfig is None:
            try:
                api = await config.new_client_from_config()
            except config.ConfigException:
                config.load_incluster_config()  # type: ignore[no-untyped-call]
                api = client.ApiClient()
        else:
            api = await config.new_client_from_config(config_file=kubeconfig)
        return cls(api, field_manager)

    async def close(self) -> None:
        await self.api.close()

    async def __aenter__(self) -> Kube:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str | int | bool] | None = None,
        body: Any = None,
        content_type: str = _JSON,
        timeout: float | None = 30.0,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        params = [(k, str(v).lower() if isinstance(v, bool) else v) for k, v in (query or {}).items()]
        for attempt in range(TOO_MANY_RETRIES + 1):
            if self.fence is not None and method != "GET":
                self.fence()
            try:
                return await self.api.call_api(
                    path,
                    method,
                    query_params=params,
                    header_params={"Accept": _JSON, "Content-Type": content_type, **self.headers, **(headers or {})},
                    body=body,
                    auth_settings=["BearerToken"],
                    response_types_map={200: "object", 201: "object", 202: "object"},
                    _return_http_data_only=True,
                    _request_timeout=timeout,
                )
            except ApiException as exc:
                # 429: API priority and fairness, or a resource whose storage is (re)initializing (just after its
                # CRD changed). The apiserver says when to come back.
                if exc.status != 429 or attempt == TOO_MANY_RETRIES:
                    raise
                await asyncio.sleep(_retry_after(exc))
        raise AssertionError("unreachable")

    async def text(self, path: str, query: Mapping[str, str | int | bool] | None = None, timeout: float = 30.0) -> str:
        """A GET answered in plain text (a pod's log), as sent: never parsed as JSON."""
        params = [(k, str(v).lower() if isinstance(v, bool) else v) for k, v in (query or {}).items()]
        headers = {"Accept": "*/*", **self.headers}
        response = await self.api.call_api(path, "GET", query_params=params, header_params=headers,
                                           auth_settings=["BearerToken"], _preload_content=False,
                                           _return_http_data_only=True, _request_timeout=timeout)  # fmt: skip
        try:
            text = str(await response.text(errors="replace"))
        finally:
            response.release()
        if not 200 <= response.status <= 299:
            exc = ApiException(status=response.status, reason=response.reason)
            exc.body = text.encode()
            raise exc
        return text

    async def get(self, res: Resource, namespace: str | None, name: str) -> Obj | None:
        try:
            result: Obj = await self.request("GET", res.path(namespace, name))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return result

    async def list(self, res: Resource, namespace: str | None = None, *, selector: str | None = None) -> Obj:
        query: dict[str, str | int | bool] = {}
        if selector:
            query["labelSelector"] = selector
        result: Obj = await self.request("GET", res.path(namespace), query=query)
        return result

    async def create(self, res: Resource, namespace: str | None, body: Obj) -> Obj:
        result: Obj = await self.request("POST", res.path(namespace), body=body)
        return result

    async def apply(self, res: Resource, namespace: str | None, body: Obj, *, sub: str | None = None) -> Obj:
        """Server-side apply of `body` (which names the object) by our field manager, taking over conflicts."""
        name = body["metadata"]["name"]
        return await self._patch(res, namespace, name, sub, body, "application/apply-patch+yaml", force=True)

    async def merge_patch(
        self, res: Resource, namespace: str | None, name: str, patch: Obj, *, sub: str | None = None
    ) -> Obj:
        return await self._patch(res, namespace, name, sub, patch, "application/merge-patch+json")

    async def json_patch(
        self, res: Resource, namespace: str | None, name: str, patch: Sequence[Obj], *, sub: str | None = None
    ) -> Obj:
        """RFC 6902 patch; a `test` operation on /metadata/resourceVersion makes it conditional."""
        return await self._patch(res, namespace, name, sub, patch, "application/json-patch+json")

    async def _patch(
        self,
        res: Resource,
        namespace: str | None,
        name: str,
        sub: str | None,
        body: Obj | Sequence[Obj],
        content_type: str,
        *,
        force: bool = False,
    ) -> Obj:
        query: dict[str, str | int | bool] = {"fieldManager": self.field_manager}
        if force:
            query["force"] = True
        result: Obj = await self.request("PATCH", res.path(namespace, name, sub), query=query, body=body,
                                         content_type=content_type)  # fmt: skip
        return result

    async def delete(self, res: Resource, namespace: str | None, name: str, *, propagation: str = "Background") -> bool:
        try:
            await self.request(
                "DELETE", res.path(namespace, name), body={"kind": "DeleteOptions", "propagationPolicy": propagation}
            )
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True

    async def watch(
        self,
        res: Resource,
        namespace: str | None = None,
        *,
        resource_version: str | None = None,
        selector: str | None = None,
        timeout_seconds: int = 300,
    ) -> AsyncIterator[Obj]:
        """Watch events ({type, object}) from `resource_version` until the server closes the stream."""
        query: dict[str, str | int | bool] = {
            "watch": True,
            "allowWatchBookmarks": True,
            "timeoutSeconds": timeout_seconds,
        }
        if resource_version:
            query["resourceVersion"] = resource_version
        if selector:
            query["labelSelector"] = selector
        params = list(query.items())
        params = [(k, str(v).lower() if isinstance(v, bool) else v) for k, v in params]
        response = await self.api.call_api(
            res.path(namespace),
            "GET",
            query_params=params,
            header_params={"Accept": _JSON, **self.headers},
            auth_settings=["BearerToken"],
            _preload_content=False,
            _return_http_data_only=True,
            _request_timeout=timeout_seconds + 30,
        )
        try:
            # One event per line; lines can be megabytes long (a TConfig's content), beyond what readline() accepts.
            pending = b""
            async for chunk in response.content.iter_any():
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if line.strip():
                        event: Obj = json.loads(line)
                        yield event
            if pending.strip():
                last: Obj = json.loads(pending)
                yield last
        finally:
            response.release()
