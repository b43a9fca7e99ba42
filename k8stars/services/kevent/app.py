"""``k8stars kevent``: Kubernetes Events of a namespace's TARS servers kept beyond the apiserver's hour.

It watches the namespace's Events, TARS pods and TServers (``watcher.py``), writes the Events of TARS servers into
``t_kevent`` of the monitoring store (``store.py``: ``monitor.db`` under ``--data-dir``, or ``--dsn``), deletes those
older than ``--days``, and answers ``GET /api/events?server=App.Server`` or ``?pod=NAME`` (newest first, ``limit``)
beside ``/metrics`` and ``/healthz``. K8SFramework's tarskevent keeps them in Elasticsearch; it has no TARS servant.
Rights: get/list/watch on events, pods and tservers of the namespace, nothing else.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any, ClassVar

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter

from k8stars.kube import meta
from k8stars.kube.client import Kube, Obj, Resource
from k8stars.kube.informer import WatchCache
from k8stars.kube.resources import POD, TSERVER
from k8stars.service.http import metrics_app, serve_http
from k8stars.service.lifecycle import Service, cancel
from k8stars.service.options import HttpServiceOptions, ServiceError
from k8stars.services.kevent.store import KEvent, KeventStore
from k8stars.services.kevent.watcher import Servers, kevent_of

log = logging.getLogger("k8stars.services.kevent")

EVENT = Resource("", "v1", "events", "Event")
DEFAULT_HTTP_PORT = 9328
DEFAULT_DAYS = 7
QUEUE_SIZE = 10000  # Events waiting for the store at most; more are dropped and counted
SYNC_TIMEOUT = 30.0
PRUNE_INTERVAL = 3600.0
MAX_LIMIT = 1000


class KeventServiceError(ServiceError):
    """An option that cannot work; the message names it."""


@dataclass(kw_only=True)
class KeventServiceOptions(HttpServiceOptions):
    port: int = DEFAULT_HTTP_PORT
    namespace: str = ""
    kubeconfig: str | None = None
    store: str = "sqlite"
    data_dir: str | None = None
    dsn: str | None = None
    days: int = DEFAULT_DAYS

    error: ClassVar[type[ServiceError]] = KeventServiceError

    def check(self) -> None:
        if not self.namespace:
            raise KeventServiceError("--namespace is required (env K8STARS_KEVENT_NAMESPACE or POD_NAMESPACE)")
        if self.store not in ("sqlite", "mysql"):
            raise KeventServiceError(f"--store {self.store!r}: expected sqlite or mysql")
        if self.store == "mysql" and not self.dsn:
            raise KeventServiceError("--store mysql needs --dsn mysql://user:pass@host:port/db_tars")
        if self.days < 1:
            raise KeventServiceError(f"--days {self.days}: must be at least 1")
        super().check()


class KeventService(Service[KeventServiceOptions]):
    name = "kevent"

    def __init__(self, options: KeventServiceOptions, kube: Kube | None = None) -> None:
        super().__init__(options)
        try:
            self.store = KeventStore(options.store, data_dir=options.data_dir, dsn=options.dsn)
        except ValueError as e:
            raise KeventServiceError(f"--dsn: {e}") from None
        self.kube = kube
        self.servers = Servers()
        self.queue: asyncio.Queue[KEvent] = asyncio.Queue(QUEUE_SIZE)
        self.events: WatchCache | None = None
        self.registry = CollectorRegistry()
        self.kept = Counter("k8stars_kevent_kept", "Events written to the store", registry=self.registry)
        self.dropped = Counter("k8stars_kevent_dropped", "Events not kept: the queue to the store was full",
                               registry=self.registry)  # fmt: skip
        self.port = 0

    def _submit(self, event: Obj) -> None:
        found = kevent_of(event, self.servers)
        if found is None:
            return
        try:
            self.queue.put_nowait(found)
        except asyncio.QueueFull:
            self.dropped.inc()

    def _on_event(self, event: Obj, kind: str) -> None:
        if kind != "DELETED":  # the apiserver's TTL removed it: what was kept stays
            self._submit(event)

    def _on_pod(self, pod: Obj, kind: str) -> None:
        self.servers.on_pod(pod, kind)
        if kind in ("ADDED", "SYNC") and self.events is not None:  # its Events may have come before the pod
            name = (pod.get("metadata") or {}).get("name")
            for event in list(self.events.store.values()):
                if (event.get("involvedObject") or {}).get("name") == name:
                    self._submit(event)

    async def _write(self) -> None:
        while True:
            batch = [await self.queue.get()]
            while not self.queue.empty() and len(batch) < 500:
                batch.append(self.queue.get_nowait())
            try:
                await self.store.put(batch)
                self.kept.inc(len(batch))
            except Exception as e:  # driver errors share no useful base; the next Events are still tried
                self.dropped.inc(len(batch))
                log.warning("kevent: writing %d Event(s) to %s failed: %s", len(batch), self.store.where, e)

    async def _prune(self) -> None:
        while True:
            try:
                gone = await self.store.prune(int(time.time()) - self.options.days * 86400)
                if gone:
                    log.info("kevent: %d Event(s) older than %d day(s) deleted", gone, self.options.days)
            except Exception as e:  # retried next hour
                log.warning("kevent: pruning %s failed: %s", self.store.where, e)
            await asyncio.sleep(PRUNE_INTERVAL)

    def _task(self, parts: AsyncExitStack, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        parts.push_async_callback(cancel, task)

    async def open(self, parts: AsyncExitStack) -> None:
        await self.store.open()
        parts.push_async_callback(self.store.close)
        if self.kube is None:
            try:
                self.kube = await Kube.connect(self.options.kubeconfig, field_manager="k8stars-kevent")
            except Exception as e:  # kubeconfig and in-cluster errors share no useful base: the CLI exits 1
                raise RuntimeError(f"kubernetes: {e}") from e
            parts.push_async_callback(self.kube.close)
        ns = self.options.namespace
        self._task(parts, self._write(), "kevent-write")
        tservers = WatchCache(self.kube, TSERVER, ns, on_change=self.servers.on_tserver)
        pods = WatchCache(self.kube, POD, ns, meta.SERVER_APP, self._on_pod)
        self._task(parts, tservers.run(), "kevent-watch-tservers")
        self._task(parts, pods.run(), "kevent-watch-pods")
        try:
            await asyncio.wait_for(asyncio.gather(tservers.synced.wait(), pods.synced.wait()), SYNC_TIMEOUT)
        except TimeoutError:
            raise RuntimeError(
                f"kubernetes: pods and tservers of {ns} not listed within {SYNC_TIMEOUT:.0f} s"
            ) from None
        self.events = WatchCache(self.kube, EVENT, ns, on_change=self._on_event)
        self._task(parts, self.events.run(), "kevent-watch-events")
        self._task(parts, self._prune(), "kevent-prune")
        app = metrics_app(self.registry, lambda: f"queued={self.queue.qsize()}")
        app.router.add_get("/api/events", self.api_events)
        self.port = await serve_http(parts, app, self.options.host, self.options.port, "--port")

    async def api_events(self, request: web.Request) -> web.Response:
        server, pod = request.query.get("server", ""), request.query.get("pod", "")
        if not server and not pod:
            return web.json_response({"error": "give server=App.Server or pod=NAME"}, status=400)
        try:
            limit = min(int(request.query.get("limit", "200")), MAX_LIMIT)
        except ValueError:
            return web.json_response({"error": "limit: expected a number"}, status=400)
        found = await self.store.events(server=server, pod=pod, limit=limit)
        return web.json_response({"events": [e.json() for e in found]})

    def describe(self) -> str:
        return (f"Events of namespace {self.options.namespace} into {self.store.kind} store {self.store.where}, "
                f"/api/events on {self.options.host}:{self.port}")  # fmt: skip
