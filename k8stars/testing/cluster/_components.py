"""How each part of the control plane runs: the command lines of etcd, kube-apiserver, kube-controller-manager,
kube-scheduler, kwok and the pod reaper, and the kwok nodes (fake nodes whose pods get 127.64.N.x IPs)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from . import node
from ._paths import Layout

if TYPE_CHECKING:
    from .launcher import Cluster, ClusterOptions

FAKE_NODE_LABEL = "k8stars.io/fake-node"
# kwok takes charge only of nodes carrying this annotation.
KWOK_ANNOTATION = ("kwok.x-k8s.io/node", "fake")
# Pod IPs: kwok hands out addresses from each node's podCIDR 127.64.N.0/24 (falling back to this
# range); node IPs are 127.63.0.N. All loopback, so a test process can stand in for a pod.
POD_CIDR = "127.64.0.0/16"
NODE_IP_PREFIX = "127.63.0."
# Only data (no kube-proxy routes it), but loopback too, so that even a client dialing a
# ClusterIP by mistake stays on this machine. The apiserver accepts a loopback range.
SERVICE_CIDR = "127.96.0.0/16"

# The endpoint controllers reject loopback pod IPs and retry forever; k8stars reads pods and
# TEndpoints instead. node-ipam would hand out podCIDRs from --cluster-cidr; ours are preset.
KCM_CONTROLLERS = (
    "*,-node-ipam-controller,-endpoints-controller,-endpointslice-controller,-endpointslice-mirroring-controller"
)
# A real node alone (no kwok nodes) has only real pod IPs: Services get their Endpoints/EndpointSlices as anywhere.
KCM_CONTROLLERS_REAL = "*,-node-ipam-controller"


def node_manifest(index: int) -> dict[str, Any]:
    """Fake node N: podCIDR 127.64.N.0/24 and InternalIP 127.63.0.N (1 <= N <= 254)."""
    name = f"k8stars-node-{index}"
    resources = {"cpu": "32", "memory": "64Gi", "pods": "110"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {KWOK_ANNOTATION[0]: KWOK_ANNOTATION[1]},
            "labels": {
                FAKE_NODE_LABEL: "true",
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
            },
        },
        "spec": {"podCIDR": f"127.64.{index}.0/24", "podCIDRs": [f"127.64.{index}.0/24"]},
        # Kept on create (as a kubelet's registration is); kwok's stage only adds conditions.
        "status": {
            "addresses": [
                {"type": "InternalIP", "address": f"{NODE_IP_PREFIX}{index}"},
                {"type": "Hostname", "address": name},
            ],
            "allocatable": resources,
            "capacity": resources,
        },
    }


def etcd_argv(cluster: Cluster, layout: Layout) -> list[str]:
    client = f"http://127.0.0.1:{cluster.ports.etcd_client}"
    peer = f"http://127.0.0.1:{cluster.ports.etcd_peer}"
    return [
        str(layout.binary("etcd")),
        "--name=k8stars",
        f"--data-dir={cluster.workdir / 'etcd'}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=k8stars={peer}",
        # Test data is throwaway: skipping fsync makes every write much cheaper.
        "--unsafe-no-fsync=true",
        "--quota-backend-bytes=2147483648",
        "--log-level=warn",
    ]


def apiserver_argv(cluster: Cluster, layout: Layout, options: ClusterOptions) -> list[str]:
    pki = cluster.workdir / "pki"
    return [
        str(layout.binary("kube-apiserver")),
        f"--etcd-servers=http://127.0.0.1:{cluster.ports.etcd_client}",
        "--bind-address=127.0.0.1",
        f"--secure-port={cluster.ports.apiserver}",
        # Loopback is accepted as advertise address only with no endpoint reconciler; otherwise the
        # apiserver would advertise (and publish) the machine's default-route address.
        "--advertise-address=127.0.0.1",
        "--endpoint-reconciler-type=none",
        f"--tls-cert-file={pki / 'apiserver.crt'}",
        f"--tls-private-key-file={pki / 'apiserver.key'}",
        f"--client-ca-file={pki / 'ca.crt'}",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--service-account-key-file={pki / 'sa.pub'}",
        f"--service-account-signing-key-file={pki / 'sa.key'}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--authorization-mode=RBAC",
        "--allow-privileged=true",
        "--enable-admission-plugins=MutatingAdmissionWebhook,ValidatingAdmissionWebhook",
        "--profiling=false",
        f"--cert-dir={pki}",
        *(node.apiserver_args(pki) if options.kubelet else []),
        *options.extra_apiserver_args,
    ]


def kcm_argv(cluster: Cluster, layout: Layout, options: ClusterOptions) -> list[str]:
    pki = cluster.workdir / "pki"
    kc = cluster.workdir / "kcm.kubeconfig" if options.kubelet else cluster.kubeconfig
    return [
        str(layout.binary("kube-controller-manager")),
        f"--kubeconfig={kc}",
        f"--authentication-kubeconfig={kc}",
        f"--authorization-kubeconfig={kc}",
        "--leader-elect=false",
        "--bind-address=127.0.0.1",
        f"--secure-port={cluster.ports.kcm}",
        f"--controllers={KCM_CONTROLLERS_REAL if options.kubelet and not options.nodes else KCM_CONTROLLERS}",
        f"--service-account-private-key-file={pki / 'sa.key'}",
        f"--root-ca-file={pki / 'ca.crt'}",
        # Lets CSR-based tests get certificates signed by the cluster CA.
        f"--cluster-signing-cert-file={pki / 'ca.crt'}",
        f"--cluster-signing-key-file={pki / 'ca.key'}",
        "--use-service-account-credentials=false",
        # Tests create and delete in bursts; the default 20 QPS makes controllers lag behind.
        "--kube-api-qps=100",
        "--kube-api-burst=200",
        *options.extra_kcm_args,
    ]


def scheduler_argv(cluster: Cluster, layout: Layout) -> list[str]:
    kc = cluster.kubeconfig
    return [
        str(layout.binary("kube-scheduler")),
        f"--kubeconfig={kc}",
        f"--authentication-kubeconfig={kc}",
        f"--authorization-kubeconfig={kc}",
        "--leader-elect=false",
        "--bind-address=127.0.0.1",
        f"--secure-port={cluster.ports.scheduler}",
    ]


def kwok_argv(cluster: Cluster, layout: Layout) -> list[str]:
    # No --server-address: kwok then opens no listener at all.
    return [
        str(layout.binary("kwok")),
        f"--kubeconfig={cluster.kubeconfig}",
        f"--config={cluster.workdir / 'kwok-stages.yaml'}",
        "--manage-all-nodes=false",
        f"--manage-nodes-with-annotation-selector={KWOK_ANNOTATION[0]}={KWOK_ANNOTATION[1]}",
        f"--cidr={POD_CIDR}",
        f"--node-ip={NODE_IP_PREFIX}1",
        "--node-lease-duration-seconds=40",
    ]


def pod_reaper_argv(cluster: Cluster) -> list[str]:
    # Ends the graceful deletions on kwok's nodes, by uid (podreaper.py says why not kwok itself).
    return [sys.executable, "-m", "k8stars.testing.cluster.podreaper", str(cluster.kubeconfig)]
