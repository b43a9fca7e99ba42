"""What a TServer's pods may get: never more than its author could get by creating pods.

The operator creates the pods of a TServer with its own rights, so a user allowed TServers but not pods could have
had, through it, a pod on the host's network or IPC namespace, with host ports, the host's files (hostPath) or
another ServiceAccount's token (issue 16, item 3). A TServer asking for any of these is taken only from an author
who may create pods in its namespace (then the pod is one they could create themselves); one reading a Secret (a
secret mount, envFrom or an env secretKeyRef) only from an author who may get that Secret. Asked of the apiserver
with LocalSubjectAccessReviews (a one-namespace operator needs no cluster-wide right for them); on UPDATE only what
the change adds is checked, so an unprivileged edit of a server an administrator set up still goes through."""

from __future__ import annotations

from typing import Any

from k8stars.kube.client import Obj, Resource

from .context import Context, namespace, new_object, old_object, username
from .identity import is_system_user

LOCAL_SAR = Resource("authorization.k8s.io", "v1", "localsubjectaccessreviews", "LocalSubjectAccessReview")


def host_privileges(spec: Obj) -> set[str]:
    """The features of ``spec`` a pod gets only when its author may create pods: named for the refusal."""
    k8s: Obj = spec.get("k8s") or {}
    found = set()
    if k8s.get("hostNetwork"):
        found.add("spec.k8s.hostNetwork")
    if k8s.get("hostIPC"):
        found.add("spec.k8s.hostIPC")
    if k8s.get("hostPorts"):
        found.add("spec.k8s.hostPorts")
    account = k8s.get("serviceAccount")
    if account and account != "default":
        found.add(f"spec.k8s.serviceAccount {account}")
    for mount in k8s.get("mounts") or []:
        source = (mount or {}).get("source") or {}
        if "hostPath" in source:
            found.add(f"spec.k8s.mounts {mount.get('name')} (hostPath {(source.get('hostPath') or {}).get('path')})")
    return found


def secrets_read(spec: Obj) -> set[str]:
    """The Secrets the pods of ``spec`` read (mounted, envFrom, env secretKeyRef)."""
    k8s: Obj = spec.get("k8s") or {}
    names: set[Any] = set()
    for mount in k8s.get("mounts") or []:
        names.add((((mount or {}).get("source") or {}).get("secret") or {}).get("secretName"))
    for source in k8s.get("envFrom") or []:
        names.add(((source or {}).get("secretRef") or {}).get("name"))
    for env in k8s.get("env") or []:
        names.add((((env or {}).get("valueFrom") or {}).get("secretKeyRef") or {}).get("name"))
    return {str(n) for n in names if n}


async def may(ctx: Context, request: Obj, verb: str, resource: str, name: str = "") -> bool:
    """Whether the request's author may ``verb`` ``resource`` (``name``) in its namespace."""
    assert ctx.lookups is not None
    user: Obj = request.get("userInfo") or {}
    attributes = {"namespace": namespace(request), "verb": verb, "group": "", "resource": resource}
    if name:
        attributes["name"] = name
    review: Obj = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "LocalSubjectAccessReview",
        "metadata": {"namespace": namespace(request)},
        "spec": {"resourceAttributes": attributes, "user": user.get("username", ""), "uid": user.get("uid", ""),
                 "groups": user.get("groups") or [], "extra": user.get("extra") or {}},
    }  # fmt: skip
    answer = await ctx.lookups.kube.create(LOCAL_SAR, namespace(request), review)
    return bool((answer.get("status") or {}).get("allowed"))


async def refusals(ctx: Context, request: Obj) -> list[str]:
    """Why the author may not have the pods this TServer asks for (empty: they may)."""
    who = username(request)
    if ctx.lookups is None or who in ctx.owners or is_system_user(who):
        return []
    spec: Obj = new_object(request).get("spec") or {}
    old: Obj = (old_object(request) or {}).get("spec") or {}
    host = sorted(host_privileges(spec) - host_privileges(old))
    secrets = sorted(secrets_read(spec) - secrets_read(old))
    if not host and not secrets:
        return []
    if await may(ctx, request, "create", "pods"):
        return []  # they could create that pod themselves
    ns = namespace(request)
    errors = []
    if host:
        errors.append(
            f"{', '.join(host)}: only someone who may create pods in namespace {ns} may ask for that, and {who} may "
            "not (the operator would create such a pod for them); ask an administrator, or leave it out"
        )
    unreadable = [s for s in secrets if not await may(ctx, request, "get", "secrets", s)]
    if unreadable:
        errors.append(
            f"Secret {', '.join(unreadable)}: {who} may not read it, so its pods may not either (grant get on the "
            "Secret, or leave it out)"
        )
    return errors
