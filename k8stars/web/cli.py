"""``k8stars web``: the web console command."""

from __future__ import annotations

from typing import Any

import click

from k8stars.service.commands import (
    host_option,
    kubeconfig_option,
    log_level_option,
    namespace_option,
    port_option,
    serve_command,
)


@click.command("web")
@host_option("K8STARS_WEB_HOST")
@port_option("K8STARS_WEB_PORT", 8080, "Port of the console.")
@namespace_option(["K8STARS_WEB_NAMESPACE", "POD_NAMESPACE"], "Namespace of the TARS framework shown.")
@kubeconfig_option()
@click.option(
    "--session-secret",
    envvar="K8STARS_WEB_SESSION_SECRET",
    default="tars-web",
    show_default=True,
    help="Secret whose session-key signs the session cookies (created with a random key when missing).",
)
@click.option(
    "--key-file",
    envvar="K8STARS_WEB_KEY_FILE",
    type=click.Path(dir_okay=False),
    default=None,
    help="Take the session key from this file instead (generated when missing).",
)
@click.option(
    "--secure-cookie/--no-secure-cookie",
    envvar="K8STARS_WEB_SECURE_COOKIE",
    default=False,
    help="Send the session cookie over HTTPS only (behind a TLS ingress).",
)
@log_level_option()
def web(**values: Any) -> None:
    """The web console: services, pods, releases, configs, events and accounts of one namespace."""
    from k8stars.web.service import WebOptions, WebService

    serve_command(WebService, WebOptions, values)
