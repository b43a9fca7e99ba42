"""The one command-line face of k8stars: ``k8stars <command>``."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any, TypeVar

import click

from k8stars import __version__
from k8stars.image.cli import image as image_group
from k8stars.service.commands import (
    WHERE_REGISTERED,
    admin_option,
    endpoint_option,
    fail,
    host_option,
    kubeconfig_option,
    locator_option,
    log_level_option,
    namespace_option,
    node_name_option,
    port_option,
    processes_option,
    serve_command,
    store_options,
)
from k8stars.services.config.cli import config as config_group
from k8stars.services.notify.cli import notify as notify_group
from k8stars.tars.errors import IdlError, TarsError, TarsRpcError
from k8stars.web.cli import web as web_command

T = TypeVar("T")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="k8stars")
def main() -> None:
    """k8stars: TARS microservices on Kubernetes."""


@main.command("tars2py")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--outdir", required=True, type=click.Path(file_okay=False), help="Directory to write into.")
@click.option("-I", "--include", "includes", multiple=True, type=click.Path(file_okay=False),
              help="Directory to search for #include files (repeatable).")  # fmt: skip
def tars2py(files: tuple[str, ...], outdir: str, includes: tuple[str, ...]) -> None:
    """Compile .tars IDL FILES into typed Python modules (structs, enums, consts, proxies, servants)."""
    from k8stars.tars.idl.codegen import write

    try:
        written = write(list(files), outdir, list(includes))
    except IdlError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    for p in written:
        click.echo(str(Path(p)))


@main.command("call", context_settings={"ignore_unknown_options": False})
@click.argument("target")
@click.argument("func", required=False)
@click.argument("args", required=False, default="{}")
@click.option("--idl", multiple=True, type=click.Path(exists=True, dir_okay=False), help="IDL file(s) of the servant.")
@click.option("-I", "--include", "includes", multiple=True, type=click.Path(file_okay=False),
              help="Directory to search for #include files.")  # fmt: skip
@click.option("--interface", "interface_name", help="Interface name when the IDL has several.")
@click.option("--locator", envvar="K8STARS_LOCATOR", help="Registry QueryObj proxy, to call TARGET by name.")
@click.option("--timeout", "timeout_ms", type=int, default=3000, show_default=True, help="Call timeout (ms).")
@click.option("--context", "contexts", multiple=True, metavar="KEY=VALUE", help="Request context entry.")
@click.option("--oneway", is_flag=True, help="Send without waiting for an answer.")
@click.option("--list", "list_ops", is_flag=True, help="List the interface's operations and exit.")
def call(
    target: str,
    func: str | None,
    args: str,
    idl: tuple[str, ...],
    includes: tuple[str, ...],
    interface_name: str | None,
    locator: str | None,
    timeout_ms: int,
    contexts: tuple[str, ...],
    oneway: bool,
    list_ops: bool,
) -> None:
    """Call FUNC of the servant TARGET with ARGS, a JSON object keyed by the IDL's parameter names.

    TARGET is `App.Server.Obj@tcp -h HOST -p PORT` or, with --locator, `App.Server.Obj`. Prints the return value
    and out parameters as a JSON object; errors print the TARS code and text and exit 1.
    """
    from k8stars.tars.rpc.dynamic import describe, find_interface

    servant = target.partition("@")[0].strip()
    try:
        iface = find_interface(servant, idl, includes, interface_name)
    except (IdlError, ValueError) as e:
        fail(str(e), 2)
    if list_ops:
        click.echo("\n".join(describe(iface)))
        return
    if not func:
        fail("FUNC is required (or use --list)", 2)
    try:
        doc = json.loads(args)
    except json.JSONDecodeError as e:
        fail(f"ARGS is not valid JSON: {e}", 2)
    if not isinstance(doc, dict):
        fail("ARGS must be a JSON object keyed by parameter name", 2)
    context = dict(c.split("=", 1) for c in contexts if "=" in c)
    try:
        result = asyncio.run(_call(target, locator, iface, func, doc, timeout_ms, context, oneway))
    except TarsRpcError as e:
        fail(f"{e}", 1)
    except (TarsError, ValueError) as e:
        fail(str(e), 2)
    click.echo(json.dumps(result, indent=2, ensure_ascii=False))


async def _call(
    target: str, locator: str | None, iface: Any, func: str, doc: dict[str, Any], timeout_ms: int,
    context: dict[str, str], oneway: bool,
) -> dict[str, Any]:  # fmt: skip
    from k8stars.tars.rpc import Communicator
    from k8stars.tars.rpc.dynamic import call_json

    async with Communicator(locator=locator or "") as comm:
        return await call_json(comm, target, iface, func, doc, timeout_ms=timeout_ms, context=context, oneway=oneway)


# --- registry (issue 6): options are the public contract; the implementation lives in k8stars.registry -------------
@main.command("registry")
@host_option("K8STARS_REGISTRY_HOST")
@port_option("K8STARS_REGISTRY_PORT", 17890,
             "Port of tars.tarsregistry.QueryObj (and of Registry unless --registry-port).")  # fmt: skip
@port_option("K8STARS_REGISTRY_REGISTRY_PORT", None, "Serve tars.tarsregistry.Registry on its own port.",
             name="--registry-port")  # fmt: skip
@store_options("registry", "registry.db", "endpoints are kept; kubernetes: read from pods and TEndpoints",
               default="sqlite")  # fmt: skip
@click.option("--heartbeat-timeout", envvar="K8STARS_REGISTRY_HEARTBEAT_TIMEOUT", type=float, default=60.0,
              show_default=True, help="Seconds without keepAlive before an endpoint turns inactive.")  # fmt: skip
@click.option("--retention", envvar="K8STARS_REGISTRY_RETENTION", type=float, default=3600.0, show_default=True,
              help="Seconds an inactive endpoint is kept before it is removed.")  # fmt: skip
@port_option("K8STARS_REGISTRY_HTTP_PORT", 9325, "Port of /metrics and the Prometheus http_sd endpoint (0 = off).",
             name="--http-port")  # fmt: skip
@node_name_option("registry", "Address clients reach this replica at, registered for its own servants (default: "
                              "--host, or this machine's IP when --host is a wildcard).")  # fmt: skip
@kubeconfig_option("--store kubernetes: kubeconfig file (default: ~/.kube/config, else in-cluster).")
@namespace_option("K8STARS_REGISTRY_NAMESPACE", "--store kubernetes: watch one namespace only (default: all).")
@click.option("--trusted-peers", envvar="K8STARS_REGISTRY_TRUSTED_PEERS", default="127.0.0.0/8,::1/128",
              show_default=True, help="Addresses or CIDRs that may register, heartbeat and deregister any node; "
              "others only the node they call from. none: nobody.")  # fmt: skip
@processes_option()
@admin_option()
@log_level_option()
def registry(**options: Any) -> None:
    """Run the TARS naming service: QueryF lookups plus K8STARS's register/keepAlive/prestop calls."""
    from k8stars.registry.app import RegistryConfig, RegistryServer

    serve_command(RegistryServer, RegistryConfig, options)


# --- stat service: tars.tarsstat.StatObj + tars.tarsproperty.PropertyObj as Prometheus metrics; the implementation
# lives in k8stars.services.stat
@main.command("stat")
@endpoint_option("K8STARS_STAT_ENDPOINT", "tcp -h 127.0.0.1 -p 10003 -t 60000", "tars.tarsstat.StatObj",
                 name="--stat-endpoint")  # fmt: skip
@endpoint_option("K8STARS_PROPERTY_ENDPOINT", "tcp -h 127.0.0.1 -p 10004 -t 60000", "tars.tarsproperty.PropertyObj",
                 name="--property-endpoint")  # fmt: skip
@host_option("K8STARS_STAT_HTTP_HOST", name="--http-host", what="of /metrics and /healthz")
@port_option("K8STARS_STAT_HTTP_PORT", 9326, "Port of /metrics (Prometheus) and /healthz; 0: a free one, -1: none.",
             name="--http-port")  # fmt: skip
@locator_option("tars.tarsstat and tars.tarsproperty")
@node_name_option("stat", f"Address registered for both servants {WHERE_REGISTERED}.")
@click.option("--max-series", envvar="K8STARS_STAT_MAX_SERIES", type=int, default=20000, show_default=True,
              help="Cap on distinct series; reports beyond it are dropped and counted.")  # fmt: skip
@click.option("--ip-labels/--no-ip-labels", envvar="K8STARS_STAT_IP_LABELS", default=False, show_default=True,
              help="Label call series with caller/callee IPs and callee port, properties with the IP.")  # fmt: skip
@click.option("--ret-label/--no-ret-label", envvar="K8STARS_STAT_RET_LABEL", default=False, show_default=True,
              help="Label call series with the return code.")  # fmt: skip
@click.option("--history", envvar="K8STARS_STAT_HISTORY", type=click.Choice(["sqlite", "mysql", "none"]),
              default="sqlite", show_default=True, help="Keep the reports per minute (for k8stars monitor) in "
              "monitor.db under --data-dir, in the MySQL database of --dsn, or not at all.")  # fmt: skip
@click.option("--data-dir", envvar="K8STARS_DATA_DIR", type=click.Path(file_okay=False), default=None,
              help="Directory of the history's monitor.db (default ~/.local/share/k8stars).")  # fmt: skip
@click.option("--dsn", envvar="K8STARS_MONITOR_DSN", default=None,
              help="mysql://user:pass@host:port/db_tars for --history mysql.")  # fmt: skip
@click.option("--history-days", envvar="K8STARS_STAT_HISTORY_DAYS", type=int, default=7, show_default=True,
              help="Days of history kept; older rows are deleted.")  # fmt: skip
@click.option("--history-series", envvar="K8STARS_STAT_HISTORY_SERIES", type=int, default=20000, show_default=True,
              help="Cap on the history's series per minute (calls and properties each); more are dropped and "
                   "counted.")  # fmt: skip
@click.option("--history-flush", envvar="K8STARS_STAT_HISTORY_FLUSH", type=float, default=5.0, show_default=True,
              help="Seconds between writes of the current minute's history.")  # fmt: skip
@admin_option()
@log_level_option()
def stat(**options: Any) -> None:
    """Run the TARS stat and property services (StatF, PropertyF), exposing the reports as Prometheus metrics and
    keeping them per minute for the query services (k8stars monitor)."""
    from k8stars.services.stat.app import StatService, StatServiceOptions

    serve_command(StatService, StatServiceOptions, options)


# --- query services: tars.tarsquerystat.QueryObj + tars.tarsqueryproperty.QueryObj (K8SFramework's MonitorQuery)
# over the stat service's history; the implementation lives in k8stars.services.monitor
@main.command("monitor")
@endpoint_option("K8STARS_QUERYSTAT_ENDPOINT", "tcp -h 127.0.0.1 -p 18393 -t 60000", "tars.tarsquerystat.QueryObj",
                 name="--stat-endpoint")  # fmt: skip
@endpoint_option("K8STARS_QUERYPROPERTY_ENDPOINT", "tcp -h 127.0.0.1 -p 18693 -t 60000",
                 "tars.tarsqueryproperty.QueryObj", name="--property-endpoint")  # fmt: skip
@host_option("K8STARS_MONITOR_HTTP_HOST", name="--http-host", what="of the JSON view, /metrics and /healthz")
@port_option("K8STARS_MONITOR_HTTP_PORT", 9327, "Port of the JSON view (/api/query/stat, /api/query/property), "
             "/metrics and /healthz; 0: a free one, -1: none.", name="--http-port")  # fmt: skip
@locator_option("tars.tarsquerystat and tars.tarsqueryproperty")
@node_name_option("monitor", f"Address registered for both servants {WHERE_REGISTERED}.")
@click.option("--store", envvar="K8STARS_MONITOR_STORE", type=click.Choice(["sqlite", "mysql"]), default="sqlite",
              show_default=True, help="Where the stat service keeps its history (its --history).")  # fmt: skip
@click.option("--data-dir", envvar="K8STARS_DATA_DIR", type=click.Path(file_okay=False), default=None,
              help="Directory of monitor.db (default ~/.local/share/k8stars).")  # fmt: skip
@click.option("--dsn", envvar="K8STARS_MONITOR_DSN", default=None,
              help="mysql://user:pass@host:port/db_tars for --store mysql.")  # fmt: skip
@admin_option()
@log_level_option()
def monitor(**options: Any) -> None:
    """Run the monitoring query services (tarsquerystat, tarsqueryproperty: MonitorQuery) over the stat history."""
    from k8stars.services.monitor.app import MonitorService, MonitorServiceOptions

    serve_command(MonitorService, MonitorServiceOptions, options)


# --- kevent: Kubernetes Events of a namespace's TARS servers kept in the monitoring store; the implementation lives
# in k8stars.services.kevent
@main.command("kevent")
@namespace_option(["K8STARS_KEVENT_NAMESPACE", "POD_NAMESPACE"], "The namespace whose Events are kept.")
@kubeconfig_option()
@host_option("K8STARS_KEVENT_HOST", what="of /api/events, /metrics and /healthz")
@port_option("K8STARS_KEVENT_PORT", 9328, "Port of /api/events?server=App.Server|pod=NAME, /metrics and /healthz.")
@click.option("--store", envvar="K8STARS_KEVENT_STORE", type=click.Choice(["sqlite", "mysql"]), default="sqlite",
              show_default=True, help="The monitoring store (the stat history's).")  # fmt: skip
@click.option("--data-dir", envvar="K8STARS_DATA_DIR", type=click.Path(file_okay=False), default=None,
              help="Directory of monitor.db (default ~/.local/share/k8stars).")  # fmt: skip
@click.option("--dsn", envvar="K8STARS_MONITOR_DSN", default=None,
              help="mysql://user:pass@host:port/db_tars for --store mysql.")  # fmt: skip
@click.option("--days", envvar="K8STARS_KEVENT_DAYS", type=int, default=7, show_default=True,
              help="Days an Event is kept after it was last seen.")  # fmt: skip
@log_level_option()
def kevent(**options: Any) -> None:
    """Keep the Kubernetes Events of a namespace's TARS pods and TServers beyond the apiserver's hour."""
    from k8stars.services.kevent.app import KeventService, KeventServiceOptions

    serve_command(KeventService, KeventServiceOptions, options)


# --- log service: tars.tarslog.LogObj into files named as TarsFramework's LogServer names them; the implementation
# lives in k8stars.services.log
@main.command("log")
@click.option("--log-dir", envvar="K8STARS_LOG_DIR", type=click.Path(file_okay=False),
              default="/usr/local/app/tars/remote_app_log", show_default=True,
              help="Directory of the log files (<app>/<server>/<app>.<server>_<file>_<date>.log).")  # fmt: skip
@endpoint_option("K8STARS_LOG_ENDPOINT", "tcp -h 127.0.0.1 -p 10005 -t 60000", "tars.tarslog.LogObj")
@locator_option("tars.tarslog")
@node_name_option("log", f"Address registered for LogObj {WHERE_REGISTERED}.")
@click.option("--stdout/--no-stdout", envvar="K8STARS_LOG_STDOUT", default=False, show_default=True,
              help="Also print each record on stdout as 'App.Server/file: line' (for kubectl logs).")  # fmt: skip
@click.option("--ip-prefix/--no-ip-prefix", envvar="K8STARS_LOG_IP_PREFIX", default=True, show_default=True,
              help="Start each written line with the sender's node name (TarsFramework's ipfix).")  # fmt: skip
@click.option("--max-pending", envvar="K8STARS_LOG_MAX_PENDING", type=int, default=32 * 1024 * 1024,
              show_default=True, help="Bytes waiting to be written at most; records beyond are dropped and "
                                      "counted.")  # fmt: skip
@click.option("--max-open-files", envvar="K8STARS_LOG_MAX_OPEN_FILES", type=int, default=128, show_default=True,
              help="Log files kept open at most (least recently used closed first).")  # fmt: skip
@click.option("--hourly", envvar="K8STARS_LOG_HOURLY", multiple=True, metavar="APP.SERVER",
              help="Write this server's files hourly (%Y%m%d%H), whatever it asks (repeatable; env: "
                   "space-separated).")  # fmt: skip
@click.option("--log-type", envvar="K8STARS_LOG_TYPES", multiple=True, metavar="APP.SERVER.FILE=TYPE",
              help="Roll this file by TYPE (day, 2hour, 10minute ...), whatever it asks (repeatable; env: "
                   "space-separated).")  # fmt: skip
@click.option("--http-host", envvar="K8STARS_LOG_HTTP_HOST", default="127.0.0.1", show_default=True,
              help="Address of the files' HTTP view (the console's log page), /metrics, /healthz.")  # fmt: skip
@click.option("--http-port", envvar="K8STARS_LOG_HTTP_PORT", type=int, default=-1, show_default=True,
              help="Port of that view (0: any free one; -1: none).")  # fmt: skip
@click.option("--http-token-file", envvar="K8STARS_LOG_HTTP_TOKEN_FILE", type=click.Path(dir_okay=False),
              default=None, help="File holding the bearer token every request to that view must carry (/healthz, "
                                 "/metrics excepted; read again when it changes). None: an open view.")  # fmt: skip
@admin_option()
@log_level_option()
def log_service(**options: Any) -> None:
    """Run the TARS remote log service (LogF): servers' log= records as files named as TarsFramework names them."""
    from k8stars.services.log.app import LogService, LogServiceOptions

    serve_command(LogService, LogServiceOptions, options)


# --- admin registry: tars.tarsAdminRegistry.AdminRegObj, server commands to the pods' node servants (issue 20);
# the implementation lives in k8stars.services.adminreg.
@main.command("adminreg")
@endpoint_option("K8STARS_ADMINREG_ENDPOINT", "tcp -h 127.0.0.1 -p 12000 -t 60000",
                 "tars.tarsAdminRegistry.AdminRegObj")  # fmt: skip
@namespace_option(["K8STARS_ADMINREG_NAMESPACE", "POD_NAMESPACE"], "Namespace of the pods and TAccounts (none: "
                  "nodeName is a pod IP and the auth checks answer -1).")  # fmt: skip
@kubeconfig_option()
@click.option("--node-port", envvar="K8STARS_ADMINREG_NODE_PORT", type=int, default=19385, show_default=True,
              help="Port of the pods' node servant (tars.tarsnode.NodeObj).")  # fmt: skip
@click.option("--trusted-peers", envvar="K8STARS_ADMINREG_TRUSTED_PEERS", default=None,
              help="Addresses or CIDRs that may call AdminReg (default: every caller, as K8SFramework).")  # fmt: skip
@locator_option("tars.tarsAdminRegistry")
@node_name_option("adminreg", f"Address registered for AdminRegObj {WHERE_REGISTERED}.")
@admin_option()
@log_level_option()
def adminreg(**options: Any) -> None:
    """Run the TARS admin registry (AdminReg): start, stop, restart and notify servers in their pods, K8SFramework's
    auth checks against TAccounts, plugins as TPlugins."""
    from k8stars.services.adminreg.app import AdminRegService, AdminRegServiceOptions

    serve_command(AdminRegService, AdminRegServiceOptions, options)


# --- local framework (issue 4): `k8stars up` ---------------------------------------------------------------------
@main.command("up")
@click.option("--data-dir", envvar="K8STARS_UP_DATA_DIR", type=click.Path(file_okay=False), default=None,
              help="Where the local framework keeps its state (default ~/.local/share/k8stars/up).")  # fmt: skip
@click.option("--registry-port", envvar="K8STARS_UP_REGISTRY_PORT", type=int, default=17890, show_default=True,
              help="Port of the registry's QueryObj (and Registry) on 127.0.0.1.")  # fmt: skip
@click.option("--first-ip", envvar="K8STARS_UP_FIRST_IP", default="127.0.0.11", show_default=True,
              help="Loopback address of the first service's \"pod\"; the next ones count up from it.")  # fmt: skip
@click.option("--config-port", envvar="K8STARS_UP_CONFIG_PORT", type=click.IntRange(0, 65535), default=0,
              show_default=True, help="Port of tars.tarsconfig.ConfigObj on 127.0.0.1 (0: a free one).")  # fmt: skip
@click.option("--kubeconfig", envvar="K8STARS_UP_KUBECONFIG", type=click.Path(dir_okay=False), default=None,
              help="With --namespace: also run the web console over that cluster's namespace (it needs the "
                   "Kubernetes objects; without them no console is started).")  # fmt: skip
@click.option("--namespace", envvar="K8STARS_UP_NAMESPACE", default=None, help="The console's namespace.")
@click.option("--web-port", envvar="K8STARS_UP_WEB_PORT", type=click.IntRange(1, 65535), default=8080,
              show_default=True, help="Port of the web console on 127.0.0.1.")  # fmt: skip
def up(data_dir: str | None, registry_port: int, first_ip: str, config_port: int, kubeconfig: str | None,
       namespace: str | None, web_port: int) -> None:  # fmt: skip
    """Run the whole TARS framework on this machine: registry, config service and the example services (and the web
    console, given a Kubernetes API)."""
    from k8stars.tarscli.local import run_local
    from k8stars.tarscli.upconsole import ConsoleOptions

    if bool(kubeconfig) != bool(namespace):
        raise click.UsageError("--kubeconfig and --namespace go together (the web console's cluster and namespace)")
    console = ConsoleOptions(kubeconfig, namespace, web_port) if kubeconfig and namespace else None
    sys.exit(asyncio.run(run_local(data_dir=data_dir, registry_port=registry_port, first_ip=first_ip,
                                   config_port=config_port, console=console)))  # fmt: skip


# --- operator (issue 7): TServer → StatefulSet + Service + TEndpoint; the implementation lives in k8stars.operator --
@main.command("operator")
@kubeconfig_option()
@namespace_option("K8STARS_OPERATOR_NAMESPACE", "Reconcile one namespace only (default: all).")
@click.option("--workers", envvar="K8STARS_OPERATOR_WORKERS", type=int, default=4, show_default=True,
              help="Concurrent reconciles.")  # fmt: skip
@click.option("--install-crds/--no-install-crds", envvar="K8STARS_OPERATOR_INSTALL_CRDS", default=True,
              show_default=True, help="Server-side apply the k8s.tars.io CRDs at start-up.")  # fmt: skip
@click.option("--resync", envvar="K8STARS_OPERATOR_RESYNC", type=float, default=300.0, show_default=True,
              help="Seconds between full re-reconciles (a safety net; changes are handled as they come).")  # fmt: skip
@port_option("K8STARS_WEBHOOK_PORT", 0, "Serve the admission webhooks (HTTPS) on this port; 0 = no webhooks.",
             name="--webhook-port")  # fmt: skip
@host_option("K8STARS_WEBHOOK_HOST", name="--webhook-host", what="the webhook server listens on")
@click.option("--webhook-cert", envvar="K8STARS_WEBHOOK_CERT", type=click.Path(dir_okay=False), default=None,
              help="Serving certificate (PEM) of the webhook server.")  # fmt: skip
@click.option("--webhook-key", envvar="K8STARS_WEBHOOK_KEY", type=click.Path(dir_okay=False), default=None,
              help="Private key (PEM) of the serving certificate.")  # fmt: skip
@click.option("--webhook-url", envvar="K8STARS_WEBHOOK_URL", default=None,
              help="Base URL the apiserver calls (https://...): registers the webhook configurations.")  # fmt: skip
@click.option("--tconfig-guard", envvar="K8STARS_TCONFIG_GUARD", type=click.FloatRange(min=0), default=48.0,
              show_default=True,
              help="Seconds an activated TConfig cannot be deleted after its activation (webhook).")  # fmt: skip
@click.option("--webhook-ca", envvar="K8STARS_WEBHOOK_CA", type=click.Path(dir_okay=False), default=None,
              help="CA (PEM) for the configurations' caBundle (default: the serving certificate).")  # fmt: skip
@click.option("--operator-account", envvar="K8STARS_OPERATOR_ACCOUNT", default=None,
              help="The operator's ServiceAccount (system:serviceaccount:<ns>:<name>), the only one the webhooks let "
                   "deactivate TConfigs or change framework labels and owned objects; run with another identity, "
                   "the operator acts as it (impersonation). Default: its identity if a ServiceAccount.")  # fmt: skip
@click.option("--leader-elect/--no-leader-elect", envvar="K8STARS_LEADER_ELECT", default=False, show_default=True,
              help="Run as one of several replicas: only the holder of a Lease reconciles.")  # fmt: skip
@click.option("--leader-election-namespace", envvar=["K8STARS_LEADER_ELECTION_NAMESPACE", "POD_NAMESPACE"],
              default=None, help="Namespace of the Lease (default: --namespace, else default).")  # fmt: skip
@click.option("--lease-duration", envvar="K8STARS_LEASE_DURATION", type=float, default=15.0, show_default=True,
              help="Seconds without renewal after which another replica takes over.")  # fmt: skip
@port_option("K8STARS_OPERATOR_METRICS_PORT", 0, "Serve /healthz, /readyz and /metrics (Prometheus) on this port; "
             "0 = off.", name="--metrics-port")  # fmt: skip
@host_option("K8STARS_OPERATOR_METRICS_HOST", name="--metrics-host", what="of the metrics server")
@log_level_option()
def operator(kubeconfig: str | None, namespace: str | None, workers: int, install_crds: bool, resync: float,
             webhook_port: int, webhook_host: str, webhook_cert: str | None, webhook_key: str | None,
             webhook_url: str | None, tconfig_guard: float, webhook_ca: str | None, operator_account: str | None,
             leader_elect: bool,
             leader_election_namespace: str | None,
             lease_duration: float, metrics_port: int, metrics_host: str, log_level: str) -> None:  # fmt: skip
    """Run the operator: reconcile k8s.tars.io TServers into StatefulSets, Services and TEndpoints."""
    import logging
    import os
    import socket

    from k8stars.operator import LeaderOptions, WebhookOptions, run_operator, until_signalled
    from k8stars.operator.leader import LeadershipLost

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if kubeconfig and ":" in kubeconfig:
        kubeconfig = kubeconfig.split(":")[0]
    hooks = None
    if webhook_port:
        if not (webhook_cert and webhook_key):
            fail("--webhook-port needs --webhook-cert and --webhook-key", 2)
        hooks = WebhookOptions(webhook_port, str(webhook_cert), str(webhook_key), webhook_host, webhook_url,
                               webhook_ca, tconfig_guard=tconfig_guard, operator_account=operator_account)  # fmt: skip
    leader = None
    if leader_elect:
        leader = LeaderOptions(leader_election_namespace or namespace or "default",
                               f"{socket.gethostname()}-{os.getpid()}", duration=lease_duration)  # fmt: skip
    try:
        # SIGTERM (pod deletion) and SIGINT stop it inside the loop: the lease is given up, servers closed, exit 0
        asyncio.run(until_signalled(run_operator(kubeconfig, namespace=namespace, workers=workers,
                                                 install_crds=install_crds, resync=resync, webhook=hooks,
                                                 leader=leader, metrics_port=metrics_port,
                                                 metrics_host=metrics_host)))  # fmt: skip
    except KeyboardInterrupt:  # Ctrl-C before the loop started
        pass
    except LeadershipLost as e:
        fail(str(e), 1)


main.add_command(config_group)
main.add_command(notify_group)
main.add_command(image_group)
main.add_command(web_command)


def _show_envvars(command: click.Command) -> None:
    """Every option's environment variable in its --help (the README points there for the full list)."""
    for param in command.params:
        if isinstance(param, click.Option) and param.envvar:
            param.show_envvar = True
    for sub in getattr(command, "commands", {}).values():
        _show_envvars(sub)


_show_envvars(main)
