"""Fixtures of the framework-service tests on the real control plane (docs/k8s-cluster.md): the cluster, an admin
client with the k8s.tars.io CRDs, and a fresh namespace per test."""

from k8stars.testing.cluster.pytest_plugin import k8s_cluster, kube, namespace

__all__ = ["k8s_cluster", "kube", "namespace"]
