"""Who sends a request: the operator (its ServiceAccount), Kubernetes' own controllers, or a user."""

from __future__ import annotations

import logging

from k8stars.kube.client import ApiException, Kube

log = logging.getLogger("k8stars.operator.webhook")

SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"


def is_system_user(username: str) -> bool:
    """Kubernetes' own controllers (garbage collector, namespace, StatefulSet, ... controllers)."""
    return username.startswith("system:serviceaccount:kube-system:") or username in (
        "system:kube-controller-manager",
        "system:kube-scheduler",
        "system:apiserver",
    )


def is_service_account(username: str) -> bool:
    parts = username.split(":")
    return username.startswith(SERVICE_ACCOUNT_PREFIX) and len(parts) == 4 and all(parts)


async def whoami(kube: Kube) -> str:
    """The username the apiserver sees for this client (SelfSubjectReview)."""
    review = await kube.request(
        "POST",
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        body={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
    )
    return str(review["status"]["userInfo"]["username"])


async def operator_identity(kube: Kube, account: str | None) -> tuple[Kube, set[str]]:
    """The client the operator acts with, and the usernames the webhooks let do what users may not (deactivate a
    TConfig, set its framework labels, change the objects the operator owns): only the operator's ServiceAccount, as
    K8SFramework trusts only its controller's.

    `account` (system:serviceaccount:<namespace>:<name>): the one trusted; when the client's own identity is another
    (a person's kubeconfig), the operator acts as `account` (impersonation, which that person must be allowed), so
    running the operator never gives the person its rights. Without `account`: the client's identity when it is a
    ServiceAccount (the operator in its pod), else nobody."""
    me = await whoami(kube)
    if account is None:
        if is_service_account(me):
            return kube, {me}
        log.warning(
            "the operator runs as %s, not as a ServiceAccount: nobody may deactivate TConfigs or change framework "
            "labels and owned objects (the operator's own TConfig deactivations are refused too); pass "
            "--operator-account system:serviceaccount:<namespace>:<name> to act as that account",
            me,
        )
        return kube, set()
    if not is_service_account(account):
        raise ValueError(f"operator account {account!r} is not system:serviceaccount:<namespace>:<name>")
    if me == account:
        return kube, {account}
    # The apiserver gives an impersonated ServiceAccount its groups (system:serviceaccounts, ...) by itself.
    acting = Kube(kube.api, kube.field_manager, {**kube.headers, "Impersonate-User": account})
    try:
        seen = await whoami(acting)
    except ApiException as exc:
        if exc.status != 403:
            raise
        raise PermissionError(
            f"{me} may not act as {account}: grant it `impersonate` on that serviceaccount, or run the operator "
            "with that ServiceAccount's credentials"
        ) from None
    log.info("the operator (run by %s) acts as %s", me, seen)
    return acting, {account}
