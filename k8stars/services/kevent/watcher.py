"""Which Kubernetes Events are kept, and for which server: list+watch caches of the namespace's Events, TARS pods
(label ``tars.io/ServerApp``) and TServers.

Kept: Events about a TARS pod (its ``App.Server`` from the pod's labels, remembered after the pod is gone: the Events
of a killed pod come after its deletion), about a TServer (``spec.app``.``spec.server``) and about a TARS server's
workload (the StatefulSet or DaemonSet that owns its pods). Others are not the framework's business.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from datetime import datetime
from typing import Any

from k8stars.kube import meta
from k8stars.kube.client import Obj
from k8stars.services.kevent.store import KEvent

log = logging.getLogger("k8stars.services.kevent")

MAX_REMEMBERED = 20000  # pods and workloads remembered after they are gone (least recently seen go first)


def epoch(text: Any) -> int:
    """An RFC 3339 timestamp of the API as epoch seconds (0 when absent)."""
    if not text:
        return 0
    return int(datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp())


class Servers:
    """Object names -> ``App.Server``: pods and their workloads from the pod cache, TServers from theirs."""

    def __init__(self) -> None:
        self.pods: OrderedDict[str, str] = OrderedDict()
        self.workloads: OrderedDict[str, str] = OrderedDict()
        self.tservers: dict[str, str] = {}

    @staticmethod
    def _remember(table: OrderedDict[str, str], key: str, server: str) -> None:
        table[key] = server
        table.move_to_end(key)
        while len(table) > MAX_REMEMBERED:
            table.popitem(last=False)

    def on_pod(self, pod: Obj, kind: str) -> None:
        md = pod.get("metadata") or {}
        labels = md.get("labels") or {}
        app, server = labels.get(meta.SERVER_APP), labels.get(meta.SERVER_NAME)
        if not app or not server:
            return
        name = f"{app}.{server}"
        self._remember(self.pods, str(md.get("name", "")), name)  # kept when DELETED: its last Events come later
        for owner in md.get("ownerReferences") or []:
            if owner.get("kind") in ("StatefulSet", "DaemonSet"):
                self._remember(self.workloads, f"{owner['kind']}/{owner.get('name', '')}", name)

    def on_tserver(self, tserver: Obj, kind: str) -> None:
        name = str((tserver.get("metadata") or {}).get("name", ""))
        spec = tserver.get("spec") or {}
        if kind == "DELETED":
            return  # its last Events may still come
        if spec.get("app") and spec.get("server"):
            self.tservers[name] = f"{spec['app']}.{spec['server']}"

    def of(self, involved: Obj) -> tuple[str, str] | None:
        """(App.Server, pod) of an Event's involvedObject, None when it is not a TARS server's."""
        kind, name = str(involved.get("kind", "")), str(involved.get("name", ""))
        if kind == "Pod" and name in self.pods:
            return self.pods[name], name
        if kind == "TServer" and name in self.tservers:
            return self.tservers[name], ""
        if f"{kind}/{name}" in self.workloads:
            return self.workloads[f"{kind}/{name}"], ""
        return None


def kevent_of(event: Obj, servers: Servers) -> KEvent | None:
    involved = event.get("involvedObject") or {}
    found = servers.of(involved)
    if found is None:
        return None
    md = event.get("metadata") or {}
    last = epoch(event.get("lastTimestamp") or event.get("eventTime") or md.get("creationTimestamp"))
    first = epoch(event.get("firstTimestamp")) or last
    return KEvent(str(md.get("uid", "")), str(md.get("namespace", "")), found[0], found[1],
                  str(involved.get("kind", "")), str(involved.get("name", "")), str(event.get("type", "")),
                  str(event.get("reason", "")), str(event.get("message", "")), int(event.get("count") or 1), first,
                  last)  # fmt: skip
