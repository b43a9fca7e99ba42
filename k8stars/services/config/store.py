"""Where the config service finds TConfigs and pods: an in-memory index, fed by watch caches of one namespace.

A TConfig counts when ``activated`` is true and it is not being deleted (no ``tars.io/Deleting`` label, no
``deletionTimestamp``); everything else is left out of the index, so a lookup never sees it. Pods are indexed by IP
(``status.podIP`` and ``status.podIPs``) to their name, which carries the StatefulSet ordinal. Lookups are plain dict
reads: no apiserver round trip per call.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Protocol

from k8stars.kube import meta
from k8stars.kube.client import Kube, Obj
from k8stars.kube.informer import WatchCache, key_of
from k8stars.kube.pods import pod_ips
from k8stars.kube.resources import POD, TCONFIG
from k8stars.kube.tconfigs import activated_since

log = logging.getLogger("k8stars.services.config")

SYNC_TIMEOUT = 30.0  # seconds for the first list of TConfigs and pods
SERVER_LEVEL = "m"  # podSeq of a server-level (master) TConfig; pod-level ones carry the pod ordinal

Key = tuple[str, str]  # (namespace, name) of a Kubernetes object
GroupKey = tuple[str, str, str]  # (app, server, configName); server "" for app-level configs


@dataclass(frozen=True, slots=True)
class ConfigEntry:
    """One TConfig that counts (activated, not being deleted)."""

    app: str
    server: str
    name: str  # configName: the file name
    pod_seq: str  # "m" or a pod ordinal
    content: str
    version: str = ""
    object_name: str = ""
    since: str = ""  # activated since: creation, or re-activation when later (UTC ISO 8601, sorts as text)
    deactivating: bool = False  # labelled tars.io/Deactivate: a newer version is taking over


class ConfigStore(Protocol):
    """What the servant reads; every method answers from memory."""

    def entries(self, app: str, server: str, name: str) -> list[ConfigEntry]:
        """The counting TConfigs of one file, every podSeq."""
        ...

    def names(self, app: str, server: str) -> list[str]:
        """Sorted file names with a counting server-level (podSeq m) TConfig."""
        ...

    def pod_name(self, ip: str) -> str | None:
        """The name of the pod that has this IP, if any."""
        ...


def _labels(obj: Obj) -> dict[str, Any]:
    return dict((obj.get("metadata") or {}).get("labels") or {})


def _since(obj: Obj) -> str:
    when = activated_since(obj)
    return when.isoformat() if when else ""


def entry_of(obj: Obj) -> ConfigEntry | None:
    """The entry of a TConfig object, or None when it does not count (or lacks the fields that identify it)."""
    md = obj.get("metadata") or {}
    labels = _labels(obj)
    if obj.get("activated") is not True or meta.DELETING in labels or md.get("deletionTimestamp"):
        return None
    app, name = obj.get("app"), obj.get("configName")
    if not isinstance(app, str) or not app or not isinstance(name, str) or not name:
        return None
    return ConfigEntry(
        app=app,
        server=str(obj.get("server") or ""),
        name=name,
        pod_seq=str(obj.get("podSeq") or SERVER_LEVEL),
        content=str(obj.get("configContent") or ""),
        version=str(obj.get("version") or ""),
        object_name=str(md.get("name") or ""),
        since=_since(obj),
        deactivating=meta.DEACTIVATE in labels,
    )


class ConfigIndex:
    """TConfigs by (app, server, configName) and pods by IP, updated one object at a time."""

    def __init__(self) -> None:
        self._groups: dict[GroupKey, dict[Key, ConfigEntry]] = {}
        self._group_of: dict[Key, GroupKey] = {}
        self._files_of: dict[tuple[str, str], set[GroupKey]] = {}  # (app, server) -> its groups, for listings
        self._pod_by_ip: dict[str, Key] = {}
        self._ips_of: dict[Key, set[str]] = {}

    # -- TConfigs ---------------------------------------------------------------------------------------------
    def put_config(self, obj: Obj) -> None:
        key = key_of(obj)
        self.remove_config(obj)
        entry = entry_of(obj)
        if entry is None:
            return
        group = (entry.app, entry.server, entry.name)
        self._groups.setdefault(group, {})[key] = entry
        self._group_of[key] = group
        self._files_of.setdefault(group[:2], set()).add(group)

    def remove_config(self, obj: Obj) -> None:
        key = key_of(obj)
        group = self._group_of.pop(key, None)
        if group is None:
            return
        members = self._groups.get(group, {})
        members.pop(key, None)
        if not members:
            self._groups.pop(group, None)
            files = self._files_of.get(group[:2], set())
            files.discard(group)
            if not files:
                self._files_of.pop(group[:2], None)

    def on_config(self, obj: Obj, kind: str) -> None:
        if kind == "DELETED":
            self.remove_config(obj)
        else:
            self.put_config(obj)

    # -- pods -------------------------------------------------------------------------------------------------
    def put_pod(self, pod: Obj) -> None:
        key = key_of(pod)
        self.remove_pod(pod)
        ips = pod_ips(pod)
        for ip in ips:
            self._pod_by_ip[ip] = key  # a reused IP belongs to the pod seen last
        if ips:
            self._ips_of[key] = ips

    def remove_pod(self, pod: Obj) -> None:
        key = key_of(pod)
        for ip in self._ips_of.pop(key, set()):
            if self._pod_by_ip.get(ip) == key:
                del self._pod_by_ip[ip]

    def on_pod(self, pod: Obj, kind: str) -> None:
        if kind == "DELETED":
            self.remove_pod(pod)
        else:
            self.put_pod(pod)

    # -- ConfigStore ------------------------------------------------------------------------------------------
    def entries(self, app: str, server: str, name: str) -> list[ConfigEntry]:
        return list(self._groups.get((app, server, name), {}).values())

    def names(self, app: str, server: str) -> list[str]:
        groups = self._files_of.get((app, server), set())
        return sorted(g[2] for g in groups if any(e.pod_seq == SERVER_LEVEL for e in self._groups[g].values()))

    def pod_name(self, ip: str) -> str | None:
        key = self._pod_by_ip.get(ip)
        return key[1] if key else None


class KubernetesConfigStore(ConfigIndex):
    """The index fed by watch caches of the TConfigs and the TARS pods (label ``tars.io/ServerApp``) of one
    namespace. Needs get/list/watch on ``tconfigs`` (k8s.tars.io) and ``pods`` there, nothing else."""

    def __init__(self, namespace: str, kubeconfig: str | None = None, kube: Kube | None = None) -> None:
        super().__init__()
        if not namespace:
            raise ValueError("the config service serves one namespace: give --namespace")
        self.namespace = namespace
        self.kubeconfig = kubeconfig
        self._kube = kube
        self._own_kube = kube is None
        self._tasks: list[asyncio.Task[None]] = []

    async def open(self) -> None:
        if self._kube is None:
            self._kube = await Kube.connect(self.kubeconfig, field_manager="k8stars-config")
        configs = WatchCache(self._kube, TCONFIG, self.namespace, None, self.on_config)
        pods = WatchCache(self._kube, POD, self.namespace, meta.SERVER_APP, self.on_pod)
        for cache in (configs, pods):
            self._tasks.append(asyncio.create_task(cache.run(), name=f"config-watch-{cache.res.plural}"))
        try:
            await asyncio.wait_for(asyncio.gather(configs.synced.wait(), pods.synced.wait()), SYNC_TIMEOUT)
        except TimeoutError:
            await self.close()
            raise RuntimeError(
                f"TConfigs and pods of namespace {self.namespace} not listed within {SYNC_TIMEOUT:.0f} s (see the "
                "warnings above: API server unreachable, k8s.tars.io CRDs not installed, or no get/list/watch on "
                "tconfigs and pods?)"
            ) from None
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self._kube is not None and self._own_kube:
            await self._kube.close()
            self._kube = None
