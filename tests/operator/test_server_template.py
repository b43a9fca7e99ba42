"""The TServer's TARS config per pod: the operator resolves the TTemplate chain and the profile into the server-meta
ConfigMap, and a real `tarscli genconf` in the pod fills it with that pod's IP, ports and paths."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

from operator_helpers import OperatorRunner, load_examples, until

from k8stars.kube.client import Kube, Obj
from k8stars.kube.resources import CONFIGMAP, STATEFULSET, TSERVER, TTEMPLATE
from k8stars.tars.config import TarsConfig

META = "test-helloserver-server-meta"
LOCATOR = "tars.tarsregistry.QueryObj@tcp -h 127.0.0.1 -p 17890"
PROFILE = "<tars>\n  <application>\n    <server>\n      mainloop-timeout=250\n      profile-key=${app}-x\n    </server>\n  </application>\n</tars>\n"  # noqa: E501


async def _setup(kube: Kube, namespace: str) -> None:
    for doc in load_examples("ttemplate.yaml"):
        await kube.create(TTEMPLATE, namespace, doc)
    (ts,) = load_examples("tserver.yaml")
    ts = copy.deepcopy(ts)
    ts["spec"]["tars"]["profile"] = PROFILE
    await kube.create(TSERVER, namespace, ts)


async def _template(kube: Kube, namespace: str, has: str) -> str:
    async def probe() -> str | None:
        cm = await kube.get(CONFIGMAP, namespace, META)
        text = str(((cm or {}).get("data") or {}).get("template.conf") or "")
        return text if has in text else None

    found: str = await until(probe, timeout=20, what=f"template.conf with {has!r}")
    return found


def _genconf(tmp_path: Path, configmap: Obj, ip: str) -> TarsConfig:
    meta_dir = tmp_path / "meta"  # the ConfigMap as the pod mounts it
    meta_dir.mkdir(parents=True, exist_ok=True)
    for key, text in configmap["data"].items():
        (meta_dir / key).write_text(text)
    tars_path = tmp_path / "tars"
    env = {**os.environ, "TARS_PATH": str(tars_path), "POD_IP": ip, "TARS_LOCATOR": LOCATOR,
           "TARS_SERVER_META": str(meta_dir / "_server_meta.yaml")}  # fmt: skip
    env.pop("TARS_SERVER_TEMPLATE", None)
    done = subprocess.run([sys.executable, "-m", "k8stars.tarscli", "genconf"], env=env, capture_output=True,
                          text=True, timeout=60, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    (conf,) = (tars_path / "conf").glob("*.conf")
    return TarsConfig.load(conf)


async def test_template_chain_and_profile_reach_the_pod_config(
    kube: Kube, namespace: str, operator: OperatorRunner, tmp_path: Path
) -> None:
    await _setup(kube, namespace)
    text = await _template(kube, namespace, "mainloop-timeout=250")
    assert "logLevel=DEBUG" in text  # from tars.cpp (the child)
    assert "stat=tars.tarsstat.StatObj" in text  # from tars.default (the root)
    assert "${localip}" in text  # variables stay for the pod to fill

    configmap = await kube.get(CONFIGMAP, namespace, META)
    assert configmap is not None
    server = "/tars/application/server"
    for ip in ("127.64.9.1", "127.64.9.2"):  # two pods, two configs: each with its own identity
        conf = _genconf(tmp_path / ip, configmap, ip)
        assert conf.get(f"{server}<localip>") == ip
        assert conf.get(f"{server}<app>") == "Test" and conf.get(f"{server}<server>") == "HelloServer"
        assert conf.get(f"{server}<mainloop-timeout>") == "250"  # the profile wins over tars.cpp's 100
        assert conf.get(f"{server}<profile-key>") == "Test-x"
        assert conf.get(f"{server}<loglevel>") == "DEBUG"
        assert conf.get("/tars/application/client<modulename>") == "Test.HelloServer"
        assert conf.get(f"{server}<basepath>") == f"{tmp_path / ip / 'tars'}/bin/"
        adapter = f"{server}/Test.HelloServer.HelloObjAdapter<endpoint>"
        assert conf.get(adapter) is not None and f"-h {ip} " in str(conf.get(adapter))


async def test_template_edit_updates_the_configmap_without_a_rollout(
    kube: Kube, namespace: str, operator: OperatorRunner
) -> None:
    await _setup(kube, namespace)
    await _template(kube, namespace, "mainloop-timeout=250")
    await operator.idle()
    sts = await kube.get(STATEFULSET, namespace, "test-helloserver")
    assert sts is not None
    root = await kube.get(TTEMPLATE, namespace, "tars.default")
    assert root is not None
    content = root["spec"]["content"].replace("deactivating-timeout=3000", "deactivating-timeout=4500")
    await kube.merge_patch(TTEMPLATE, namespace, "tars.default", {"spec": {"content": content}})
    await _template(kube, namespace, "deactivating-timeout=4500")  # the root's edit reached the grandchild's users
    await operator.idle()
    after = await kube.get(STATEFULSET, namespace, "test-helloserver")
    assert after is not None
    assert after["metadata"]["generation"] == sts["metadata"]["generation"]  # pods pick it up at their next start


async def test_missing_parent_keeps_the_last_template(kube: Kube, namespace: str, operator: OperatorRunner) -> None:
    await _setup(kube, namespace)
    await _template(kube, namespace, "mainloop-timeout=250")
    await kube.merge_patch(TTEMPLATE, namespace, "tars.cpp", {"spec": {"parent": "tars.gone"}})
    await operator.idle()
    kept = await _template(kube, namespace, "mainloop-timeout=250")
    assert "stat=tars.tarsstat.StatObj" in kept  # not emptied: pods keep starting with the last good template
