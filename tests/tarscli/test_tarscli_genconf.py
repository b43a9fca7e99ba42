"""genconf: K8STARS's layout for the same _server_meta.yaml, env and flags, ports, merge, server_info.yaml."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml  # type: ignore[import-untyped,unused-ignore]

from k8stars.tars.config import TarsConfig
from k8stars.tarscli.env import TarsEnv
from k8stars.tarscli.genconf import GenconfError, GenconfOptions, ep_uptime_ms, genconf
from k8stars.tarscli.meta import ServerInfo
from k8stars.tarscli.ports import PortAllocator

TARSCLI = [sys.executable, "-m", "k8stars.tarscli"]

# K8STARS's examples/simple/_server_meta.yaml
SIMPLE_META = """\
version: v1
application: App
server: SimpleServer
adapters:
  - object: MainObj
  - object: HttpObj
    endpoint: "tcp -h ${local_ip} -p 80"
"""

# The layout K8STARS documents for App.SimpleServer (reference §2.3), less its Chinese comment lines; IP and ports
# are filled in per run. HttpObj's port 80 is fixed by the meta file.
DOCUMENTED = """\
<tars>
<application>
  enableset=n
  setdivision=
  <client>
    locator=tars.tarsregistry.QueryObj@tcp -h tars-registry.tars-system.svc.cluster.local -p 17890
    sync-invoke-timeout=3000
    async-invoke-timeout=5000
    refresh-endpoint-interval=60000
    stat =tars.tarsstat.StatObj
    property=tars.tarsproperty.PropertyObj
    report-interval=6000
    sample-rate=100000
    max-sample-count=50
    asyncthread=3
    modulename=App.SimpleServer
  </client>
  <server>
    app=App
    server=SimpleServer
    localip={ip}
    local=tcp -h 127.0.0.1 -p {local_port} -t 5000
    <App.SimpleServer.MainObjAdapter>
      allow
      handlegroup=App.SimpleServer.MainObjAdapter
      servant=App.SimpleServer.MainObj
      endpoint=tcp -h {ip} -p {main_port} -t 30000
      maxconns=200000
      protocol=tars
      queuecap=10000
      queuetimeout=60000
      threads=5
    </App.SimpleServer.MainObjAdapter>
    <App.SimpleServer.HttpObjAdapter>
      allow
      handlegroup=App.SimpleServer.HttpObjAdapter
      servant=App.SimpleServer.HttpObj
      endpoint=tcp -h {ip} -p 80
      maxconns=200000
      protocol=tars
      queuecap=10000
      queuetimeout=60000
      threads=5
    </App.SimpleServer.HttpObjAdapter>
    basepath={tars}/bin/
    datapath={tars}/data/
    logpath ={tars}/log/
    logLevel=DEBUG
    logsize=100M
    lognum=5
    config=tars.tarsconfig.ConfigObj
    notify=tars.tarsnotify.NotifyObj
    log=tars.tarslog.LogObj
    deactivating-timeout=3000
  </server>
</application>
</tars>
"""


def tars_dir(tmp_path: Path, meta: str = SIMPLE_META) -> Path:
    (tmp_path / "bin").mkdir(parents=True, exist_ok=True)
    (tmp_path / "bin" / "_server_meta.yaml").write_text(meta)
    return tmp_path


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TARS") and k != "POD_IP"}
    return subprocess.run([*TARSCLI, *args], env={**clean, **(env or {})}, capture_output=True, text=True, timeout=60)


def test_layout_matches_k8stars_documented_layout(tmp_path: Path) -> None:
    tp = tars_dir(tmp_path)
    r = run_cli("genconf", env={"TARS_PATH": str(tp), "POD_IP": "127.0.0.5"})
    assert r.returncode == 0, r.stderr
    conf = (tp / "conf" / "SimpleServer.conf").read_text()
    info = yaml.safe_load((tp / "data" / "server_info.yaml").read_text())
    main_port = int(info["conf"]["adapters"][0]["endpoint"].split("-p ")[1].split()[0])
    local_port = int(info["conf"]["local"].split("-p ")[1].split()[0])
    assert 13000 <= main_port <= 16000 and 13000 <= local_port <= 16000 and main_port != local_port
    expected = DOCUMENTED.format(ip="127.0.0.5", main_port=main_port, local_port=local_port, tars=tp)
    # same lines in the same order; K8STARS's own output mixes tabs and spaces, so indentation is not compared
    assert [line.strip() for line in conf.splitlines()] == [line.strip() for line in expected.splitlines()]
    # and it parses as a TARS config with the values a server reads
    parsed = TarsConfig.parse(conf)
    assert parsed.get("/tars/application/server<localip>") == "127.0.0.5"
    assert parsed.get("/tars/application/client<stat>") == "tars.tarsstat.StatObj"
    assert parsed.get("/tars/application/server/App.SimpleServer.MainObjAdapter<allow>") == ""


def test_server_info_has_k8stars_keys(tmp_path: Path) -> None:
    tp = tars_dir(tmp_path)
    assert run_cli("genconf", env={"TARS_PATH": str(tp), "POD_IP": "127.0.0.5"}).returncode == 0
    doc = yaml.safe_load((tp / "data" / "server_info.yaml").read_text())
    assert list(doc) == ["conf", "local_ip", "tars_path"]
    assert list(doc["conf"]) == [
        "application", "server", "set_id", "locator", "sample_rate", "max_sample_count", "statObj", "propertyObj",
        "asyncThreadNum", "sync_invoke_timeout", "async_invoke_timeout", "report_interval",
        "refresh_endpoint_interval", "adapters", "local", "logSize", "logNum", "configObj", "notifyObj", "logObj",
        "logLevel", "deactivating_timeout",
    ]  # fmt: skip
    http = {"object": "HttpObj", "endpoint": "tcp -h 127.0.0.5 -p 80", "maxconns": 200000, "protocol": "tars",
            "queuecap": 10000, "queuetimeout": 60000, "threads": 5}  # fmt: skip
    assert doc["conf"]["adapters"][1] == http
    assert doc["local_ip"] == "127.0.0.5" and doc["tars_path"] == str(tp)


def test_env_and_flags_override_the_meta_file(tmp_path: Path) -> None:
    tp = tars_dir(tmp_path)
    env = {"TARS_PATH": str(tp), "POD_IP": "127.0.0.6", "TARS_APPLICATION": "EnvApp", "TARS_SET_ID": "s.sz.1",
           "TARS_LOCATOR": "tars.tarsregistry.QueryObj@tcp -h 127.0.0.1 -p 1", "TARS_EP_UPTIME": "30s",
           "TARS_BUILD_SERVER": "bin1", "TARS_NAMESPACE": "ns", "TARS_RAND_PORT_MIN": "20000",
           "TARS_RAND_PORT_MAX": "20100"}  # fmt: skip
    r = run_cli("genconf", "--server", "FlagServer", "--set-id", "f.sh.2", env=env)
    assert r.returncode == 0, r.stderr
    conf = TarsConfig.load(tp / "conf" / "bin1.conf")
    assert conf.get("/tars/application/server<app>") == "EnvApp"
    assert conf.get("/tars/application/server<server>") == "FlagServer"  # the flag beats the meta file
    assert conf.get("/tars/application<enableset>") == "y"
    assert conf.get("/tars/application<setdivision>") == "f.sh.2"  # the flag beats the env var
    assert conf.get("/tars/application/client<locator>") == env["TARS_LOCATOR"]
    assert conf.get("/tars/application/client<refresh-endpoint-interval>") == "30000"
    ep = conf.get("/tars/application/server/EnvApp.FlagServer.MainObjAdapter<endpoint>")
    assert re.fullmatch(r"tcp -h 127\.0\.0\.6 -p 20\d\d\d -t 30000", ep) and 20000 <= int(ep.split()[4]) <= 20100


def test_namespace_in_default_locator_and_missing_names(tmp_path: Path) -> None:
    tp = tars_dir(tmp_path, "adapters: [{object: A}]\n")
    r = run_cli("genconf", env={"TARS_PATH": str(tp), "POD_IP": "127.0.0.5"})
    assert r.returncode == 1 and "application or server name is empty" in r.stderr
    r = run_cli("genconf", "--application", "A", "--server", "B", "--namespace", "prod",
                env={"TARS_PATH": str(tp), "POD_IP": "127.0.0.5"})  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "tars-registry.prod.svc.cluster.local" in (tp / "conf" / "B.conf").read_text()


def test_bad_values_are_errors(tmp_path: Path) -> None:
    tp = tars_dir(tmp_path)
    r = run_cli("supervisor", env={"TARS_PATH": str(tp), "TARS_CHECK_INTERVAL": "100"})
    assert r.returncode == 2 and "invalid duration" in r.stderr
    r = run_cli("genconf", env={"TARS_PATH": str(tp), "TARS_RAND_PORT_MIN": "x"})
    assert r.returncode == 2
    tars_dir(tmp_path, "adapters: [{object: A, threads: many}]\napplication: a\nserver: b\n")
    r = run_cli("genconf", env={"TARS_PATH": str(tp), "POD_IP": "127.0.0.5"})
    assert r.returncode == 1 and "threads" in r.stderr


def test_ep_uptime_units() -> None:
    assert ep_uptime_ms("60000") == 60000  # a bare number stays milliseconds, as K8STARS wrote it
    assert ep_uptime_ms("60s") == 60000 and ep_uptime_ms("2m") == 120000


def test_merge_conf_keeps_order_and_comments(tmp_path: Path) -> None:
    tp = tars_dir(tmp_path)
    overlay = tmp_path / "merge.conf"
    overlay.write_text(
        "<tars>\n  <application>\n    # the registry of our own cluster\n    <client>\n"
        "      locator=tars.tarsregistry.QueryObj@tcp -h 127.0.0.1 -p 17890\n      # added\n      custom=1\n"
        "    </client>\n    <server>\n      logLevel=INFO\n      <db>\n        # where\n        host=127.0.0.1\n"
        "      </db>\n    </server>\n  </application>\n</tars>\n"
    )
    r = run_cli("genconf", env={"TARS_PATH": str(tp), "POD_IP": "127.0.0.5", "TARS_MERGE_CONF": str(overlay)})
    assert r.returncode == 0, r.stderr
    lines = [line.strip() for line in (tp / "conf" / "SimpleServer.conf").read_text().splitlines()]
    # replaced in place, the comment before it kept
    i = lines.index("locator=tars.tarsregistry.QueryObj@tcp -h 127.0.0.1 -p 17890")
    assert lines[i - 2 : i] == ["# the registry of our own cluster", "<client>"]
    assert lines[i + 1] == "sync-invoke-timeout=3000"
    # a new key after the domain's last key, with its comment; a new domain at the end of <server>, with its comment
    assert lines[lines.index("modulename=App.SimpleServer") + 1 : lines.index("</client>")] == ["# added", "custom=1"]
    assert lines[lines.index("logLevel=INFO") - 1] == "logpath =" + f"{tp}/log/"
    end = lines.index("</server>")
    assert lines[end - 4 : end] == ["<db>", "# where", "host=127.0.0.1", "</db>"]
    conf = TarsConfig.parse("\n".join(lines))
    assert conf.get("/tars/application/server/db<host>") == "127.0.0.1"


def test_ports_are_reused_when_the_ip_is_the_same(tmp_path: Path) -> None:
    tp = tars_dir(tmp_path)
    env = TarsEnv.create(str(tp), "127.0.0.7")
    first, _ = genconf(env, GenconfOptions(), PortAllocator(env.port_min, env.port_max))
    again, _ = genconf(env, GenconfOptions(), PortAllocator(env.port_min, env.port_max))
    assert again.conf.adapters[0].endpoint == first.conf.adapters[0].endpoint and again.conf.local == first.conf.local
    moved, _ = genconf(TarsEnv.create(str(tp), "127.0.0.8"), GenconfOptions(), PortAllocator(13000, 16000))
    assert moved.conf.adapters[0].endpoint.startswith("tcp -h 127.0.0.8 ")


def test_udp_and_ssl_endpoints_get_ports(tmp_path: Path) -> None:
    meta = ("application: A\nserver: B\nadapters:\n  - object: U\n    endpoint: udp -h ${local_ip} -p ${random_port}\n"
            "  - object: S\n    endpoint: ssl -h ${local_ip} -p ${random_port} -t 1000\n")  # fmt: skip
    tp = tars_dir(tmp_path, meta)
    env = TarsEnv.create(str(tp), "127.0.0.9", port_min=21000, port_max=21010)
    info, _ = genconf(env, GenconfOptions(), PortAllocator(env.port_min, env.port_max))
    ports = [int(a.endpoint.split()[4]) for a in info.conf.adapters]
    assert info.conf.adapters[0].endpoint.startswith("udp -h 127.0.0.9 -p 210")
    assert info.conf.adapters[1].endpoint.startswith("ssl -h 127.0.0.9 -p 210")
    assert len(set(ports)) == 2


def test_supervised_genconf_reuses_the_supervisors_configuration(tmp_path: Path) -> None:
    tp = tars_dir(tmp_path)
    env = TarsEnv.create(str(tp), "127.0.0.5")
    node = "tars.tarsnode.ServerObj@x"
    info, _ = genconf(env, GenconfOptions(), PortAllocator(env.port_min, env.port_max), node=node)
    (tp / "data" / "supervisor.pid").write_text(f"{os.getpid()} 0\n")  # we play the supervisor
    supervised = {"TARS_PATH": str(tp), "POD_IP": "127.0.0.5", "TARSCLI_SUPERVISOR_PID": str(os.getpid())}
    r = run_cli("genconf", env=supervised)
    assert r.returncode == 0, r.stderr
    assert ServerInfo.load(tp / "data" / "server_info.yaml") == info
    assert "node=tars.tarsnode.ServerObj@x" in (tp / "conf" / "SimpleServer.conf").read_text()


def test_no_free_port_is_an_error(tmp_path: Path) -> None:
    tp = tars_dir(tmp_path)
    with socket.socket() as s:
        s.bind(("127.0.0.5", 0))
        port = s.getsockname()[1]
        env = TarsEnv.create(str(tp), "127.0.0.5", port_min=port, port_max=port)
        with pytest.raises(GenconfError, match="no available port"):
            genconf(env, GenconfOptions(), PortAllocator(env.port_min, env.port_max))


def test_operator_mounted_meta_is_read_from_tars_server_meta(tmp_path: Path) -> None:
    """The operator mounts the TServer's meta at $TARS_SERVER_META; it wins over bin/_server_meta.yaml."""
    from k8stars.operator.translate import server_meta

    with open(Path(__file__).resolve().parents[2] / "examples" / "k8s" / "tserver.yaml") as f:
        tserver = yaml.safe_load(f)
    meta_dir = tmp_path / "tarsnode" / "meta"
    meta_dir.mkdir(parents=True)
    (meta_dir / "_server_meta.yaml").write_text(yaml.safe_dump(server_meta(tserver)))
    tp = tars_dir(tmp_path / "tars")  # holds SIMPLE_META (App.SimpleServer), which must not be used
    env = {"TARS_PATH": str(tp), "POD_IP": "127.0.0.5", "TARS_SERVER_META": str(meta_dir / "_server_meta.yaml")}
    r = run_cli("genconf", env=env)
    assert r.returncode == 0, r.stderr
    parsed = TarsConfig.parse((tp / "conf" / "HelloServer.conf").read_text())
    assert parsed.get("/tars/application/server<app>") == "Test"
    assert parsed.get("/tars/application/server/Test.HelloServer.HelloObjAdapter<endpoint>") == (
        "tcp -h 127.0.0.5 -p 10000 -t 60000"
    )
    missing = run_cli("genconf", env={**env, "TARS_SERVER_META": str(tmp_path / "nowhere.yaml")})
    assert missing.returncode == 1 and "TARS_SERVER_META" in missing.stderr and "no such file" in missing.stderr


def test_tarsnode_init_container_work_dir_feeds_the_agent(tmp_path: Path) -> None:
    """The operator's pod: the server container has only the user's env; the tarsnode init container (its env as
    the operator renders it, resolved as the kubelet would) writes the pod's facts, the meta and the template into the
    work dir, and genconf in the server container takes its pod IP, namespace, servants and template from there."""
    from k8stars.operator import translate

    with open(Path(__file__).resolve().parents[2] / "examples" / "k8s" / "tserver.yaml") as f:
        tserver = yaml.safe_load(f)
    tserver["metadata"].update(namespace="shop", uid="u-1")
    tserver["spec"]["k8s"]["env"] = [{"name": "GREETING", "value": "hi"}]
    pod = translate.pod_template(tserver, "shop")["spec"]
    (server,) = pod["containers"]
    assert server["env"] == [{"name": "GREETING", "value": "hi"}]  # exactly the user's
    user_mounts = [m["name"] for m in tserver["spec"]["k8s"]["mounts"]]
    assert [m["name"] for m in server["volumeMounts"]] == [*user_mounts, "host-timezone", "tarsnode-work-dir"]
    configmap = translate.server_meta_configmap(
        tserver,
        "<tars>\n  <application>\n    <server>\n      where=${localip}\n    </server>\n  </application>\n</tars>\n",
    )
    pod_facts = {"metadata.namespace": "shop", "metadata.name": "test-helloserver-1", "status.podIP": "127.0.0.9"}
    init_env = {}
    for var in pod["initContainers"][0]["env"]:
        source = var.get("valueFrom") or {}
        if "fieldRef" in source:
            init_env[var["name"]] = pod_facts[source["fieldRef"]["fieldPath"]]
        elif "configMapKeyRef" in source:
            init_env[var["name"]] = configmap["data"][source["configMapKeyRef"]["key"]]
        else:
            init_env[var["name"]] = var["value"]
    work = tmp_path / "tarsnode"
    r = run_cli("nodeinit", env={**init_env, "TARS_NODE_DIR": str(work)})
    assert r.returncode == 0, r.stderr
    environment = (work / "util" / "environment").read_text()
    assert "PodIP=127.0.0.9\n" in environment and "ServerApp=Test\n" in environment

    tp = tmp_path / "tars"  # an image without bin/_server_meta.yaml
    r = run_cli("genconf", env={"TARS_PATH": str(tp), "TARS_NODE_DIR": str(work)})
    assert r.returncode == 0, r.stderr
    conf = TarsConfig.load(tp / "conf" / "HelloServer.conf")
    server_path = "/tars/application/server"
    assert conf.get(f"{server_path}/Test.HelloServer.HelloObjAdapter<endpoint>") == "tcp -h 127.0.0.9 -p 10000 -t 60000"
    assert conf.get(f"{server_path}<where>") == "127.0.0.9"
    assert "tars-registry.shop.svc" in (conf.get("/tars/application/client<locator>") or "")
    # A variable the user sets still wins over the work dir.
    r = run_cli("genconf", env={"TARS_PATH": str(tp), "TARS_NODE_DIR": str(work), "POD_IP": "127.0.0.10"})
    assert r.returncode == 0, r.stderr
    assert "127.0.0.10" in (tp / "conf" / "HelloServer.conf").read_text()


def test_server_template_beside_the_meta_file_is_filled_per_pod(tmp_path: Path) -> None:
    """The operator mounts template.conf (TTemplate chain + profile) beside the meta file; its variables get this
    pod's values, its settings win over the generated ones, TARS_MERGE_CONF still goes last."""
    tp = tars_dir(tmp_path)
    (tp / "bin" / "template.conf").write_text(
        "<tars>\n  <application>\n    <client>\n      sync-invoke-timeout=1234\n    </client>\n    <server>\n"
        "      localip=${localip}\n      logpath=${logpath}\n      mine=${app}.${server}@${localip}\n"
        "      custom=${custom}\n      mainclass=${mainclass}\n    </server>\n  </application>\n</tars>\n"
    )
    overlay = tmp_path / "merge.conf"
    overlay.write_text("<tars>\n  <application>\n    <client>\n      sync-invoke-timeout=999\n    </client>\n"
                       "  </application>\n</tars>\n")  # fmt: skip
    r = run_cli("genconf", env={"TARS_PATH": str(tp), "POD_IP": "127.0.0.6", "TARS_MERGE_CONF": str(overlay)})
    assert r.returncode == 0, r.stderr
    conf = TarsConfig.load(tp / "conf" / "SimpleServer.conf")
    server = "/tars/application/server"
    assert conf.get(f"{server}<mine>") == "App.SimpleServer@127.0.0.6"
    assert conf.get(f"{server}<localip>") == "127.0.0.6"
    assert conf.get(f"{server}<custom>") == "${custom}"  # not ours to fill
    assert conf.get(f"{server}<mainclass>") == "com.qq.app.simpleserver.SimpleServer"
    assert conf.get("/tars/application/client<sync-invoke-timeout>") == "999"
    assert str(conf.get(f"{server}/App.SimpleServer.MainObjAdapter<endpoint>")).startswith("tcp -h 127.0.0.6 -p ")


def test_broken_server_template_is_a_clear_error(tmp_path: Path) -> None:
    tp = tars_dir(tmp_path)
    broken = tmp_path / "broken.conf"
    broken.write_text("<tars>\n  <server>\n</tars>\n")
    r = run_cli("genconf", env={"TARS_PATH": str(tp), "POD_IP": "127.0.0.6", "TARS_SERVER_TEMPLATE": str(broken)})
    assert r.returncode != 0
    assert f"server template {broken}: line 3: xml end not match :tars" in r.stderr
    assert not (tp / "conf" / "SimpleServer.conf").exists()  # nothing half-written
