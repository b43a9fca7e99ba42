"""The options every service shares, and their checks: the error a bad option raises (the CLI exits 2 with its
message), the log level, the address a service is reached at, the registry it registers with, its store."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from k8stars.sql import parse_dsn
from k8stars.tars.endpoint import Endpoint

STORES = ("kubernetes", "sqlite", "mysql")
# AdminObj (shutdown, tars.* commands) on loopback only, as TARS puts it on the `local` adapter: whoever reaches a
# service's public port must not be able to stop it. Port 0: any free one (logged at start-up).
ADMIN_ENDPOINT = "tcp -h 127.0.0.1 -p 0"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ServiceError(ValueError):
    """An option that cannot work; the message names it. Each service raises its own subclass."""


@dataclass(kw_only=True)
class ServiceOptions:
    """What every service has: its log level and the address others reach it at (default: where it listens)."""

    node_name: str = ""
    log_level: str = "INFO"
    admin_endpoint: str = ADMIN_ENDPOINT  # TARS services: AdminObj's, loopback only
    processes: int = 1  # TARS services: processes serving the adapters (--processes, k8stars.tars.rpc.processes)

    error: ClassVar[type[ServiceError]] = ServiceError

    @classmethod
    def from_cli(cls, **given: Any) -> Self:
        """From the CLI's values: None means not given; KUBECONFIG may be a path list (its first file)."""
        opts = {k: v for k, v in given.items() if v is not None}
        if opts.get("kubeconfig"):
            opts["kubeconfig"] = str(opts["kubeconfig"]).split(":")[0]
        return cls(**opts)

    def check(self) -> None:
        """Raise ``error`` naming the first option that cannot work."""

    def parse_endpoint(self, option: str, text: str, *, tcp: bool = False) -> Endpoint:
        """``text`` as an endpoint; ``tcp``: UDP refused (callers of report-style servants connect over TCP)."""
        try:
            ep = Endpoint.parse(text)
        except ValueError as e:
            raise self.error(f"{option}: {e}") from None
        if tcp and ep.protocol != "tcp":
            raise self.error(f"{option}: {text!r} must be a tcp endpoint")
        return ep

    def parsed_admin_endpoint(self) -> Endpoint:
        ep = self.parse_endpoint("--admin-endpoint", self.admin_endpoint, tcp=True)
        if not is_loopback(ep.host):
            raise self.error(f"--admin-endpoint {self.admin_endpoint!r}: AdminObj may stop the service, so it listens "
                             "on a loopback address only (e.g. tcp -h 127.0.0.1 -p 19385)")  # fmt: skip
        return ep

    def check_port(self, option: str, port: int | None, *, lowest: int = 0) -> None:
        if port is not None and not lowest <= port < 65536:
            raise self.error(f"{option} {port} is not a port")


@dataclass(kw_only=True)
class HttpServiceOptions(ServiceOptions):
    """A plain HTTP service (no TARS servant): where it listens; port 0 takes any free one."""

    host: str = "127.0.0.1"
    port: int = 0

    def check(self) -> None:
        self.check_port("--port", self.port)


@dataclass(kw_only=True)
class TarsServiceOptions(ServiceOptions):
    """A service of TARS servants, registered with the registry when ``locator`` names it."""

    locator: str = ""  # the registry's QueryObj proxy; empty: no self-registration

    def check(self) -> None:
        if self.locator and "@" not in self.locator:
            raise self.error(f"--locator {self.locator!r}: expected tars.tarsregistry.QueryObj@tcp -h HOST -p PORT")


@dataclass(kw_only=True)
class StoreServiceOptions(TarsServiceOptions):
    """A service over a store: ``kubernetes`` (a namespace's objects), or ``sqlite`` / ``mysql`` (a classic
    db_tars). Subclasses set ``error`` and ``namespace_env`` (named in the error when the namespace is missing)."""

    namespace: str = ""
    endpoint: str = ""
    kubeconfig: str | None = None
    store: str = ""  # kubernetes, sqlite or mysql; "": kubernetes with a namespace, else sqlite
    data_dir: str | None = None  # sqlite: the directory of its database file
    dsn: str | None = None  # mysql: mysql://user:pass@host:port/db_tars

    namespace_env: ClassVar[str] = ""

    @property
    def store_kind(self) -> str:
        return self.store or ("kubernetes" if self.namespace else "sqlite")

    def parsed_endpoint(self) -> Endpoint:
        return self.parse_endpoint("--endpoint", self.endpoint)

    def check(self) -> None:
        if self.store_kind not in STORES:
            raise self.error(f"--store {self.store_kind!r}: expected one of {', '.join(STORES)}")
        if self.store_kind == "kubernetes" and not self.namespace:
            raise self.error(f"--namespace is required with --store kubernetes (env {self.namespace_env} or "
                             "POD_NAMESPACE)")  # fmt: skip
        if self.store_kind == "mysql":
            if not self.dsn:
                raise self.error("--store mysql needs --dsn mysql://user:pass@host:port/db_tars")
            try:
                parse_dsn(self.dsn)
            except ValueError as e:
                raise self.error(f"--dsn: {e}") from None
        self.parsed_endpoint()
        super().check()
