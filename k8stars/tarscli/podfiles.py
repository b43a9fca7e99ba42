"""The tarsnode work dir: how the agent learns about its pod without anything added to the server container.

As in K8SFramework, a TARS pod's server container has exactly the user's env and mounts plus `host-timezone` and the
`tarsnode-work-dir` emptyDir (at /usr/local/app/tars/tarsnode). The `tarsnode` init container, which gets the
pod's facts from the downward API and the server's meta and config template from its ConfigMap, writes them there
(`tarscli nodeinit`):

- `util/environment`: K8SFramework's file, one `Key='value'` line each (shell-sourceable): Namespace, PodName, PodIP,
  ServerApp, ServerName, LauncherType, and TARS_TERMINATION_GRACE_PERIOD;
- `conf/_server_meta.yaml` and `conf/template.conf`: what the operator's `<server>-server-meta` ConfigMap holds.

Every tarscli command then starts with `seed()`: what the pod's files say becomes the default of the matching
environment variable (POD_IP, POD_NAME, TARS_NAMESPACE, TARS_TERMINATION_GRACE_PERIOD, LauncherType,
TARS_SERVER_META); a variable
the user sets still wins.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping, MutableMapping
from pathlib import Path

from k8stars.tarscli.env import SERVER_META_ENV, read_text, write_atomic

NODE_DIR_ENV = "TARS_NODE_DIR"  # where the work dir is; only tests and local runs move it
DEFAULT_NODE_DIR = "/usr/local/app/tars/tarsnode"
ENVIRONMENT_FILE = "util/environment"
META_FILE = "conf/_server_meta.yaml"
TEMPLATE_FILE = "conf/template.conf"  # beside the meta file, where genconf looks for the template
# The init container's inputs: the ConfigMap's two keys.
META_ENV = "K8STARS_SERVER_META"
TEMPLATE_ENV = "K8STARS_SERVER_TEMPLATE"

WRITTEN = ("Namespace", "PodName", "PodIP", "ServerApp", "ServerName", "LauncherType", "TARS_TERMINATION_GRACE_PERIOD")
SEEDS = {  # environment file key -> the variable it is the default of
    "PodIP": "POD_IP",
    "PodName": "POD_NAME",
    "Namespace": "TARS_NAMESPACE",
    "TARS_TERMINATION_GRACE_PERIOD": "TARS_TERMINATION_GRACE_PERIOD",
    "LauncherType": "LauncherType",  # the supervisor's: foreground or background (launch.py)
}


def node_dir(environ: Mapping[str, str] = os.environ) -> Path:
    return Path(environ.get(NODE_DIR_ENV) or DEFAULT_NODE_DIR)


def write(directory: Path, environ: Mapping[str, str]) -> list[str]:
    """The init container's part: the files above from its environment; the paths written."""
    lines = [f"{key}={shlex.quote(environ[key])}\n" for key in WRITTEN if environ.get(key)]
    written = [ENVIRONMENT_FILE]
    write_atomic(directory / ENVIRONMENT_FILE, "".join(lines))
    for name, var in ((META_FILE, META_ENV), (TEMPLATE_FILE, TEMPLATE_ENV)):
        if environ.get(var):
            write_atomic(directory / name, environ[var])
            written.append(name)
    return written


def read_environment(path: Path) -> dict[str, str]:
    """`Key=value` lines (shell quoting, `export` and comments allowed); a missing file is empty."""
    values: dict[str, str] = {}
    for line in (read_text(path) or "").splitlines():
        try:
            words = shlex.split(line, comments=True)
        except ValueError:
            continue
        if words[:1] == ["export"]:
            words = words[1:]
        if len(words) == 1 and "=" in words[0]:
            key, _, value = words[0].partition("=")
            values[key] = value
    return values


def seed(environ: MutableMapping[str, str]) -> None:
    """Defaults from the work dir for the variables the agent reads (see the module's doc)."""
    directory = node_dir(environ)
    values = read_environment(directory / ENVIRONMENT_FILE)
    for key, var in SEEDS.items():
        if values.get(key) and not environ.get(var):
            environ[var] = values[key]
    meta = directory / META_FILE
    if not environ.get(SERVER_META_ENV) and meta.is_file():
        environ[SERVER_META_ENV] = str(meta)
