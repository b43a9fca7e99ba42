"""Registrations of processes that are no TARS pod, shared by every replica of a ``--store kubernetes`` registry.

Each one is a ``coordination.k8s.io/v1`` Lease — the object Kubernetes itself uses for heartbeats — named after its
(app, server, node) key and labelled ``k8stars.io/registration``: ``spec.holderIdentity`` says who, ``spec.renewTime``
is the last heartbeat, and the annotation ``k8stars.io/server-row`` holds the row (states, set, flow flag, metrics
port, adapters) as JSON. Every replica watches these Leases, so a registration, a state change or a deregistration
made through one replica reaches the lookups of all of them through the watch. A heartbeat that changes nothing
renews the Lease at most every ``RENEW_EVERY`` seconds, which keeps the write rate low while staying far inside the
heartbeat timeout. Writes are server-side applies of the whole object (idempotent; replicas that expire the same
row write the same content) and deletes tolerate a Lease that is already gone.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import logging
from collections.abc import Callable
from typing import Any

from k8stars.kube.client import ApiException, Kube, Obj, Resource
from k8stars.kube.informer import WatchCache
from k8stars.registry.model import AdapterRow, ServerKey, ServerRow

log = logging.getLogger("k8stars.registry")

LEASE = Resource("coordination.k8s.io", "v1", "leases", "Lease")
LABEL = "k8stars.io/registration"
ROW_ANNOTATION = "k8stars.io/server-row"
RENEW_EVERY = 5.0  # seconds between renewals of an unchanged registration

_TIME = "%Y-%m-%dT%H:%M:%S.%fZ"  # MicroTime, as Lease.spec.renewTime requires


def lease_name(key: ServerKey) -> str:
    """A valid object name for any key (TARS names and node addresses may hold characters names cannot)."""
    digest = hashlib.sha1(f"{key.application}.{key.server}@{key.node}".encode()).hexdigest()[:24]
    return f"tars-registration-{digest}"


def _micro(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime(_TIME)


def _epoch(text: str) -> float:
    return dt.datetime.strptime(text, _TIME).replace(tzinfo=dt.UTC).timestamp()


def row_to_lease(row: ServerRow, namespace: str) -> Obj:
    doc = dataclasses.asdict(row)
    doc.pop("last_heartbeat")
    doc["key"] = [row.key.application, row.key.server, row.key.node]
    return {
        "apiVersion": LEASE.api_version,
        "kind": LEASE.kind,
        "metadata": {
            "name": lease_name(row.key),
            "namespace": namespace,
            "labels": {LABEL: "true"},
            "annotations": {ROW_ANNOTATION: json.dumps(doc, sort_keys=True, separators=(",", ":"))},
        },
        "spec": {
            "holderIdentity": f"{row.key.application}.{row.key.server}@{row.key.node}",
            "renewTime": _micro(row.last_heartbeat or 0.0),
        },
    }


def row_from_lease(lease: Obj) -> ServerRow:
    """The row a Lease carries; ValueError when it was not written by a registry (or was edited by hand)."""
    try:
        doc: dict[str, Any] = json.loads(lease["metadata"]["annotations"][ROW_ANNOTATION])
        app, server, node = (str(part) for part in doc.pop("key"))
        adapters = [AdapterRow(**a) for a in doc.pop("adapters")]
        row = ServerRow(ServerKey(app, server, node), adapters=adapters, **doc)
        row.last_heartbeat = _epoch(str(lease["spec"]["renewTime"]))
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"Lease {lease.get('metadata', {}).get('name')}: not a registration ({e})") from None
    return row


class LeaseRegistrations:
    """The shared rows, by key; ``on_change(key)`` after a watch event changed one (any replica's write)."""

    def __init__(self, kube: Kube, namespace: str, on_change: Callable[[ServerKey], None]) -> None:
        self.kube = kube
        self.namespace = namespace
        self.on_change = on_change
        self.rows: dict[ServerKey, ServerRow] = {}
        self._renewed: dict[ServerKey, float] = {}  # key -> heartbeat time last written by this replica
        self.cache = WatchCache(kube, LEASE, namespace, LABEL, self._on_lease)

    def _on_lease(self, lease: Obj, kind: str) -> None:
        try:
            row = row_from_lease(lease)
        except ValueError as e:
            log.warning("%s", e)
            return
        if kind == "DELETED":
            self.rows.pop(row.key, None)
            self._renewed.pop(row.key, None)
        else:
            self.rows[row.key] = row
        self.on_change(row.key)

    async def put(self, row: ServerRow, *, changed: bool = True) -> None:
        """Keep ``row`` here at once, and in its Lease when it changed or its renewal is due."""
        self.rows[row.key] = row
        beat = row.last_heartbeat or 0.0
        if not changed and beat - self._renewed.get(row.key, float("-inf")) < RENEW_EVERY:
            return
        await self.kube.apply(LEASE, self.namespace, row_to_lease(row, self.namespace))
        self._renewed[row.key] = beat

    async def remove(self, key: ServerKey) -> bool:
        """Forget ``key`` here and delete its Lease; False when this replica did not know it."""
        known = self.rows.pop(key, None) is not None
        self._renewed.pop(key, None)
        try:
            await self.kube.delete(LEASE, self.namespace, lease_name(key))
        except ApiException as e:
            if e.status != 409:
                raise
        return known
