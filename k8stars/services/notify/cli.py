"""``k8stars notify``: run the notify service, or list what its SQL store holds (list)."""

from __future__ import annotations

from typing import Any

import click

from k8stars.service.commands import (
    fail,
    on_sql_store,
    serve_command,
    serves_itself,
    store_options,
    store_service_options,
)

# --- notify service: tars.tarsnotify.NotifyObj into Kubernetes Events or db_tars.t_server_notifys; the
# implementation lives in k8stars.services.notify. `k8stars notify [options]` serves; `list` reads the SQL store.
_notify_store_options = store_options("notify", "notify.db", "notifications go")


@click.group("notify", invoke_without_command=True)
@store_service_options("notify", "tars.tarsnotify.NotifyObj", "tcp -h 127.0.0.1 -p 10002 -t 60000",
                       "--store kubernetes: the namespace whose pods get the Events.", "notify.db",
                       "notifications go")  # fmt: skip
@click.option("--queue-size", envvar="K8STARS_NOTIFY_QUEUE_SIZE", type=int, default=10000, show_default=True,
              help="Notifications waiting for the store at most; more are dropped and counted.")  # fmt: skip
@click.option("--filter", "filter", multiple=True, metavar="KEY=TEXTS",
              help="TarsFramework's notify filter: drop reports of KEY (App.Server, or default: all) whose message "
                   "contains one of TEXTS (separated by ; or |). Repeatable.")  # fmt: skip
@click.pass_context
def notify(ctx: click.Context, /, **options: Any) -> None:
    """Run the TARS notify service (NotifyF), or list what its SQL store holds (list).

    Stores: kubernetes (an Event on the reporting pod, shown by kubectl describe pod), sqlite or mysql
    (TarsFramework's db_tars.t_server_notifys, read by TarsWeb).
    """
    if serves_itself(ctx, options):
        from k8stars.services.notify.app import NotifyService, NotifyServiceOptions

        serve_command(NotifyService, NotifyServiceOptions, options)


@notify.command("list")
@click.argument("target")
@click.option("--limit", type=int, default=20, show_default=True, help="How many, newest first.")
@click.option("--node", default=None, help="Only those reported from this node (pod IP).")
@_notify_store_options
@click.pass_context
def notify_list(ctx: click.Context, target: str, limit: int, node: str | None, store: str | None,
                data_dir: str | None, dsn: str | None) -> None:  # fmt: skip
    """List the newest notifications of TARGET (App or App.Server) in the SQL store."""
    from k8stars.services.notify import manage
    from k8stars.services.notify.sqlstore import SqlNotifyStore

    elsewhere = "the kubernetes store's notifications are Events: kubectl describe pod / kubectl get events"
    run = on_sql_store(ctx, SqlNotifyStore, store, data_dir, dsn, elsewhere)
    try:
        manage.parse_target(target)
    except manage.UsageError as e:
        fail(str(e), 2)
    try:
        lines = run(lambda sql: manage.listing(sql, target, node, limit))
    except (manage.UsageError, ValueError) as e:
        fail(str(e), 2)
    except Exception as e:  # the store could not be opened or read (driver errors share no useful base)
        fail(str(e), 1)
    for line in lines:
        click.echo(line)
