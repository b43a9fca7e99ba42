"""A real Kubernetes control plane on 127.0.0.1 for tests (etcd, kube-apiserver, KCM, scheduler,
kwok), built from pinned upstream Go modules by tools/k8s/build.sh.

    python -m k8stars.testing.cluster build|up|env|status|down
    eval "$(python -m k8stars.testing.cluster env)"

Tests use the session fixture `k8s_cluster` from `k8stars.testing.cluster.pytest_plugin`; `k8s_real_cluster` (or
`up --kubelet`) adds a real node (containerd + kubelet, pods on a bridge) and a local OCI registry.
"""

from . import hoststate, pods
from ._components import node_manifest
from .certs import CertAuthority, WebhookTLS, make_webhook_tls
from .launcher import Cluster, ClusterError, ClusterOptions, ensure_binaries, start_cluster
from .waiting import eventually

__all__ = [
    "CertAuthority",
    "Cluster",
    "ClusterError",
    "ClusterOptions",
    "WebhookTLS",
    "ensure_binaries",
    "eventually",
    "hoststate",
    "make_webhook_tls",
    "node_manifest",
    "pods",
    "start_cluster",
]
