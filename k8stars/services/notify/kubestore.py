"""The notify service's Kubernetes store: each notification becomes a core/v1 Event on the pod that reported it.

The reporting pod is found from a watch cache of the namespace's TARS pods (label ``tars.io/ServerApp``): by the
report's node (``sNodeName``: tarscli sends the pod IP; a pod name works too), else by the caller's address (a server
calling from its pod). A report from no known pod goes on the TServer ``lower(app)-lower(server)``; when there is
none either, it is only logged. Events carry reason ``TarsNotify``, type ``Warning`` for ``[alarm]``, ``[error]``
and ``[warn]`` (else ``Normal``) and the message, so ``kubectl describe pod`` lists a server's alarms.

getNotifyInfo reads them back (``notify_page``): a server's Events (its labels), newest first, only those of one pod
(its IP, the reporting node, or its name) when asked; a repeated Event is one record, at its last time.

A repeat (same object, type and message) within ``REPEAT_WINDOW`` bumps ``count`` and ``lastTimestamp`` of the
Event already written, as client-go's event recorder aggregates, instead of creating another: a server repeating
an alarm costs one small patch each time and one object in etcd. The memory of recent Events and of TServer lookups
is bounded (least recently used entries go first).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from k8stars.kube import meta
from k8stars.kube.client import ApiException, Kube, Obj, Resource
from k8stars.kube.informer import WatchCache, key_of
from k8stars.kube.pods import pod_ips
from k8stars.kube.resources import POD, TSERVER
from k8stars.services.notify.model import NORMAL, WARN, Notification, tag_of_message
from k8stars.services.notify.sqlstore import LEVELS, PAGE_SIZE, NotifyPage, split_name

log = logging.getLogger("k8stars.services.notify")

EVENT = Resource("", "v1", "events", "Event")
REASON = "TarsNotify"
COMPONENT = "tarsnotify"
SYNC_TIMEOUT = 30.0
REPEAT_WINDOW = 600.0  # seconds during which a repeat updates the Event already written (client-go: 10 min)
MAX_RECENT = 4096  # Events remembered for repeats
MAX_MESSAGE = 1024  # characters of an Event's message (events.k8s.io caps its note at 1 kB)
TSERVER_TTL = 30.0  # seconds a TServer lookup (found or not) is reused
MAX_TSERVERS = 1024
COMMAND_ANNOTATION = "k8stars.io/notify-command"  # the level tag ([alarm], [error], [warn], [normal])

Target = dict[str, str]  # an Event's involvedObject


_LABEL_VALUE = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9]")


def _labels(n: Notification) -> dict[str, str]:
    """ServerApp and ServerName labels (``kubectl get events -l tars.io/ServerApp=...``) when they are valid values."""
    pairs = ((meta.SERVER_APP, n.app), (meta.SERVER_NAME, n.server))
    return {k: v for k, v in pairs if _LABEL_VALUE.fullmatch(v)}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class PodIndex:
    """The namespace's TARS pods by IP and by name, as Event targets."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self._by_name: dict[str, Target] = {}
        self._by_ip: dict[str, str] = {}
        self._ips_of: dict[str, set[str]] = {}

    def on_pod(self, pod: Obj, kind: str) -> None:
        name = key_of(pod)[1]
        for ip in self._ips_of.pop(name, set()):
            if self._by_ip.get(ip) == name:
                del self._by_ip[ip]
        self._by_name.pop(name, None)
        if kind == "DELETED":
            return
        md = pod.get("metadata") or {}
        self._by_name[name] = {"apiVersion": "v1", "kind": "Pod", "namespace": self.namespace, "name": name,
                               "uid": str(md.get("uid") or "")}  # fmt: skip
        ips = pod_ips(pod)
        for ip in ips:
            self._by_ip[ip] = name  # a reused IP belongs to the pod seen last
        self._ips_of[name] = ips

    def find(self, *addresses: str) -> Target | None:
        """The pod named by the first address that is a pod IP or a pod name."""
        for a in addresses:
            name = self._by_ip.get(a) or (a if a in self._by_name else None)
            if name:
                return self._by_name[name]
        return None


class KubernetesNotifyStore:
    """Writes Events in ``namespace``. Needs get/list/watch on pods, get on tservers, create/patch on events."""

    kind = "kubernetes"

    def __init__(self, namespace: str, kubeconfig: str | None = None, kube: Kube | None = None) -> None:
        if not namespace:
            raise ValueError("the kubernetes notify store writes Events in one namespace: give --namespace")
        self.namespace = namespace
        self.where = f"namespace {namespace}"
        self.kubeconfig = kubeconfig
        self.pods = PodIndex(namespace)
        self._kube = kube
        self._own_kube = kube is None
        self._task: asyncio.Task[None] | None = None
        self._recent: OrderedDict[tuple[str, str, str], tuple[str, int, float]] = OrderedDict()
        self._tservers: OrderedDict[tuple[str, str], tuple[Target | None, float]] = OrderedDict()
        self._seq = itertools.count()

    async def open(self) -> None:
        if self._kube is None:
            self._kube = await Kube.connect(self.kubeconfig, field_manager="k8stars-notify")
        cache = WatchCache(self._kube, POD, self.namespace, meta.SERVER_APP, self.pods.on_pod)
        self._task = asyncio.create_task(cache.run(), name="notify-watch-pods")
        try:
            await asyncio.wait_for(cache.synced.wait(), SYNC_TIMEOUT)
        except TimeoutError:
            await self.close()
            raise RuntimeError(
                f"pods of namespace {self.namespace} not listed within {SYNC_TIMEOUT:.0f} s (see the warnings "
                "above: API server unreachable, or no get/list/watch on pods?)"
            ) from None
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._kube is not None and self._own_kube:
            await self._kube.close()
            self._kube = None

    def _k(self) -> Kube:
        if self._kube is None:
            raise RuntimeError("the kubernetes notify store is not open")
        return self._kube

    # -- where an Event goes ---------------------------------------------------------------------------------------
    async def target(self, n: Notification) -> Target | None:
        """The reporting pod, else the server's TServer, else None."""
        return self.pods.find(n.node, n.peer) or await self._tserver(n.app, n.server)

    async def _tserver(self, app: str, server: str) -> Target | None:
        key, now = (app, server), time.monotonic()
        cached = self._tservers.get(key)
        if cached is not None and now - cached[1] < TSERVER_TTL:
            return cached[0]
        name = f"{app}-{server}".lower()
        found: Target | None = None
        if app and server:
            obj = await self._k().get(TSERVER, self.namespace, name)
            if obj is not None:
                found = {"apiVersion": TSERVER.api_version, "kind": TSERVER.kind, "namespace": self.namespace,
                         "name": name, "uid": str((obj.get("metadata") or {}).get("uid") or "")}  # fmt: skip
        self._tservers[key] = (found, now)
        self._tservers.move_to_end(key)
        while len(self._tservers) > MAX_TSERVERS:
            self._tservers.popitem(last=False)
        return found

    # -- writing ------------------------------------------------------------------------------------------------
    async def write(self, items: Sequence[Notification]) -> int:
        stored = 0
        for n in items:
            try:
                stored += await self._write_one(n)
            except ApiException as e:
                log.warning("notify: Event for %s.%s not written: %s %s", n.app, n.server, e.status, e.reason)
        return stored

    def _message(self, n: Notification, target: Target) -> str:
        text = n.message if target["kind"] == "Pod" else f"{n.message} (from {n.node or 'an unknown node'})"
        return text[:MAX_MESSAGE]

    async def _write_one(self, n: Notification) -> int:
        target = await self.target(n)
        if target is None:
            log.info("notify: no pod or TServer for %s.%s (node %s): %s %s", n.app, n.server, n.node or "?",
                     n.command, n.message[:200])  # fmt: skip
            return 0
        kind = "Warning" if n.warning else "Normal"
        message = self._message(n, target)
        key = (target["uid"] or target["name"], kind, message)
        now = time.monotonic()
        seen = self._recent.get(key)
        if seen is not None and now - seen[2] < REPEAT_WINDOW and await self._repeat(key, seen, now):
            return 1
        name = f"{target['name']}.{time.time_ns():x}{next(self._seq) % 1000:03d}"
        await self._k().create(EVENT, self.namespace, self._event(name, target, kind, message, n))
        self._remember(key, (name, 1, now))
        return 1

    async def _repeat(self, key: tuple[str, str, str], seen: tuple[str, int, float], now: float) -> bool:
        """Bump the Event already written; False when it is gone (expired: the caller creates a new one)."""
        name, count = seen[0], seen[1] + 1
        try:
            await self._k().merge_patch(EVENT, self.namespace, name, {"count": count, "lastTimestamp": _now()})
        except ApiException as e:
            if e.status != 404:
                raise
            self._recent.pop(key, None)
            return False
        self._remember(key, (name, count, seen[2]))
        return True

    def _remember(self, key: tuple[str, str, str], value: tuple[str, int, float]) -> None:
        self._recent[key] = value
        self._recent.move_to_end(key)
        while len(self._recent) > MAX_RECENT:
            self._recent.popitem(last=False)

    def _event(self, name: str, target: Target, kind: str, message: str, n: Notification) -> dict[str, Any]:
        stamp = _now()
        return {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": self.namespace, "labels": _labels(n),
                         "annotations": {COMMAND_ANNOTATION: n.command}},
            "involvedObject": target,
            "reason": REASON,
            "message": message,
            "type": kind,
            "source": {"component": COMPONENT, "host": n.node[:253]},
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }  # fmt: skip

    # -- reading back: getNotifyInfo ---------------------------------------------------------------------------
    async def notify_page(self, name: str, where: str, page: int, size: int = PAGE_SIZE) -> NotifyPage:
        """Page ``page`` (from 0) of the Events of ``name`` (``App.Server``), newest first; only those of one pod
        when ``where`` is given: the reporting node (``source.host``: tarscli's pod IP) or the pod's name."""
        app, server = split_name(name)
        labels = _labels(Notification(app=app, server=server, message=""))
        if len(labels) < 2:
            return NotifyPage([], -1)  # names that cannot be label values were never labelled
        selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        events = [e for e in (await self._k().list(EVENT, self.namespace, selector=selector)).get("items") or []
                  if e.get("reason") == REASON and _of(e, where)]  # fmt: skip
        events.sort(key=_when, reverse=True)
        start = max(page, 0) * size
        items = [_item(e, app, server) for e in events[start : start + size]]
        return NotifyPage(items, max(page, 0) + 1 if len(events) > start + size else -1)


def _of(event: Obj, where: str) -> bool:
    if not where:
        return True
    host = str((event.get("source") or {}).get("host") or "")
    return where in (host, str((event.get("involvedObject") or {}).get("name") or ""))


def _last(event: Obj) -> str:
    md = event.get("metadata") or {}
    return str(event.get("lastTimestamp") or event.get("eventTime") or md.get("creationTimestamp") or "")


def _when(event: Obj) -> tuple[str, str, str]:
    """Newest first by the last time (to the second), then by creation: the name's suffix is the creation time in
    nanoseconds (hex, of fixed width until 2262) for ours, whatever pod they are on."""
    md = event.get("metadata") or {}
    return (_last(event)[:19], str(md.get("creationTimestamp") or ""), str(md.get("name") or "").rpartition(".")[2])


def _local_time(stamp: str) -> str:
    """An Event's RFC 3339 UTC time as the SQL store's notifytime: local, ``%Y-%m-%d %H:%M:%S``."""
    try:
        when = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return stamp
    return when.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _item(event: Obj, app: str, server: str) -> tuple[str, str, int, str]:
    """``(time, server_id, level, message)`` as the SQL store answers: the level of the tag the Event was written
    with (an older Event without it: the tag in its message, Warning at least [warn])."""
    command = str(((event.get("metadata") or {}).get("annotations") or {}).get(COMMAND_ANNOTATION) or "")
    if not command:
        command = tag_of_message(str(event.get("message") or ""))
        if command == NORMAL and event.get("type") == "Warning":
            command = WARN
    host = str((event.get("source") or {}).get("host") or "")
    return (_local_time(_last(event)), f"{app}.{server}_{host}", LEVELS.get(command, 0),
            str(event.get("message") or ""))  # fmt: skip
