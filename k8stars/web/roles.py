"""Who may do what: K8SFramework's TAccount ``spec.authorization[{role, flag}]``. A flag names where a role holds:
``*`` (or empty) everywhere, ``App`` every server of an app, ``App.Server`` one server. Roles rank developer <
operator < admin; each action needs a rank where it acts. Checked on the server for every request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from k8stars.kube.client import Obj

RANKS: Final = {"developer": 1, "operator": 2, "admin": 3}

# The rank each action needs where it acts.
VIEW: Final = "view"
CONFIG: Final = "config"  # new config versions, activation
SCALE: Final = "scale"
PUBLISH: Final = "publish"  # release and rollback
RESTART: Final = "restart"
COMMAND: Final = "command"  # AdminObj commands to the pods (tars.setloglevel, tars.loadconfig, custom)
ACCOUNTS: Final = "accounts"  # needs admin everywhere
TEMPLATES: Final = "templates"  # editing TTemplates (every server using one changes): admin everywhere
NODES: Final = "nodes"  # node labels (which nodes serve the namespace, abilities): admin everywhere
EDIT: Final = "edit"  # a TServer's servants, k8s settings; creating one (for an app: operator of the app)
FRAMEWORK: Final = "framework"  # the TFrameworkConfig (node image, registries, record limits): admin everywhere
NEEDS: Final = {VIEW: 1, CONFIG: 1, SCALE: 2, PUBLISH: 2, RESTART: 2, COMMAND: 2, EDIT: 2, ACCOUNTS: 3, TEMPLATES: 3,
                NODES: 3, FRAMEWORK: 3}  # fmt: skip


class Forbidden(Exception):
    """An action the user's roles do not allow; the message says which role it needs."""


class NotFound(Exception):
    """Nothing of that name the user may see (a name the user has no role for reads the same: none is disclosed)."""


def covers(flag: str, app: str, server: str) -> bool:
    """Whether a grant with ``flag`` holds for ``app``/``server`` (server empty: the app itself)."""
    flag = flag.strip()
    if flag in ("", "*"):
        return True
    if "." in flag:
        f_app, f_server = flag.split(".", 1)
        return f_app == app and f_server in ("*", server) and bool(server)
    return flag == app


@dataclass(frozen=True)
class User:
    username: str
    grants: tuple[tuple[str, str], ...]  # (role, flag)

    @classmethod
    def of(cls, account: Obj) -> User:
        spec = account.get("spec") or {}
        grants = tuple(
            (str(g.get("role", "")), str(g.get("flag", "")))
            for g in spec.get("authorization") or []
            if g.get("role") in RANKS
        )
        return cls(str(spec.get("username", "")), grants)

    def rank(self, app: str = "", server: str = "") -> int:
        """The highest rank the user holds for ``app``/``server``; both empty: everywhere (a global grant)."""
        if not app:
            return max((RANKS[r] for r, f in self.grants if f.strip() in ("", "*")), default=0)
        return max((RANKS[r] for r, f in self.grants if covers(f, app, server)), default=0)

    def can(self, action: str, app: str = "", server: str = "") -> bool:
        return self.rank(app, server) >= NEEDS[action]

    def may_see_any(self, app: str) -> bool:
        """Whether a grant reaches into ``app`` (one of its servers is enough to list the app in the tree)."""
        return any(f.strip() in ("", "*") or f.split(".", 1)[0] == app for _, f in self.grants)

    @property
    def may_create(self) -> bool:
        """Whether some app is the user's to add servers to (edit rank everywhere or for a whole app)."""
        return any(RANKS[r] >= NEEDS[EDIT] and "." not in f for r, f in self.grants)

    @property
    def is_admin(self) -> bool:
        return self.can(ACCOUNTS)

    def need(self, action: str, app: str = "", server: str = "") -> None:
        if not self.can(action, app, server):
            where = f"{app}.{server}" if server else app or "everywhere"
            role = next(r for r, n in RANKS.items() if n == NEEDS[action])
            raise Forbidden(f"{action} needs the {role} role for {where}")
