"""Who sends a request: the operator itself (learnt with a SelfSubjectReview) or Kubernetes' own controllers."""

from __future__ import annotations

from k8stars.kube.client import Kube


def is_system_user(username: str) -> bool:
    """Kubernetes' own controllers (garbage collector, namespace, StatefulSet, ... controllers)."""
    return username.startswith("system:serviceaccount:kube-system:") or username in (
        "system:kube-controller-manager",
        "system:kube-scheduler",
        "system:apiserver",
    )


async def whoami(kube: Kube) -> str:
    """The username the apiserver sees for this client (SelfSubjectReview)."""
    review = await kube.request(
        "POST",
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        body={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
    )
    return str(review["status"]["userInfo"]["username"])
