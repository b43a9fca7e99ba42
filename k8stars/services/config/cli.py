"""``k8stars config``: run the config service, or manage the files of its SQL store (put, get, list, rm)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from k8stars.service.commands import (
    fail,
    on_sql_store,
    options,
    serve_command,
    serves_itself,
    store_options,
    store_service_options,
)

# --- config service: tars.tarsconfig.ConfigObj over TConfigs or db_tars; the implementation lives in
# k8stars.services.config. `k8stars config [options]` serves; put/get/list/rm manage the SQL store's files.
_config_store_options = store_options("config", "config.db", "files are kept")


@click.group("config", invoke_without_command=True)
@store_service_options("config", "tars.tarsconfig.ConfigObj", "tcp -h 127.0.0.1 -p 10001 -t 60000",
                       "--store kubernetes: the namespace whose TConfigs and pods are served.", "config.db",
                       "files are kept")  # fmt: skip
@click.pass_context
def config(ctx: click.Context, /, **options: Any) -> None:
    """Run the TARS config service (ConfigF), or manage the files of its SQL store (put, get, list, rm).

    Stores: kubernetes (TConfigs, the pod level overriding the server level), sqlite or mysql (TarsFramework's
    db_tars tables: app, server and node levels, references, sets).
    """
    if serves_itself(ctx, options):
        from k8stars.services.config.app import ConfigService, ConfigServiceOptions

        serve_command(ConfigService, ConfigServiceOptions, options)


def _run_files(ctx: click.Context, action: Any, store: str | None, data_dir: str | None, dsn: str | None,
               target: str, host: str | None, set_division: str | None, *args: Any, **kw: Any) -> Any:  # fmt: skip
    """Run ``action(store, target, *args)`` on the config service's SQL store, map errors to exit codes: 2 bad
    arguments, 1 no such file or the database failed."""
    from k8stars.services.config import manage
    from k8stars.services.config.sqlstore import SqlConfigStore

    elsewhere = "the kubernetes store's files are TConfig objects: manage them with kubectl (see docs/config.md)"
    run = on_sql_store(ctx, SqlConfigStore, store, data_dir, dsn, elsewhere)
    try:
        return run(lambda sql: action(sql, manage.parse_target(target, host, set_division), *args, **kw))
    except (manage.UsageError, ValueError) as e:
        fail(str(e), 2)
    except (manage.NotFound, RuntimeError) as e:
        fail(str(e), 1)
    except Exception as e:  # the database refused a statement (driver errors share no useful base)
        fail(f"config store: {e}", 1)


_TARGET_HELP = "--host IP: the node-level file of App.Server on that node."
_one_file = options(  # TARGET NAME [--host IP] [--set S]: one file of the config store
    click.argument("target"),
    click.argument("name"),
    click.option("--host", default=None, help=_TARGET_HELP),
    click.option("--set", "set_division", default=None, metavar="NAME.AREA.GROUP", help="The file of a TARS set."),
    _config_store_options,
    click.pass_context,
)


@config.command("put")
@click.argument("target")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--name", default=None, help="File name servers ask for (default: FILE's base name).")
@click.option("--host", default=None, help=_TARGET_HELP)
@click.option("--set", "set_division", default=None, metavar="NAME.AREA.GROUP", help="The file of a TARS set.")
@click.option("--ref", "refs", multiple=True, metavar="NAME",
              help="An app-level file served before this one (repeatable; replaces the references).")  # fmt: skip
@click.option("--user", envvar="USER", default="", help="Recorded as lastuser (default $USER).")
@click.option("--reason", default="k8stars config put", show_default=True, help="Recorded in the history.")
@_config_store_options
@click.pass_context
def config_put(ctx: click.Context, target: str, file: str, name: str | None, host: str | None,
               set_division: str | None, refs: tuple[str, ...], user: str, reason: str, store: str | None,
               data_dir: str | None, dsn: str | None) -> None:  # fmt: skip
    """Create or replace file FILE (- for stdin) of TARGET: App (app level) or App.Server (server level)."""
    from k8stars.services.config import manage

    try:
        manage.parse_target(target, host, set_division)  # before reading FILE: the first error is the one to fix
    except manage.UsageError as e:
        fail(str(e), 2)
    if file == "-" and not name:
        fail("reading stdin (-) needs --name", 2)
    try:
        content = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        fail(f"{file}: {e}", 2)
    click.echo(_run_files(ctx, manage.put, store, data_dir, dsn, target, host, set_division,
                          name or Path(file).name, content, user=user, reason=reason,
                          references=list(refs) if refs else None))  # fmt: skip


@config.command("get")
@_one_file
def config_get(ctx: click.Context, target: str, name: str, host: str | None, set_division: str | None,
               store: str | None, data_dir: str | None, dsn: str | None) -> None:  # fmt: skip
    """Print the stored content of file NAME of TARGET (that row only; what a server gets also merges levels)."""
    from k8stars.services.config import manage

    click.echo(_run_files(ctx, manage.get, store, data_dir, dsn, target, host, set_division, name), nl=False)


@config.command("list")
@click.argument("target")
@click.option("--host", default=None, help="Only that node's node-level files.")
@click.option("--set", "set_division", default=None, metavar="NAME.AREA.GROUP", help="Only the files of a set.")
@_config_store_options
@click.pass_context
def config_list(ctx: click.Context, target: str, host: str | None, set_division: str | None, store: str | None,
                data_dir: str | None, dsn: str | None) -> None:  # fmt: skip
    """List the files of TARGET (App or App.Server): name, level, host, set, last update."""
    from k8stars.services.config import manage

    for line in _run_files(ctx, manage.listing, store, data_dir, dsn, target, host, set_division):
        click.echo(line)


@config.command("rm")
@_one_file
def config_rm(ctx: click.Context, target: str, name: str, host: str | None, set_division: str | None,
              store: str | None, data_dir: str | None, dsn: str | None) -> None:  # fmt: skip
    """Delete file NAME of TARGET and its references."""
    from k8stars.services.config import manage

    click.echo(_run_files(ctx, manage.remove, store, data_dir, dsn, target, host, set_division, name))
