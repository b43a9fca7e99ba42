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
@click.option(
    "--locator",
    envvar="K8STARS_LOCATOR",
    default=None,
    help="Registry QueryObj proxy: finds tars.tarsquerystat / tars.tarsqueryproperty for the monitoring pages.",
)
@click.option(
    "--log-url",
    envvar="K8STARS_WEB_LOG_URL",
    default=None,
    help="The log service's files view (k8stars log --http-port), for remote log files: http://HOST:PORT.",
)
@click.option(
    "--log-token-file",
    envvar="K8STARS_WEB_LOG_TOKEN_FILE",
    type=click.Path(dir_okay=False),
    default=None,
    help="File holding the bearer token the log service asks for (its --http-token-file; read again when it changes).",
)
@click.option(
    "--image-url",
    envvar="K8STARS_WEB_IMAGE_URL",
    default=None,
    help="The image service (k8stars image serve, tars-tarsimage) that builds uploaded packages: http://HOST[:PORT].",
)
@click.option(
    "--max-upload",
    "max_upload_mb",
    envvar="K8STARS_WEB_MAX_UPLOAD",
    type=int,
    default=200,
    show_default=True,
    help="Largest package uploaded through the console, in MiB.",
)
@log_level_option()
def web(**values: Any) -> None:
    """The web console: services, pods, releases, configs, events and accounts of one namespace."""
    from k8stars.web.service import WebOptions, WebService

    serve_command(WebService, WebOptions, values)
