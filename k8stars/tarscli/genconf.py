"""genconf: resolve ``_server_meta.yaml`` into a classic TARS server config with the pod IP and free ports.

Writes ``$TARS_PATH/conf/<build server>.conf`` (K8STARS's layout, plus ``node=`` when a supervisor serves ServerF)
and ``$TARS_PATH/data/server_info.yaml``, both atomically.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from k8stars.tars import confmerge
from k8stars.tarscli.env import (
    META_FILE,
    SERVER_INFO_FILE,
    SERVER_META_ENV,
    SUPERVISOR_ENV,
    TarsEnv,
    parse_duration,
    write_atomic,
)
from k8stars.tarscli.meta import MetaError, ServerConf, ServerInfo, load_meta
from k8stars.tarscli.ports import PortAllocator

log = logging.getLogger("tarscli")

TEMPLATE_ENV = "TARS_SERVER_TEMPLATE"
TEMPLATE_FILE = "template.conf"  # beside the meta file, as the tarsnode init container writes it (podfiles)
RANDOM_PORT = "${random_port}"
LOCAL_IP = "${local_ip}"
NAMESPACE = "${namespace}"
_PORT = re.compile(r"-p\s+(\d+)")


class GenconfError(RuntimeError):
    """genconf cannot produce a configuration."""


@dataclass
class GenconfOptions:
    """The genconf variables; None means "not given" (the meta file's value stays)."""

    application: str | None = None
    server: str | None = None
    set_id: str | None = None
    locator: str | None = None
    build_server: str | None = None
    merge_conf: str | None = None
    ep_uptime: str | None = None  # refresh-endpoint-interval: a duration, or a bare number of ms as in K8STARS


def ep_uptime_ms(text: str) -> int:
    """K8STARS's help said seconds but wrote the number as milliseconds; a bare number keeps that meaning so
    existing deployments do not change, and a unit (``60s``) says what is meant."""
    s = text.strip()
    if s.lstrip("-").isdigit():
        return int(s)
    return round(parse_duration(s) * 1000)


def apply_options(conf: ServerConf, opts: GenconfOptions) -> ServerConf:
    conf = dataclasses.replace(conf)
    conf.application = opts.application or conf.application
    conf.server = opts.server or conf.server
    conf.set_id = opts.set_id or conf.set_id
    conf.locator = opts.locator or conf.locator
    if opts.ep_uptime:
        try:
            conf.refresh_endpoint_interval = ep_uptime_ms(opts.ep_uptime)
        except ValueError as e:
            raise GenconfError(f"TARS_EP_UPTIME: {e}") from None
    if not conf.application or not conf.server:
        raise GenconfError(
            "application or server name is empty: set them in _server_meta.yaml, "
            "with TARS_APPLICATION/TARS_SERVER or --application/--server"
        )
    return conf


def _port_of(endpoint: str) -> int | None:
    m = _PORT.search(endpoint)
    return int(m.group(1)) if m else None


def _fill(template: str, ip: str, allocator: PortAllocator, previous: str | None) -> str:
    endpoint = template.replace(LOCAL_IP, ip)
    if RANDOM_PORT in endpoint:
        port = allocator.allocate(endpoint.replace(RANDOM_PORT, "0"), _port_of(previous) if previous else None)
        endpoint = endpoint.replace(RANDOM_PORT, str(port))
    return endpoint


def resolve(conf: ServerConf, env: TarsEnv, allocator: PortAllocator, previous: ServerInfo | None) -> ServerConf:
    """Fill ``${local_ip}``, ``${random_port}`` (adapters first, then ``local``) and ``${namespace}``. Ports of the
    previous run are preferred when the IP is the same, so a restarted pod keeps its endpoints when it can."""
    old: dict[str, str] = {}
    if previous and previous.local_ip == env.pod_ip and previous.conf.name == conf.name:
        old = {a.object: a.endpoint for a in previous.conf.adapters}
        old["\0local"] = previous.conf.local
    conf = dataclasses.replace(conf, adapters=[dataclasses.replace(a) for a in conf.adapters])
    for a in conf.adapters:
        a.endpoint = _fill(a.endpoint, env.pod_ip, allocator, old.get(a.object))
    conf.locator = conf.locator.replace(NAMESPACE, env.namespace)
    conf.local = _fill(conf.local, env.pod_ip, allocator, old.get("\0local"))
    return conf


def render(info: ServerInfo) -> str:
    """The server config in K8STARS's layout (without its Chinese comment lines)."""
    c = info.conf
    base = str(info.tars_path).rstrip("/")
    lines = ["<tars>", "  <application>",
             f"    enableset={'y' if c.set_id else 'n'}",
             f"    setdivision={c.set_id}",
             "    <client>",
             f"      locator={c.locator}",
             f"      sync-invoke-timeout={c.sync_invoke_timeout}",
             f"      async-invoke-timeout={c.async_invoke_timeout}",
             f"      refresh-endpoint-interval={c.refresh_endpoint_interval}",
             f"      stat ={c.statObj}",
             f"      property={c.propertyObj}",
             f"      report-interval={c.report_interval}",
             f"      sample-rate={c.sample_rate}",
             f"      max-sample-count={c.max_sample_count}",
             f"      asyncthread={c.asyncThreadNum}",
             f"      modulename={c.name}",
             "    </client>",
             "    <server>",
             f"      app={c.application}",
             f"      server={c.server}",
             f"      localip={info.local_ip}",
             f"      local={c.local}"]  # fmt: skip
    if info.node:
        lines.append(f"      node={info.node}")
    for a in c.adapters:
        obj = c.servant(a)
        lines += [f"      <{obj}Adapter>",
                  "        allow",
                  f"        handlegroup={obj}Adapter",
                  f"        servant={obj}",
                  f"        endpoint={a.endpoint}",
                  f"        maxconns={a.maxconns}",
                  f"        protocol={a.protocol}",
                  f"        queuecap={a.queuecap}",
                  f"        queuetimeout={a.queuetimeout}",
                  f"        threads={a.threads}",
                  f"      </{obj}Adapter>"]  # fmt: skip
    lines += [f"      basepath={base}/bin/",
              f"      datapath={base}/data/",
              f"      logpath ={base}/log/",
              f"      logLevel={c.logLevel}",
              f"      logsize={c.logSize}",
              f"      lognum={c.logNum}",
              f"      config={c.configObj}",
              f"      notify={c.notifyObj}",
              f"      log={c.logObj}",
              f"      deactivating-timeout={c.deactivating_timeout}",
              "    </server>", "  </application>", "</tars>"]  # fmt: skip
    return "\n".join(lines) + "\n"


def template_path(env: TarsEnv) -> Path | None:
    """``$TARS_SERVER_TEMPLATE``, else ``template.conf`` beside the meta file when there is one."""
    given = os.environ.get(TEMPLATE_ENV)
    if given:
        return Path(given)
    beside = env.meta_path.parent / TEMPLATE_FILE
    return beside if beside.is_file() else None


def template_vars(info: ServerInfo) -> dict[str, str]:
    """The variables of a TTemplate, filled for this pod (the names K8SFramework's and classic TARS's nodes use)."""
    c = info.conf
    base = str(info.tars_path).rstrip("/")
    return {
        "app": c.application,
        "server": c.server,
        "localip": info.local_ip,
        "local": c.local,
        "locator": c.locator,
        "enableset": "y" if c.set_id else "n",
        "setdivision": c.set_id,
        "asyncthread": str(c.asyncThreadNum),
        "modulename": c.name,
        "basepath": f"{base}/bin/",
        "datapath": f"{base}/data/",
        "logpath": f"{base}/log/",
        "mainclass": f"com.qq.{c.application.lower()}.{c.server.lower()}.{c.server}",
    }


def fill_template(template: str, info: ServerInfo) -> str:
    """Replace the known ``${name}`` variables; others stay as written (a server may use its own)."""
    for name, value in template_vars(info).items():
        template = template.replace("${" + name + "}", value)
    return template


def apply_template(text: str, env: TarsEnv, info: ServerInfo) -> str:
    """The generated config with the server's template (TTemplate chain + profile) merged over it: the template
    chooses timeouts, log levels, framework objects; its variables carry this pod's identity, so the result still
    names this pod's IP, ports and paths. The adapters stay the generated ones."""
    path = template_path(env)
    if path is None:
        return text
    try:
        template = path.read_text(encoding="utf-8")
        return confmerge.merge_text(text, fill_template(template, info))
    except (OSError, confmerge.MergeConfError) as e:
        raise GenconfError(f"server template {path}: {e}") from None


def conf_path(env: TarsEnv, info: ServerInfo) -> Path:
    return env.conf_dir / f"{info.build_server or info.conf.server}.conf"


def write(env: TarsEnv, info: ServerInfo, merge_conf: str | None) -> Path:
    text = apply_template(render(info), env, info)
    if merge_conf:
        try:
            overlay = Path(merge_conf).read_text(encoding="utf-8")
            text = confmerge.merge_text(text, overlay)
        except (OSError, confmerge.MergeConfError) as e:
            raise GenconfError(f"TARS_MERGE_CONF {merge_conf}: {e}") from None
    path = conf_path(env, info)
    try:
        write_atomic(path, text)
        write_atomic(env.data(SERVER_INFO_FILE), info.dump())
    except OSError as e:
        raise GenconfError(f"cannot write the configuration: {e}") from None
    return path


def previous_info(env: TarsEnv) -> ServerInfo | None:
    try:
        return ServerInfo.load(env.data(SERVER_INFO_FILE))
    except MetaError:
        return None


def supervised_info(env: TarsEnv) -> ServerInfo | None:
    """Inside the service started by a supervisor (start.sh running ``tarscli genconf``): the supervisor's
    resolution, whose ports it has leased and registered."""
    from k8stars.tarscli.env import SUPERVISOR_PID_FILE
    from k8stars.tarscli.pidfile import live_pid

    if not os.environ.get(SUPERVISOR_ENV) or live_pid(env.data(SUPERVISOR_PID_FILE)) is None:
        return None
    return previous_info(env)


def genconf(env: TarsEnv, opts: GenconfOptions, allocator: PortAllocator, node: str = "") -> tuple[ServerInfo, Path]:
    """Resolve and write the configuration; returns it and the path of the config file."""
    env.make_dirs()
    info = supervised_info(env)
    if info is None:
        try:
            path = env.meta_path
            if path != env.bin_dir / META_FILE and not path.is_file():
                raise GenconfError(f"{SERVER_META_ENV}={path}: no such file")
            meta = load_meta(path)
        except MetaError as e:
            raise GenconfError(str(e)) from None
        conf = apply_options(meta, opts)
        try:
            resolved = resolve(conf, env, allocator, previous_info(env))
        except (ValueError, RuntimeError) as e:
            raise GenconfError(str(e)) from None
        info = ServerInfo(resolved, env.pod_ip, str(env.tars_path.absolute()), node, opts.build_server or "")
    else:
        log.info("supervised: reusing the supervisor's configuration from %s", env.data(SERVER_INFO_FILE))
    return info, write(env, info, opts.merge_conf)
