"""What every kind's admission hooks get: the context (API client, the operator's identities, settings) and
accessors of an AdmissionRequest."""

from __future__ import annotations

from dataclasses import dataclass, field

from k8stars.kube.client import Obj

from .. import tconfig as lifecycle
from .lookups import Lookups


class Refused(Exception):
    """A request refused with a message for its author (not a failure of the webhook: nothing is logged)."""


@dataclass
class Context:
    """`lookups` (optional) serves the checks that read other objects; `owners` are the usernames of the operator (its
    ServiceAccount), which may do what users may not; `tconfig_guard`: seconds an activated TConfig cannot be
    deleted after its activation."""

    lookups: Lookups | None = None
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
