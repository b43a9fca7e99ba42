"""AdminReg's authorization checks over TAccounts, with K8SFramework's rules: a user (``uid``, the TAccount's
username) holds a role with a flag (``spec.authorization[{role, flag}]``).

- admin: the ``admin`` role, whatever its flag.
- operator of App.Server: admin, or ``operator`` with flag ``*``, ``App``, ``App.*`` or ``App.Server``.
- developer of App.Server: the same with ``developer`` or ``operator``.

A ticket is one of the account's live API tokens (the console's tokens): ``checkTicket`` answers the username of the
activated account holding it, or an empty uid ("log in again")."""

from __future__ import annotations

from k8stars.kube.accounts import by_token, find
from k8stars.kube.client import Kube, Obj

DEVELOPER_ROLES = frozenset({"developer", "operator"})
OPERATOR_ROLES = frozenset({"operator"})


def grants(account: Obj | None) -> list[tuple[str, str]]:
    """(role, flag) of each authorization of ``account``."""
    if account is None:
        return []
    spec = account.get("spec") or {}
    return [(str(g.get("role") or ""), str(g.get("flag") or "")) for g in spec.get("authorization") or []]


def holds(granted: list[tuple[str, str]], roles: frozenset[str], app: str, server: str) -> bool:
    """K8SFramework's AdminReg rule for ``roles`` on ``app``/``server`` (``server`` empty: the app itself)."""
    for role, flag in granted:
        if role == "admin":
            return True
        if role not in roles:
            continue
        if flag == "*" or flag in (app, f"{app}.*") or (server and flag == f"{app}.{server}"):
            return True
    return False


def is_admin(granted: list[tuple[str, str]]) -> bool:
    return any(role == "admin" for role, _ in granted)


class Accounts:
    """TAccounts of ``namespace`` (``kube`` None: no accounts, every check fails with -1)."""

    def __init__(self, kube: Kube | None, namespace: str) -> None:
        self.kube = kube
        self.namespace = namespace

    async def grants(self, uid: str) -> list[tuple[str, str]]:
        assert self.kube is not None
        return grants(await find(self.kube, self.namespace, uid)) if uid else []

    async def ticket_user(self, ticket: str) -> str:
        assert self.kube is not None
        account = await by_token(self.kube, self.namespace, ticket)
        return str((account.get("spec") or {}).get("username") or "") if account else ""
