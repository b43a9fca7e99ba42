"""The registry's own Prometheus metrics, in a collector registry of its own (several registries can live in one
test process without clashing over the global one)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from k8stars.registry.directory import Directory


class RegistryMetrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        ProcessCollector(registry=r)  # RSS, CPU seconds, open fds
        PlatformCollector(registry=r)
        GCCollector(registry=r)
        self.lookups = Counter("k8stars_registry_lookups", "QueryF lookups answered", ["method"], registry=r)
        self.calls = Counter(
            "k8stars_registry_calls", "Registry servant calls by result (ok, bad_request, ...)", ["method", "result"],
            registry=r,
        )  # fmt: skip
        self.store_errors = Counter("k8stars_registry_store_errors", "Store operations that failed", registry=r)
        self.expired = Counter(
            "k8stars_registry_expired_servers", "Servers turned inactive by heartbeat loss", registry=r
        )
        self.removed = Counter("k8stars_registry_removed_servers", "Servers removed after the retention", registry=r)
        self.reloads = Counter(
            "k8stars_registry_reloads", "Cache refreshes from the store (incremental or full)", ["kind"], registry=r
        )
        self.seq = Gauge("k8stars_registry_change_seq", "Newest store change this replica has applied", registry=r)
        self.servants = Gauge("k8stars_registry_servants", "Servant names with at least one endpoint", registry=r)
        self.servers = Gauge("k8stars_registry_servers", "Registered server instances", registry=r)
        self.endpoints = Gauge("k8stars_registry_endpoints", "Endpoints by state", ["state"], registry=r)

    def watch(self, directory: Directory) -> None:
        """Size gauges read the directory when scraped."""
        self.servants.set_function(lambda: len(directory.views))
        self.servers.set_function(lambda: len(directory.servers))
        self.endpoints.labels("active").set_function(lambda: directory.active_count)
        self.endpoints.labels("inactive").set_function(lambda: directory.inactive_count)
