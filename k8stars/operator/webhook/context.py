"""What every kind's admission hooks get: the context (API client, the operator's identities, settings) and
accessors of an AdmissionRequest."""

from __future__ import annotations

from dataclasses import dataclass, field

from k8stars.kube.client import Kube, Obj

from .. import tconfig as lifecycle


@dataclass
class Context:
    """`kube` (optional) serves the checks that read other objects; `owners` are the usernames of the operator (its
    own identity), which may change what users may not; `tconfig_guard`: seconds an activated TConfig cannot be
    deleted after its activation."""

    kube: Kube | None = None
    owners: set[str] = field(default_factory=set)
    tconfig_guard: float = lifecycle.DEFAULT_GUARD_SECONDS


def operation(request: Obj) -> str:
    return str(request.get("operation") or "")


def kind(request: Obj) -> str:
    return str((request.get("kind") or {}).get("kind") or "")


def namespace(request: Obj) -> str:
    return str(request.get("namespace") or "")


def username(request: Obj) -> str:
    return str((request.get("userInfo") or {}).get("username", ""))


def new_object(request: Obj) -> Obj:
    obj: Obj = request.get("object") or {}
    return obj


def old_object(request: Obj) -> Obj | None:
    """The object before an UPDATE (None on CREATE)."""
    return request.get("oldObject") if operation(request) == "UPDATE" else None
