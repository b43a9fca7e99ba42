"""Answers AdmissionRequests: each kind's hooks (a module of this package) picked by the request's kind."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from k8stars.kube.client import Kube, Obj

from .. import tconfig as lifecycle
from . import scale, taccount, tconfig, timage, tserver, ttemplate, ttree
from .context import Context, kind, new_object, operation
from .lookups import Lookups
from .owned import OWNED_KINDS, check_owned
from .types import check_types, type_errors

Mutator = Callable[[Context, Obj], Coroutine[Any, Any, list[Obj]]]
Validator = Callable[[Context, Obj], Coroutine[Any, Any, list[str]]]
DeletionGuard = Callable[[Context, Obj], Coroutine[Any, Any, str | None]]

# kind → its hook on CREATE and UPDATE (mutating, validating) and on DELETE.
MUTATORS: dict[str, Mutator] = {
    "TServer": tserver.mutate,
    "TConfig": tconfig.mutate,
    "TTemplate": ttemplate.mutate,
    "TTree": ttree.mutate,
    "TImage": timage.mutate,
    "TAccount": taccount.mutate,
}
VALIDATORS: dict[str, Validator] = {
    "TServer": tserver.validate,
    "TConfig": tconfig.validate,
    "TTemplate": ttemplate.validate,
    "TTree": ttree.validate,
}
DELETION_GUARDS: dict[str, DeletionGuard] = {
    "TTemplate": ttemplate.deletion_refusal,
    "TConfig": tconfig.deletion_refusal,
}


class Admission:
    """Answers AdmissionReviews; `kube` (optional) is used for checks that read other objects (through caches that
    `start()` starts); `owners` are the usernames that may do what users may not (the operator's ServiceAccount):
    deactivate TConfigs, change their framework labels, change the StatefulSets/DaemonSets/Services the operator
    owns; `tconfig_guard`: seconds an activated TConfig cannot be deleted after its activation; `namespace`: the
    one namespace the operator serves (its caches watch only that one), None for all."""

    def __init__(
        self,
        kube: Kube | None = None,
        owners: set[str] | None = None,
        tconfig_guard: float = lifecycle.DEFAULT_GUARD_SECONDS,
        namespace: str | None = None,
    ) -> None:
        lookups = Lookups(kube, namespace) if kube is not None else None
        self.context = Context(lookups, owners or set(), tconfig_guard)

    def start(self) -> None:
        """Start filling the caches (lookups go to the API until they have synced)."""
        if self.context.lookups is not None:
            self.context.lookups.start()

    async def stop(self) -> None:
        if self.context.lookups is not None:
            await self.context.lookups.stop()

    async def validate(self, request: Obj) -> tuple[bool, str]:
        """(allowed, the refusal's message)."""
        what = kind(request)
        if what in OWNED_KINDS:
            refusal = check_owned(request, self.context.owners)
            return refusal is None, refusal or ""
        if operation(request) == "DELETE":
            guard = DELETION_GUARDS.get(what)
            refusal = await guard(self.context, request) if guard else None
            return refusal is None, refusal or ""
        validator = VALIDATORS.get(what)
        errors = type_errors(new_object(request)) if validator else []  # hooks read fields of the schema's types
        if validator and not errors:
            errors = await validator(self.context, request)
        if errors:
            name = f"{what} {new_object(request).get('metadata', {}).get('name', '')}".strip()
            return False, f"{name} is invalid: " + "; ".join(errors)
        return True, ""

    async def mutate(self, request: Obj) -> list[Obj]:
        """The JSON patch to apply (empty: none); Refused says why the request is refused instead."""
        if operation(request) not in ("CREATE", "UPDATE"):
            return []
        if scale.is_tserver_scale(request):
            return await scale.mutate(self.context, request)
        mutator = MUTATORS.get(kind(request))
        if mutator is None:
            return []
        check_types(new_object(request))  # Refused: a field of the wrong type, named
        return await mutator(self.context, request)
