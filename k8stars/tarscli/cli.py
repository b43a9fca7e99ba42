"""``tarscli``: the agent inside every TARS pod. Every option is a K8STARS environment variable and a flag.

Imports are kept inside the commands: the readiness probe runs this every few seconds, and the supervisor stays
resident in every pod, so neither loads more than it uses.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from k8stars import __version__

F = TypeVar("F", bound=Callable[..., Any])
if TYPE_CHECKING:
    _ParamType = click.ParamType[float]  # generic in the stubs of click >= 8.2 only
else:
    _ParamType = click.ParamType
CONTEXT: dict[str, Any] = {"help_option_names": ["-h", "--help"], "show_default": True, "max_content_width": 118}


class Duration(_ParamType):
    """K8STARS durations: 500ms, 30s, 5m, 1h, 1d; "" or 0 = 0."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, int | float):
            return float(value)
        from k8stars.tarscli.env import parse_duration

        try:
            return parse_duration(str(value))
        except ValueError as e:
            self.fail(str(e), param, ctx)


DURATION = Duration()


def _opt(flag: str, env: str, help_text: str, **kw: Any) -> Callable[[F], F]:
    return click.option(flag, envvar=env, show_envvar=True, help=help_text, **kw)


def path_option(f: F) -> F:
    return _opt("--tars-path", "TARS_PATH", "Root of bin/, conf/, log/ and data/.", default="/tars")(f)


def env_options(f: F) -> F:
    """$TARS_PATH, pod IP, namespace and port range: the commands that generate a configuration."""
    for deco in reversed([
        _opt("--tars-path", "TARS_PATH", "Root of bin/, conf/, log/ and data/.", default="/tars"),
        _opt("--pod-ip", "POD_IP", "The pod IP (node name and adapter host); default: the hostname's address."),
        _opt("--namespace", "TARS_NAMESPACE", "Replaces ${namespace} in the locator.", default="tars-system"),
        _opt("--rand-port-min", "TARS_RAND_PORT_MIN", "Lowest port for ${random_port}.", type=int, default=13000),
        _opt("--rand-port-max", "TARS_RAND_PORT_MAX", "Highest port for ${random_port}.", type=int, default=16000),
    ]):  # fmt: skip
        f = deco(f)
    return f


def genconf_options(f: F) -> F:
    for deco in reversed([
        _opt("--application", "TARS_APPLICATION", "Application name (default: _server_meta.yaml)."),
        _opt("--server", "TARS_SERVER", "Server name (default: _server_meta.yaml)."),
        _opt("--set-id", "TARS_SET_ID", "Set division name.area.group (default: _server_meta.yaml)."),
        _opt("--locator", "TARS_LOCATOR", "Registry QueryObj proxy (default: _server_meta.yaml, else "
             "tars.tarsregistry.QueryObj@tcp -h tars-registry.${namespace}.svc.cluster.local -p 17890)."),
        _opt("--build-server", "TARS_BUILD_SERVER", "Name of the binary and of conf/<name>.conf (default: server)."),
        _opt("--merge-conf", "TARS_MERGE_CONF", "A TARS config file merged over the generated one (order and "
             "comments kept)."),
        _opt("--ep-uptime", "TARS_EP_UPTIME", "refresh-endpoint-interval: a duration (60s), or a bare number of "
             "milliseconds as in K8STARS."),
    ]):  # fmt: skip
        f = deco(f)
    return f


def make_env(o: dict[str, Any]) -> Any:
    from k8stars.tarscli.env import TarsEnv

    if "pod_ip" not in o:  # hzcheck, prestop, notify: they read what genconf resolved, the IP included
        return TarsEnv(Path(o["tars_path"]), "")
    try:
        return TarsEnv.create(o["tars_path"], o["pod_ip"], o["namespace"], o["rand_port_min"], o["rand_port_max"])
    except ValueError as e:
        raise click.ClickException(str(e)) from None


def make_genconf_options(o: dict[str, Any]) -> Any:
    from k8stars.tarscli.genconf import GenconfOptions

    return GenconfOptions(o["application"], o["server"], o["set_id"], o["locator"], o["build_server"],
                          o["merge_conf"], o["ep_uptime"])  # fmt: skip


def _log_to_file(env: Any) -> None:
    import logging

    from k8stars.tarscli.logs import setup_logging

    setup_logging(env, "tarscli.log", to_stderr=False)
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    logging.getLogger("tarscli").addHandler(handler)


@click.group(context_settings=CONTEXT, invoke_without_command=True)
@click.pass_context
def cli(ctx: click.Context) -> None:
    """tarscli: generates a TARS service's config, runs and supervises it, and keeps the registry in sync with its
    health. `tarscli COMMAND help` (or -h) shows a command's options; each is also an environment variable."""
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


@cli.command(context_settings=CONTEXT)
@env_options
@genconf_options
def genconf(**o: Any) -> None:
    """Write $TARS_PATH/conf/<server>.conf and data/server_info.yaml from bin/_server_meta.yaml (or the file named by
    $TARS_SERVER_META, as the operator mounts it), with the pod IP and free ports for ${random_port}."""
    from k8stars.tarscli.genconf import GenconfError
    from k8stars.tarscli.genconf import genconf as run
    from k8stars.tarscli.ports import PortAllocator

    env = make_env(o)
    _log_to_file(env)
    try:
        _, path = run(env, make_genconf_options(o), PortAllocator(env.port_min, env.port_max))
    except GenconfError as e:
        raise click.ClickException(str(e)) from None
    click.echo(str(path))


@cli.command(context_settings=CONTEXT)
@env_options
@genconf_options
@_opt("--start-path", "TARS_START_PATH", "Start script or command (run by sh; default $TARS_PATH/bin/start.sh).")
@_opt("--stop-path", "TARS_STOP_PATH", "Stop script run before a restart (default: signal the service's process "
      "group).")  # fmt: skip
@_opt("--report-interval", "TARS_REPORT_INTERVAL", "Heartbeat to the registry when nothing changes.", type=DURATION,
      default="30s")  # fmt: skip
@click.option("--disable-flow", is_flag=True, default=lambda: bool(os.environ.get("TARS_DISABLE_FLOW")),
              show_default="TARS_DISABLE_FLOW non-empty", help="Register with disableFlow (env: TARS_DISABLE_FLOW, "
              "any non-empty value).")  # fmt: skip
@_opt("--check-interval", "TARS_CHECK_INTERVAL", "Health check period once active.", type=DURATION, default="10s")
@_opt("--before-check-script", "TARS_BEFORE_CHECK_SCRIPT", "Shell command run before each check (and once before "
      "the start).")  # fmt: skip
@_opt("--check-script-timeout", "TARS_CHECK_SCRIPT_TIMEOUT", "The before-check script is killed after this.",
      type=DURATION, default="2s")  # fmt: skip
@_opt("--prestop-waittime", "TARS_PRESTOP_WAITTIME", "Wait between deactivating and deregistering (cut to fit "
      "the grace period).", type=DURATION, default="80s")  # fmt: skip
@_opt("--activating-timeout", "TARS_ACTIVATING_TIMEOUT", "A service not healthy this long after a start is "
      "inactive (and an alarm is sent).", type=DURATION, default="300s")  # fmt: skip
@_opt("--check-retry-timeout", "TARS_CHECK_RETRY_TIMEOUT", "How long a failing dial check of an active service is "
      "retried.", type=DURATION, default="5s")  # fmt: skip
@_opt("--server-version", "SERVER_VERSION", "Version registered with the registry (default: what the service "
      "reports through ServerF).", default="")  # fmt: skip
@_opt("--termination-grace-period", "TARS_TERMINATION_GRACE_PERIOD", "The pod's terminationGracePeriodSeconds: "
      "prestop and shutdown fit in it.", type=DURATION, default="90s")  # fmt: skip
@_opt("--heartbeat-timeout", "TARS_HEARTBEAT_TIMEOUT", "A service that sends ServerF heartbeats is unhealthy "
      "when they stop this long.", type=DURATION, default="30s")  # fmt: skip
@_opt("--restart-backoff", "TARS_RESTART_BACKOFF", "First delay before restarting a crashed service (doubles per "
      "crash).", type=DURATION, default="1s")  # fmt: skip
@_opt("--restart-backoff-max", "TARS_RESTART_BACKOFF_MAX", "Longest delay before a restart.", type=DURATION,
      default="60s")  # fmt: skip
@_opt("--node-port", "TARS_NODE_PORT", "Port of the node servant (tars.tarsnode.NodeObj) on the pod IP; 0: none.",
      type=click.IntRange(0, 65535), default=19385)  # fmt: skip
@_opt("--node-trusted-peers", "TARS_NODE_TRUSTED_PEERS", "Addresses or CIDRs that may command the server through "
      "the node servant besides the registered admin registries (none: only those).",
      default="127.0.0.0/8,::1/128")  # fmt: skip
def supervisor(**o: Any) -> None:
    """Generate the config, start the service, report its health to the registry, restart it when it dies, and run
    prestop on SIGTERM. Serves tars.tarsnode.ServerObj on 127.0.0.1 for the service's heartbeats."""
    import asyncio

    from k8stars.tars.networks import parse_networks
    from k8stars.tarscli.genconf import GenconfError
    from k8stars.tarscli.supervisor import SupervisorError, SupervisorOptions, supervise

    env = make_env(o)
    opts = SupervisorOptions(
        genconf=make_genconf_options(o), start_path=o["start_path"] or "", stop_path=o["stop_path"] or "",
        report_interval=o["report_interval"], disable_flow=o["disable_flow"], check_interval=o["check_interval"],
        before_check_script=o["before_check_script"] or "", check_script_timeout=o["check_script_timeout"],
        prestop_wait=o["prestop_waittime"], activating_timeout=o["activating_timeout"],
        check_retry_timeout=o["check_retry_timeout"], server_version=o["server_version"] or "",
        grace_period=o["termination_grace_period"], heartbeat_timeout=o["heartbeat_timeout"],
        restart_backoff=o["restart_backoff"], restart_backoff_max=o["restart_backoff_max"],
        node_port=o["node_port"], node_trusted_peers=o["node_trusted_peers"] or "",
    )  # fmt: skip
    if opts.report_interval <= 0 or opts.check_interval <= 0:
        raise click.ClickException("TARS_REPORT_INTERVAL and TARS_CHECK_INTERVAL must be positive")
    try:
        parse_networks(opts.node_trusted_peers)
    except ValueError as e:
        raise click.ClickException(f"TARS_NODE_TRUSTED_PEERS: {e}") from None
    try:
        code = asyncio.run(supervise(env, opts))
    except (GenconfError, SupervisorError) as e:
        raise click.ClickException(str(e)) from None
    sys.exit(code)


@cli.command(context_settings=CONTEXT)
@path_option
@_opt("--report-interval", "TARS_REPORT_INTERVAL", "The supervisor's report interval: a state file older than "
      "twice this means the supervisor is gone.", type=DURATION, default="30s")  # fmt: skip
def hzcheck(**o: Any) -> None:
    """Readiness probe: exit 0 iff the supervisor is alive and the service is active."""
    from k8stars.tarscli.hzcheck import check

    ok, message = check(make_env(o), o["report_interval"])
    if not ok:
        raise click.ClickException(message)


@cli.command(context_settings=CONTEXT)
@path_option
@_opt("--prestop-waittime", "TARS_PRESTOP_WAITTIME", "Wait between deactivating and deregistering.", type=DURATION,
      default="80s")  # fmt: skip
@_opt("--termination-grace-period", "TARS_TERMINATION_GRACE_PERIOD", "The pod's terminationGracePeriodSeconds.",
      type=DURATION, default="90s")  # fmt: skip
def prestop(**o: Any) -> None:
    """preStop hook: mark the service deactivating, wait for clients to drop it, then deregister it (done by the
    supervisor when one runs). Runs once."""
    import asyncio

    from k8stars.tarscli import prestop as impl
    from k8stars.tarscli.meta import MetaError, ServerInfo

    env = make_env(o)
    _log_to_file(env)
    try:
        info = ServerInfo.load(env.data("server_info.yaml"))
    except MetaError as e:
        raise click.ClickException(str(e)) from None
    timing = impl.Timing(o["termination_grace_period"], o["prestop_waittime"], info.conf.deactivating_timeout / 1000)
    click.echo(asyncio.run(impl.command(env, timing)))


@cli.command(context_settings={**CONTEXT, "ignore_unknown_options": True})
@path_option
@click.argument("command", nargs=-1, required=True)
def notify(command: tuple[str, ...], **o: Any) -> None:
    """Send an admin command to the service's AdminObj, e.g. `tarscli notify tars.setloglevel DEBUG`."""
    import asyncio

    from k8stars.tars.errors import TarsError
    from k8stars.tarscli.framework import Framework
    from k8stars.tarscli.meta import MetaError, ServerInfo

    env = make_env(o)

    async def send() -> str:
        fw = Framework(ServerInfo.load(env.data("server_info.yaml")), env.data_dir)
        try:
            return await fw.admin(5000).notify(" ".join(command))
        finally:
            await fw.close()

    try:
        click.echo(f"notify succ:{asyncio.run(send())}")
    except (TarsError, MetaError, OSError) as e:
        raise click.ClickException(f"notify failed: {e}") from None


@cli.command(context_settings=CONTEXT)
@_opt("--sync-directory", "TARS_SYNC_DIRECTORY", "Directory to copy from (nothing to do when empty).", default="")
@_opt("--sync-target-directory", "TARS_SYNC_TARGET_DIRECTORY", "Directory to copy into (default $TARS_PATH/bin).")
@path_option
def syncdir(sync_directory: str, sync_target_directory: str | None, tars_path: str) -> None:
    """Copy the files of a directory (e.g. a mounted ConfigMap) into $TARS_PATH/bin when they changed."""
    from pathlib import Path

    from k8stars.tarscli.syncdir import sync

    if not sync_directory:
        return
    target = Path(sync_target_directory or Path(tars_path) / "bin")
    try:
        copied = sync(Path(sync_directory), target)
    except OSError as e:
        raise click.ClickException(f"syncdir: {e}") from None
    for name in copied:
        click.echo(f"synced {name}")


@cli.command(context_settings=CONTEXT)
@_opt("--node-dir", "TARS_NODE_DIR", "The tarsnode work dir shared with the server container.",
      default="/usr/local/app/tars/tarsnode")  # fmt: skip
@_opt("--sync-directory", "TARS_SYNC_DIRECTORY", "Files of the node image copied into <node-dir>/bin (skipped when "
      "absent).", default="")  # fmt: skip
def nodeinit(node_dir: str, sync_directory: str) -> None:
    """The tarsnode init container of a TARS pod: copy the node files and write what the server container's agent
    needs (the pod's namespace, name and IP, the grace period, the server's meta and config template, all from this
    container's environment) into the work dir."""
    from pathlib import Path

    from k8stars.tarscli.podfiles import write
    from k8stars.tarscli.syncdir import sync_tree

    target = Path(node_dir)
    try:
        if sync_directory and Path(sync_directory).is_dir():
            for name in sync_tree(Path(sync_directory), target / "bin"):
                click.echo(f"synced bin/{name}")
        for name in write(target, os.environ):
            click.echo(f"wrote {name}")
    except OSError as e:
        raise click.ClickException(f"nodeinit: {e}") from None


@cli.command(context_settings=CONTEXT)
def version() -> None:
    """Print the version."""
    click.echo(__version__)


@cli.command("help", context_settings=CONTEXT)
@click.pass_context
def help_(ctx: click.Context) -> None:
    """Print the help of every command."""
    parent = ctx.parent
    assert parent is not None
    click.echo(parent.get_help())
    for name, cmd in cli.commands.items():
        if name == "help":
            continue
        with click.Context(cmd, info_name=name, parent=parent) as sub:
            click.echo(f"\n------ {name} -----\n{cmd.get_help(sub)}")


def _argv(args: list[str]) -> list[str]:
    """K8STARS's `tarscli COMMAND help` is our `tarscli COMMAND --help`."""
    if len(args) >= 2 and args[0] in cli.commands and args[1] == "help":
        return [args[0], "--help"]
    return args


def main() -> None:
    args = sys.argv[1:]
    if args[:1] == ["supervisor"] and "asyncio" not in sys.modules:
        # The supervisor never speaks TLS, and asyncio would load libssl for nothing: ~5 MB of RSS in every pod.
        sys.modules.setdefault("ssl", None)  # type: ignore[arg-type]
    from k8stars.tarscli.podfiles import seed

    seed(os.environ)  # in a pod: the work dir the tarsnode init container filled
    cli.main(args=_argv(args), prog_name="tarscli")


if __name__ == "__main__":
    main()
