"""A list+watch cache of one resource (the operator's informers and the registry's Kubernetes store).

Objects are kept as plain dicts by (namespace, name); every change calls ``on_change(obj, event_type)`` after the
cache is updated (``SYNC`` for objects of a (re)list, ``DELETED`` for objects a relist no longer returns, or returns
as a new object under the same name: a pod a StatefulSet recreated while the watch was down went away all the same).
Network errors and expired watches (410) end in a relist after a short, growing pause.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from .client import ApiException, Kube, Obj, Resource

log = logging.getLogger("k8stars.kube")

Key = tuple[str, str]  # (namespace, name)


def key_of(obj: Obj) -> Key:
    md = obj.get("metadata") or {}
    return (str(md.get("namespace", "")), str(md.get("name", "")))


def _uid(obj: Obj | None) -> str | None:
    return None if obj is None else str((obj.get("metadata") or {}).get("uid", ""))


class WatchCache:
    def __init__(
        self,
        kube: Kube,
        res: Resource,
        namespace: str | None = None,
        selector: str | None = None,
        on_change: Callable[[Obj, str], None] | None = None,
        watch_timeout: int = 240,
    ) -> None:
        self.kube = kube
        self.res = res
        self.namespace = namespace
        self.selector = selector
        self.on_change = on_change or (lambda _obj, _kind: None)
        self.watch_timeout = watch_timeout
        self.store: dict[Key, Obj] = {}
        self.synced = asyncio.Event()

    def get(self, key: Key) -> Obj | None:
        return self.store.get(key)

    async def run(self) -> None:
        backoff = 0.2
        while True:
            try:
                version: str | None = await self._list()
                backoff = 0.2
                while version:
                    version = await self._watch(version)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                reason = f"{exc.status} {exc.reason}" if isinstance(exc, ApiException) else repr(exc)
                log.warning("watch of %s: %s; relisting in %.1f s", self.res.plural, reason, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)

    async def _list(self) -> str:
        listing = await self.kube.list(self.res, self.namespace, selector=self.selector)
        fresh = {key_of(o): o for o in listing.get("items") or []}
        gone = [o for k, o in self.store.items() if _uid(fresh.get(k)) != _uid(o)]
        self.store = fresh
        for obj in gone:
            self.on_change(obj, "DELETED")
        for obj in fresh.values():
            self.on_change(obj, "SYNC")
        self.synced.set()
        return str(listing["metadata"]["resourceVersion"])

    async def _watch(self, version: str) -> str | None:
        """One watch stream; the version to resume from, or None to relist."""
        async for event in self.kube.watch(
            self.res, self.namespace, resource_version=version, selector=self.selector,
            timeout_seconds=self.watch_timeout,
        ):  # fmt: skip
            kind = str(event.get("type"))
            obj = event.get("object") or {}
            if kind == "ERROR":
                if obj.get("code") == 410:
                    return None
                raise RuntimeError(f"watch error: {obj.get('message')}")
            version = str(obj.get("metadata", {}).get("resourceVersion", version))
            if kind == "BOOKMARK":
                continue
            if kind == "DELETED":
                self.store.pop(key_of(obj), None)
            else:
                self.store[key_of(obj)] = obj
            self.on_change(obj, kind)
        return version
