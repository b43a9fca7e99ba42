"""What the admission hooks read of other objects (TTemplates, TServers, TConfigs, TFrameworkConfigs), from
informers: answers come from memory, so a slow apiserver does not make every request wait for it (K8SFramework's
webhook reads listers the same way). Until a cache has synced, and to confirm an answer that would refuse a request
or leave a default out (a cache may lag a write made a moment ago), the API is asked directly (`live=True`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from k8stars.kube.client import Kube, Obj, Resource
from k8stars.kube.informer import WatchCache
from k8stars.kube.resources import TCONFIG, TFRAMEWORKCONFIG, TSERVER, TTEMPLATE

log = logging.getLogger("k8stars.operator.webhook")

RESOURCES = (TTEMPLATE, TSERVER, TCONFIG, TFRAMEWORKCONFIG)


def _slim(obj: Obj, _event: str) -> None:
    # No hook reads a TConfig's content (up to 1.5 MB each): the cache keeps the rest.
    obj.pop("configContent", None)


def matches(labels: dict[str, str], selector: str) -> bool:
    """Whether `labels` match a label selector of `k=v`, `k!=v`, `k` and `!k` terms (what the hooks use)."""
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if term.startswith("!"):
            ok = term[1:] not in labels
        elif "!=" in term:
            key, value = term.split("!=", 1)
            ok = labels.get(key) != value
        elif "=" in term:
            key, value = term.split("=", 1)
            ok = key in labels and labels[key] == value.lstrip("=")
        else:
            ok = term in labels
        if not ok:
            return False
    return True


class Lookups:
    """Watch caches of RESOURCES in `namespace` (None: every namespace; a one-namespace operator may read no
    other); `start()` them, `stop()` them when done."""

    def __init__(self, kube: Kube, namespace: str | None = None) -> None:
        self.kube = kube
        self.caches = {res.plural: WatchCache(kube, res, namespace, on_change=_slim if res is TCONFIG else None)
                       for res in RESOURCES}  # fmt: skip
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        if not self._tasks:
            self._tasks = [asyncio.create_task(c.run(), name=f"webhook-cache-{c.res.plural}")
                           for c in self.caches.values()]  # fmt: skip

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    def synced(self) -> bool:
        return all(c.synced.is_set() for c in self.caches.values())

    def _cache(self, res: Resource, live: bool) -> WatchCache | None:
        cache = self.caches[res.plural]
        return cache if not live and cache.synced.is_set() else None

    async def get(self, res: Resource, namespace: str, name: str, *, live: bool = False) -> Obj | None:
        cache = self._cache(res, live)
        if cache is not None:
            return cache.get((namespace, name))
        return await self.kube.get(res, namespace, name)

    async def list(self, res: Resource, namespace: str, selector: str = "", *, live: bool = False) -> list[Obj]:
        cache = self._cache(res, live)
        if cache is not None:
            return [
                obj
                for (ns, _), obj in sorted(cache.store.items())
                if ns == namespace and matches((obj.get("metadata") or {}).get("labels") or {}, selector)
            ]
        items: list[Obj] = (await self.kube.list(res, namespace, selector=selector or None)).get("items") or []
        return items

    async def get_confirmed(self, res: Resource, namespace: str, name: str) -> Obj | None:
        """The object; a miss in the cache is confirmed with the API (it may have been created a moment ago)."""
        return await self.get(res, namespace, name) or await self.get(res, namespace, name, live=True)
