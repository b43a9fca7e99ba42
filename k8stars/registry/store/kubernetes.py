"""The registry's Kubernetes store (``--store kubernetes``): endpoints come from the cluster, not from a database.

Two watch caches feed it: the TEndpoints (``spec.app``, ``spec.server``, ``spec.tars.servants``: which servants a
server has, on which ports) and the TARS pods (label ``tars.io/ServerApp``: their IPs and readiness). Every pod with
an IP of a server whose TEndpoint lists TARS servants is one server row, keyed ``(app, server, podIP)``, with one
adapter per servant: ``tcp -h <podIP> -p <port> -t <timeout>`` (``udp`` for ``isTcp: false``). Its state:

- ``setting_state`` active, or inactive once the pod is being deleted;
- ``present_state`` active while the pod is Ready (its ``tars.io/active`` readiness gate included), deactivating
  while it terminates, activating while it runs but is not Ready, inactive otherwise.

Each watch event bumps an in-memory change number and logs the servers it touched, so the registry's poller
(every 250 ms) applies it: a pod that becomes Ready or goes away reaches lookups well within a second.

Registration calls from TARS pods write nothing here; they set the pod's ``tars.io/active`` condition instead (a
strategic-merge patch of ``pods/status``, only when it differs): state ``active`` -> True, anything else and
``onPrestop`` -> False, reason = the state. The pod's new readiness then comes back through the watch. So the agents
in the pods need no API rights; the registry's service account needs get/list/watch on pods and tendpoints and patch
on ``pods/status``. Registrations from addresses that are no TARS pod (the registry's own, processes outside the
cluster) become Leases in the registry's namespace (see :mod:`.leases`), with the usual heartbeat expiry, so every
replica answers with them; for those the service account also needs get/list/watch/create/patch/delete on
``coordination.k8s.io`` leases.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
from collections.abc import AsyncIterator, Collection, Coroutine
from typing import Any

from k8stars.kube import meta
from k8stars.kube.client import ApiException, Kube, Obj
from k8stars.kube.informer import WatchCache, key_of
from k8stars.kube.resources import POD, TENDPOINT
from k8stars.registry.model import (
    ACTIVATING,
    ACTIVE,
    DEACTIVATING,
    DESTROYED,
    ERR_NOT_REGISTERED,
    INACTIVE,
    LIVE_STATES,
    AdapterRow,
    Registration,
    RegistryError,
    ServerKey,
    ServerRow,
)
from k8stars.registry.store.base import Changes, Expiry, GroupTables, Poll, Store
from k8stars.registry.store.leases import LeaseRegistrations

log = logging.getLogger("k8stars.registry")

SYNC_TIMEOUT = 30.0  # seconds for the first list of pods and TEndpoints
FIELD_MANAGER = "k8stars-registry"
_PATCH = "application/strategic-merge-patch+json"

Key = tuple[str, str]


def _labels(obj: Obj) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("labels") or {})


def _servants(tendpoint: Obj) -> list[tuple[str, str]]:
    """(servant object name, endpoint template with {ip}) of a TEndpoint's TARS servants."""
    spec = tendpoint.get("spec") or {}
    if spec.get("subType", "tars") != "tars":
        return []
    out = []
    for s in (spec.get("tars") or {}).get("servants") or []:
        if not s.get("name") or not s.get("port"):
            continue
        proto = "tcp" if s.get("isTcp", True) else "udp"
        out.append((str(s["name"]), f"{proto} -h {{ip}} -p {int(s['port'])} -t {int(s.get('timeout') or 60000)}"))
    return out


def _condition(pod: Obj, kind: str) -> dict[str, Any]:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == kind:
            return dict(c)
    return {}


def _present_state(pod: Obj) -> str:
    status = pod.get("status") or {}
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return DEACTIVATING
    if _condition(pod, "Ready").get("status") == "True":
        return ACTIVE
    if status.get("phase") == "Running":
        return ACTIVATING
    return INACTIVE


class KubernetesStore(Store):
    kind = "kubernetes"

    def __init__(self, kubeconfig: str | None = None, namespace: str | None = None, kube: Kube | None = None) -> None:
        self.kubeconfig = kubeconfig
        self.namespace = namespace or None
        self._kube = kube
        self._own_kube = kube is None
        self._tasks: list[asyncio.Task[None]] = []
        self._pending: set[asyncio.Task[None]] = set()
        self._pods: WatchCache | None = None
        self._endpoints: WatchCache | None = None
        # (namespace, app, server) -> servants
        self._servants: dict[tuple[str, str, str], list[tuple[str, str]]] = {}
        self._pod_key: dict[Key, ServerKey] = {}  # pod (namespace, name) -> its server row's key
        self._by_key: dict[ServerKey, Key] = {}
        self._shared: LeaseRegistrations | None = None  # registrations of processes that are no TARS pod
        self._metrics: dict[ServerKey, int] = {}
        self._seq = 0
        self._changed: dict[ServerKey, tuple[int, float]] = {}
        self._floor = 0  # change numbers at or below this were pruned
        self._clock = 0.0

    @property
    def _memory(self) -> dict[ServerKey, ServerRow]:
        return self._shared.rows if self._shared is not None else {}

    @property
    def shared(self) -> LeaseRegistrations:
        if self._shared is None:
            raise RuntimeError("the kubernetes store is not open")
        return self._shared

    @property
    def lease_namespace(self) -> str:
        """Where registrations of non-pods live: the watched namespace, else the registry's own (POD_NAMESPACE)."""
        return self.namespace or os.environ.get("POD_NAMESPACE") or "default"

    @property
    def kube(self) -> Kube:
        if self._kube is None:
            raise RuntimeError("the kubernetes store is not open")
        return self._kube

    # -- life cycle -------------------------------------------------------------------------------------------
    async def open(self) -> None:
        if self._kube is None:
            self._kube = await Kube.connect(self.kubeconfig, field_manager=FIELD_MANAGER)
        self._endpoints = WatchCache(self.kube, TENDPOINT, self.namespace, None, self._on_tendpoint)
        self._pods = WatchCache(self.kube, POD, self.namespace, meta.SERVER_APP, self._on_pod)
        self._shared = LeaseRegistrations(self.kube, self.lease_namespace, self._on_shared)
        caches = (self._endpoints, self._pods, self._shared.cache)
        for cache in caches:
            self._tasks.append(asyncio.create_task(cache.run(), name=f"registry-watch-{cache.res.plural}"))
        try:
            await asyncio.wait_for(asyncio.gather(*(c.synced.wait() for c in caches)), SYNC_TIMEOUT)
        except TimeoutError:
            await self.close()
            raise RuntimeError(
                f"pods, TEndpoints and Leases not listed within {SYNC_TIMEOUT:.0f} s (see the warnings above: API "
                "server unreachable, k8s.tars.io CRDs not installed, or no get/list/watch on pods, tendpoints and "
                "leases?)"
            ) from None
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        for t in [*self._tasks, *self._pending]:
            t.cancel()
        await asyncio.gather(*self._tasks, *self._pending, return_exceptions=True)
        self._tasks.clear()
        if self._kube is not None and self._own_kube:
            await self._kube.close()
            self._kube = None

    # -- the watch side ---------------------------------------------------------------------------------------
    def _bump(self, keys: Collection[ServerKey], now: float | None = None) -> Changes:
        if not keys:
            return Changes()
        self._seq += 1
        t = now if now is not None else asyncio.get_running_loop().time()
        for k in keys:
            self._changed[k] = (self._seq, t)
        return Changes(self._seq, tuple(keys))

    def _pod_server(self, pod: Obj) -> ServerKey | None:
        labels = _labels(pod)
        ip = (pod.get("status") or {}).get("podIP")
        app, server = labels.get(meta.SERVER_APP), labels.get(meta.SERVER_NAME)
        if not (ip and app and server):
            return None
        return ServerKey(app, server, str(ip))

    def _on_pod(self, pod: Obj, kind: str) -> None:
        pk = key_of(pod)
        touched = set()
        old = self._pod_key.pop(pk, None)
        if old is not None:
            touched.add(old)
            if self._by_key.get(old) == pk:
                del self._by_key[old]
        new = None if kind == "DELETED" else self._pod_server(pod)
        if new is not None:
            self._pod_key[pk] = new
            self._by_key[new] = pk
            touched.add(new)
            if new in self._memory:
                self._adopt(pk, new)
        self._bump(touched)

    def _adopt(self, pk: Key, key: ServerKey) -> None:
        """The agent reported before a replica's watch showed its pod: its state goes to the pod's condition now,
        and the stand-in registration goes away."""
        row = self._memory[key]
        self._later(self._set_active(pk, row.present_state))
        self._later(self.shared.remove(key))

    def _on_shared(self, key: ServerKey) -> None:
        pk = self._by_key.get(key)
        if pk is not None and key in self._memory:
            self._adopt(pk, key)
        self._bump([key])

    def _later(self, aw: Coroutine[Any, Any, object]) -> None:
        async def run() -> None:
            try:
                await aw
            except Exception as e:
                log.warning("registration of a pod: %s", e)

        task = asyncio.get_running_loop().create_task(run())
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    def _on_tendpoint(self, te: Obj, kind: str) -> None:
        spec = te.get("spec") or {}
        ns = key_of(te)[0]
        sk = (ns, str(spec.get("app", "")), str(spec.get("server", "")))
        servants = [] if kind == "DELETED" else _servants(te)
        if self._servants.get(sk, []) == servants:
            return
        if servants:
            self._servants[sk] = servants
        else:
            self._servants.pop(sk, None)
        self._bump([k for pk, k in self._pod_key.items() if pk[0] == ns and (k.application, k.server) == sk[1:]])

    def _pod_row(self, key: ServerKey) -> ServerRow | None:
        pk = self._by_key.get(key)
        if pk is None or self._pods is None:
            return None
        pod = self._pods.store.get(pk)
        servants = self._servants.get((pk[0], key.application, key.server))
        if pod is None or not servants:
            return None
        deleting = bool((pod.get("metadata") or {}).get("deletionTimestamp"))
        prefix = f"{key.application}.{key.server}."
        return ServerRow(
            key,
            setting_state=INACTIVE if deleting else ACTIVE,
            present_state=_present_state(pod),
            metrics_port=self._metrics.get(key, 0),
            adapters=[
                AdapterRow(prefix + name + "Adapter", prefix + name, template.format(ip=key.node))
                for name, template in servants
            ],
        )

    def _row(self, key: ServerKey) -> ServerRow | None:
        return self._pod_row(key) or self._memory.get(key)

    # -- reads ------------------------------------------------------------------------------------------------
    async def load(self, keys: Collection[ServerKey] | None = None) -> list[ServerRow]:
        wanted = list(keys) if keys is not None else sorted(set(self._by_key) | set(self._memory))
        return [row for row in map(self._row, wanted) if row is not None]

    async def scan(self, page: int = 2000) -> AsyncIterator[list[ServerRow]]:
        rows = await self.load()
        for i in range(0, len(rows), page):
            yield rows[i : i + page]

    async def group_tables(self) -> GroupTables:
        return GroupTables()  # IP groups are a database feature; the cluster has none

    async def seq(self) -> int:
        return self._seq

    async def poll(self, seen: int) -> Poll:
        if seen < self._floor:
            return Poll(self._seq, None)
        return Poll(self._seq, sorted((s, k) for k, (s, _) in self._changed.items() if s > seen))

    async def prune_changes(self, before: float) -> int:
        # `before` is wall-clock; entries carry loop time: keep the last 10 minutes of loop time instead
        horizon = asyncio.get_running_loop().time() - 600.0
        old = [k for k, (_, t) in self._changed.items() if t < horizon]
        for k in old:
            self._floor = max(self._floor, self._changed.pop(k)[0])
        return len(old)

    # -- registration: pods get their tars.io/active condition, other processes a row in memory ---------------
    def _pods_at(self, node: str, key: ServerKey | None = None) -> list[Key]:
        if key is not None:
            pk = self._by_key.get(key)
            return [pk] if pk is not None else []
        return [pk for pk, k in self._pod_key.items() if k.node == node]

    async def _set_active(self, pk: Key, state: str) -> None:
        pod = self._pods.store.get(pk) if self._pods is not None else None
        if pod is None:
            return
        status = "True" if state == ACTIVE else "False"
        reason = state.capitalize()
        current = _condition(pod, meta.ACTIVE_GATE)
        if current.get("status") == status and current.get("reason") == reason:
            return
        condition: dict[str, Any] = {
            "type": meta.ACTIVE_GATE, "status": status, "reason": reason, "message": f"TARS server {state}",
        }  # fmt: skip
        if current.get("status") != status or not current.get("lastTransitionTime"):
            condition["lastTransitionTime"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        try:
            await self.kube.request(
                "PATCH", POD.path(pk[0], pk[1], "status"), body={"status": {"conditions": [condition]}},
                content_type=_PATCH, query={"fieldManager": FIELD_MANAGER},
            )  # fmt: skip
        except ApiException as e:
            if e.status == 404:  # the pod is gone: nothing left to mark
                return
            raise
        log.info("pod %s/%s: %s=%s (%s)", pk[0], pk[1], meta.ACTIVE_GATE, status, reason)

    async def register(self, reg: Registration, now: float) -> Changes:
        pods = self._pods_at(reg.key.node, reg.key)
        if pods:
            await self._set_active(pods[0], reg.state)
            return Changes()
        old = self._memory.get(reg.key)
        row = ServerRow(
            reg.key,
            present_state=reg.state,
            enable_set=reg.enable_set,
            set_name=reg.set_name,
            set_area=reg.set_area,
            set_group=reg.set_group,
            grid_flag="NO_FLOW" if reg.disable_flow else "NORMAL",
            metrics_port=old.metrics_port if old else 0,
            last_heartbeat=now,
            adapters=[AdapterRow(a.adapter_name, a.servant, a.endpoint, a.protocol or "tars") for a in reg.adapters],
        )
        await self.shared.put(row)
        return self._bump([reg.key])

    async def heartbeat(self, key: ServerKey, state: str, now: float) -> Changes:
        pods = self._pods_at(key.node, key)
        if pods:
            await self._set_active(pods[0], state)
            return Changes()
        row = self._memory.get(key)
        if row is None:
            raise RegistryError(f"{key} is not registered: call onStartup first", ERR_NOT_REGISTERED)
        changed = row.present_state != state or row.setting_state != ACTIVE
        row.present_state, row.setting_state, row.last_heartbeat = state, ACTIVE, now
        await self.shared.put(row, changed=changed)
        return self._bump([key]) if changed else Changes()

    async def node_heartbeat(self, node: str, state: str, now: float, live_after: float) -> Changes:
        for pk in self._pods_at(node):
            await self._set_active(pk, state)
        touched = []
        for key, row in list(self._memory.items()):
            if key.node == node and (row.last_heartbeat or 0) > live_after:
                setting = INACTIVE if state == DESTROYED else ACTIVE
                changed = (row.present_state, row.setting_state) != (state, setting)
                row.present_state, row.setting_state, row.last_heartbeat = state, setting, now
                await self.shared.put(row, changed=changed)
                touched.append(key)
        return self._bump(touched)

    async def deregister(self, key: ServerKey, now: float) -> Changes:
        for pk in self._pods_at(key.node, key):
            await self._set_active(pk, DEACTIVATING)
        self._metrics.pop(key, None)
        if key not in self._memory or not await self.shared.remove(key):
            return Changes()
        return self._bump([key])

    async def destroy_node(self, node: str, now: float) -> Changes:
        for pk in self._pods_at(node):
            await self._set_active(pk, DEACTIVATING)
        touched = [k for k in self._memory if k.node == node]
        for k in touched:
            row = self._memory[k]
            row.setting_state, row.present_state = INACTIVE, DESTROYED
            await self.shared.put(row)
        return self._bump(touched)

    async def set_metrics_port(self, key: ServerKey, port: int, now: float) -> Changes:
        if key not in self._by_key and key not in self._memory:
            raise RegistryError(f"{key} is not registered: call onStartup first", ERR_NOT_REGISTERED)
        self._metrics[key] = port
        if key in self._memory:
            self._memory[key].metrics_port = port
            await self.shared.put(self._memory[key])
        return self._bump([key])

    async def expire(self, now: float, inactive_before: float, remove_before: float) -> Expiry:
        expired, removed = [], []
        for key, row in list(self._memory.items()):
            beat = row.last_heartbeat or now
            if beat < remove_before:
                await self.shared.remove(key)  # every replica may try: a Lease already gone is fine
                self._metrics.pop(key, None)
                removed.append(key)
            elif beat < inactive_before and row.present_state in LIVE_STATES:
                row.present_state = INACTIVE
                await self.shared.put(row)  # replicas expiring it together write the same content
                expired.append(key)
        return Expiry(self._bump(expired + removed), len(expired), len(removed))

    async def clean(self, before: float, dry_run: bool, now: float) -> tuple[list[str], Changes]:
        gone = [k for k, r in self._memory.items() if not r.active and (r.last_heartbeat or now) < before]
        lines = [str(k) for k in sorted(gone)]
        if dry_run:
            return lines, Changes()
        for k in gone:
            await self.shared.remove(k)
        return lines, self._bump(gone)
