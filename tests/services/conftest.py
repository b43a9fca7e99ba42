"""Fixtures of the framework-service tests: the real control plane (docs/k8s-cluster.md) — the cluster, an admin
client with the k8s.tars.io CRDs, and a fresh namespace per test — and a real MariaDB for the SQL config store."""

from k8stars.testing.cluster.pytest_plugin import k8s_cluster, kube, namespace
from k8stars.testing.mariadb import mariadb

__all__ = ["k8s_cluster", "kube", "mariadb", "namespace"]
