"""K8SFramework's pod model on real pods (containerd + kubelet: the `k8s_real_cluster` fixture; root only, skipped with
the reason elsewhere): the node and base images from our builder, a user's release built on the cppbase, deployed by
TServer YAML, with the operator and the registry (`--store kubernetes`) running on the host."""

from __future__ import annotations

import pytest

from k8stars.testing.cluster.pytest_plugin import k8s_real_cluster

__all__ = ["k8s_real_cluster"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "realpods: real pods (containerd + kubelet, root only); deselect with -m 'not realpods'"
    )
