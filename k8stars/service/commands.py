"""A service as a command: the click options services share (``--host``, ``--port``, ``--endpoint``, ``--locator``,
``--node-name``, ``--namespace``, ``--kubeconfig``, ``--log-level``, the store options) and the one way a command
serves: :func:`serve_command`. Imports only click at module level: the CLI loads every command's options."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, NoReturn, Protocol, TypeVar

import click

if TYPE_CHECKING:
    from k8stars.service.lifecycle import Service
    from k8stars.service.options import ServiceOptions

F = TypeVar("F", bound=Callable[..., Any])
OptionsT = TypeVar("OptionsT", bound="ServiceOptions")
T = TypeVar("T")


class Decorator(Protocol):
    """What click.option gives: a decorator returning the function it is given."""

    def __call__(self, fn: F, /) -> F: ...


WHERE_REGISTERED = "(default: the endpoint's host, or this machine's IP when it is a wildcard)"


def fail(message: str, code: int) -> NoReturn:
    """``error: <message>`` on stderr, exit ``code`` (2: bad arguments, 1: it failed)."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def serve_command(
    service: Callable[[OptionsT], Service[OptionsT]], options: type[OptionsT], values: dict[str, Any]
) -> None:
    """Run ``service`` over the options the command's ``values`` give until SIGTERM or SIGINT, on uvloop when it is
    installed. A bad option exits 2, a service that cannot start (a port in use, a store it cannot open) 1."""
    from k8stars.service.lifecycle import setup_logging
    from k8stars.service.options import ServiceError
    from k8stars.tars.rpc.loop import run

    setup_logging(values.get("log_level") or "INFO")

    async def serve() -> None:  # built in the loop: the service's parts bind to it
        await service(options.from_cli(**values)).run()

    try:
        run(serve())
    except ServiceError as e:
        fail(str(e), 2)
    except (OSError, RuntimeError) as e:
        fail(str(e), 1)
    except KeyboardInterrupt:  # Ctrl-C before the loop's signal handlers were set: nothing started
        pass


def options(*decorators: Callable[[Any], Any]) -> Decorator:
    """Several click options as one decorator, listed in --help in the order given."""

    def decorate(fn: F) -> F:
        for option in reversed(decorators):
            fn = option(fn)
        return fn

    return decorate


def host_option(env: str, *, name: str = "--host", what: str = "") -> Decorator:
    return click.option(name, envvar=env, default="127.0.0.1", show_default=True,
                        help=f"Address {what or 'to listen on'}.")  # fmt: skip


def port_option(env: str, default: int | None, what: str, *, name: str = "--port") -> Decorator:
    return click.option(name, envvar=env, type=int, default=default, show_default=default is not None, help=what)


def endpoint_option(env: str, default: str, servant: str, *, name: str = "--endpoint") -> Decorator:
    return click.option(name, envvar=env, default=default, show_default=True, help=f"Endpoint of {servant}.")


def admin_option() -> Decorator:
    """``--admin-endpoint``: AdminObj's (shutdown, the tars.* commands), on a loopback address only."""
    return click.option("--admin-endpoint", envvar="K8STARS_ADMIN_ENDPOINT", default="tcp -h 127.0.0.1 -p 0",
                        show_default=True, help="Endpoint of AdminObj (shutdown, tars.* commands): loopback only; "
                        "port 0: any free one, logged at start-up.")  # fmt: skip


def processes_option() -> Decorator:
    """``--processes``: processes serving the service's adapters on their ports (one per core: max)."""

    def convert(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
        from k8stars.tars.rpc.processes import parse_processes  # the runtime loads when a service runs

        try:
            return None if value is None else parse_processes(value)
        except ValueError as e:
            raise click.BadParameter(str(e)) from None

    return click.option("--processes", envvar="K8STARS_PROCESSES", default=None, callback=convert,
                        help="Processes serving the TARS adapters, sharing their ports (max: one per core; "
                        "default 1). AdminObj, registration and HTTP stay in the first.")  # fmt: skip


def locator_option(servers: str) -> Decorator:
    return click.option("--locator", envvar="K8STARS_LOCATOR", default=None,
                        help=f"Registry QueryObj proxy to register {servers} with (default: none).")  # fmt: skip


def node_name_option(service: str, help: str) -> Decorator:
    """``--node-name``: the address registered; env K8STARS_<SERVICE>_NODE_NAME, else the pod's IP."""
    return click.option("--node-name", envvar=[f"K8STARS_{service.upper()}_NODE_NAME", "POD_IP"], default=None,
                        help=help)  # fmt: skip


def namespace_option(env: str | list[str], help: str) -> Decorator:
    return click.option("--namespace", "-n", envvar=env, default=None, help=help)


def kubeconfig_option(help: str = "Kubeconfig file (default: ~/.kube/config, else in-cluster).") -> Decorator:
    return click.option("--kubeconfig", envvar="KUBECONFIG", type=click.Path(dir_okay=False), default=None, help=help)


def log_level_option() -> Decorator:
    return click.option("--log-level", envvar="K8STARS_LOG_LEVEL", default="INFO", show_default=True)


def store_options(service: str, db_file: str, what: str, *, default: str | None = None) -> Decorator:
    """--store, --data-dir and --dsn of a service over a store, with its K8STARS_<SERVICE>_* env. Without a default
    the store is kubernetes when a namespace is given, else sqlite."""
    env = service.upper()
    when = f"default: {default}" if default else "default: kubernetes with --namespace, else sqlite"
    return options(
        click.option("--store", envvar=f"K8STARS_{env}_STORE", type=click.Choice(["kubernetes", "sqlite", "mysql"]),
                     default=default, help=f"Where {what} ({when})."),
        click.option("--data-dir", envvar="K8STARS_DATA_DIR", type=click.Path(file_okay=False), default=None,
                     help=f"Directory of the SQLite store's {db_file} (default ~/.local/share/k8stars)."),
        click.option("--dsn", envvar=f"K8STARS_{env}_DSN", default=None,
                     help="mysql://user:pass@host:port/db_tars for --store mysql."),
    )  # fmt: skip


def store_service_options(service: str, servant: str, endpoint: str, namespace_help: str, db_file: str,
                          what: str) -> Decorator:  # fmt: skip
    """The options of a TARS service over a store (``StoreServiceOptions``): ``--endpoint`` of ``servant``
    (``App.Server.Obj``), --locator, --node-name, --namespace (env K8STARS_<SERVICE>_NAMESPACE, else the pod's),
    --kubeconfig, --log-level and the store's."""
    obj = servant.rsplit(".", 1)[-1]
    return options(
        endpoint_option(f"K8STARS_{service.upper()}_ENDPOINT", endpoint, servant),
        admin_option(),
        locator_option(servant.rsplit(".", 1)[0]),
        node_name_option(service, f"Address registered for {obj} {WHERE_REGISTERED}."),
        namespace_option([f"K8STARS_{service.upper()}_NAMESPACE", "POD_NAMESPACE"], namespace_help),
        kubeconfig_option(),
        log_level_option(),
        store_options(service, db_file, what),
    )


def serves_itself(ctx: click.Context, options: dict[str, Any]) -> bool:
    """Whether a service group (config, notify) serves itself (no subcommand); its store options become the defaults
    of its subcommands over the SQL store."""
    ctx.obj = {k: options[k] for k in ("store", "data_dir", "dsn")}
    return ctx.invoked_subcommand is None


def on_sql_store(ctx: click.Context, store_type: Callable[..., Any], store: str | None, data_dir: str | None,
                  dsn: str | None, kubernetes: str) -> Callable[[Callable[[Any], Awaitable[T]]], T]:  # fmt: skip
    """For a subcommand over a service's SQL store: what runs ``action(store)`` on the store its options (else its
    group's) name, opened for the action. The kubernetes store exits 2 with ``kubernetes``: where its data is."""
    parent = ctx.obj or {}
    kind = store or parent.get("store") or "sqlite"
    if kind == "kubernetes":
        fail(kubernetes, 2)

    def run(action: Callable[[Any], Awaitable[T]]) -> T:
        async def go() -> T:
            sql = store_type(kind, data_dir=data_dir or parent.get("data_dir"), dsn=dsn or parent.get("dsn"))
            await sql.open()
            try:
                result: T = await action(sql)
                return result
            finally:
                await sql.close()

        return asyncio.run(go())

    return run
