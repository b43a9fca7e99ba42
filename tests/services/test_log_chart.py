"""The k8stars-framework chart's tars-log Deployment, Service, claim and token Secret (`helm template`): the port, the
registration locator, the log directory on an emptyDir or a PVC, the values switches, the files view's bearer token
(a random Secret mounted read-only, kept on upgrade through `lookup`); both variants accepted by a real
apiserver."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped,unused-ignore]

from k8stars.testing.cluster import Cluster

CHART = Path(__file__).resolve().parents[2] / "deploy" / "helm" / "k8stars-framework"
LOG_DIR = "/usr/local/app/tars/remote_app_log"
TOKEN_FILE = "/etc/tars-log-token/token"
TOKEN_MOUNT = {"name": "http-token", "mountPath": "/etc/tars-log-token", "readOnly": True}
TOKEN_VOLUME = {"name": "http-token", "secret": {"secretName": "tars-log-token", "defaultMode": 0o440}}


def _helm() -> str:
    helm = shutil.which("helm") or str(Path.home() / ".cache" / "k8stars" / "tools" / "bin" / "helm")
    if not Path(helm).is_file():
        pytest.skip("no helm binary (see tests/operator/test_helm.py)")
    return helm


def helm_template(*sets: str, namespace: str = "tars", cluster: Cluster | None = None
                  ) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """``helm template``; with ``cluster`` its ``lookup`` reads that cluster (``--dry-run=server``)."""
    args = [a for s in sets for a in ("--set", s)]
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig)} if cluster else None
    server = ["--dry-run=server"] if cluster else []
    return subprocess.run([_helm(), "template", "fw", str(CHART), "-n", namespace, *server, *args],
                          capture_output=True, text=True, timeout=60, env=env)  # fmt: skip


def render(*sets: str, namespace: str = "tars", cluster: Cluster | None = None) -> dict[str, dict[str, Any]]:
    out = helm_template(*sets, namespace=namespace, cluster=cluster)
    assert out.returncode == 0, out.stderr
    docs = [d for d in yaml.safe_load_all(out.stdout) if d and d["metadata"]["name"] in ("tars-log", "tars-log-token")]
    return {d["kind"]: d for d in docs}


def token_of(secret: dict[str, Any]) -> str:
    return base64.b64decode(secret["data"]["token"]).decode()


def test_log_deployment_and_service() -> None:
    docs = render()
    assert set(docs) == {"Deployment", "Service", "Secret"}
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == ["k8stars", "log"]
    args = container["args"]
    assert "--endpoint=tcp -h 0.0.0.0 -p 10005 -t 60000" in args and f"--log-dir={LOG_DIR}" in args
    assert "--locator=tars.tarsregistry.QueryObj@tcp -h tars-registry.tars.svc.cluster.local -p 17890" in args
    assert "--stdout" not in args and "--no-ip-prefix" not in args
    assert container["env"][0]["name"] == "POD_IP"  # what LogObj is registered at
    assert container["volumeMounts"] == [{"name": "logs", "mountPath": LOG_DIR}, {"name": "tmp", "mountPath": "/tmp"},
                                         TOKEN_MOUNT]  # fmt: skip
    assert pod["volumes"] == [{"name": "tmp", "emptyDir": {}}, {"name": "logs", "emptyDir": {}}, TOKEN_VOLUME]
    assert docs["Deployment"]["spec"]["replicas"] == 1
    assert docs["Service"]["spec"]["ports"] == [{"name": "tars", "port": 10005, "targetPort": "tars"},
                                                {"name": "http", "port": 9329, "targetPort": "http"}]  # fmt: skip


def test_log_on_a_claim_and_the_switches() -> None:
    assert render("log.enabled=false") == {}
    docs = render("log.storage=pvc", "log.pvc.size=5Gi", "log.stdout=true", "log.ipPrefix=false",
                  "log.hourly={Test.Hello}", "log.logTypes.Test\\.Hello\\.biz=2hour", "log.fsGroup=1000")  # fmt: skip
    claim = docs["PersistentVolumeClaim"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "5Gi"
    assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    deployment = docs["Deployment"]["spec"]
    assert deployment["strategy"]["type"] == "Recreate"  # one ReadWriteOnce claim
    pod = deployment["template"]["spec"]
    assert pod["volumes"][1:] == [{"name": "logs", "persistentVolumeClaim": {"claimName": "tars-log"}}, TOKEN_VOLUME]
    assert pod["securityContext"]["fsGroup"] == 1000 and pod["securityContext"]["runAsNonRoot"] is True
    args = pod["containers"][0]["args"]
    assert {"--stdout", "--no-ip-prefix", "--hourly=Test.Hello", "--log-type=Test.Hello.biz=2hour"} <= set(args)
    docs = render("log.storage=pvc", "log.pvc.existingClaim=mine")
    assert "PersistentVolumeClaim" not in docs
    (_tmp, volume, _token) = docs["Deployment"]["spec"]["template"]["spec"]["volumes"]
    assert volume["persistentVolumeClaim"] == {"claimName": "mine"}
    assert render("log.emptyDir.sizeLimit=2Gi")["Deployment"]["spec"]["template"]["spec"]["volumes"] == [
        {"name": "tmp", "emptyDir": {}}, {"name": "logs", "emptyDir": {"sizeLimit": "2Gi"}}, TOKEN_VOLUME]  # fmt: skip
    bad = helm_template("log.storage=hostPath")
    assert bad.returncode != 0 and 'log.storage "hostPath": emptyDir' in bad.stderr


def test_the_files_view_asks_for_the_secret_token() -> None:
    docs = render()
    secret = docs["Secret"]
    assert secret["metadata"]["name"] == "tars-log-token" and secret["type"] == "Opaque"
    token = token_of(secret)
    assert len(token) == 48 and token.isalnum() and token != token_of(render()["Secret"])  # random at each install
    assert "helm.sh/resource-policy" not in secret["metadata"].get("annotations", {})  # goes with the release
    args = docs["Deployment"]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert f"--http-token-file={TOKEN_FILE}" in args and "--http-port=9329" in args


def test_the_token_is_kept_on_upgrade(k8s_cluster: Cluster, namespace: str) -> None:
    env = {**os.environ, "KUBECONFIG": str(k8s_cluster.kubeconfig)}
    first = render(namespace=namespace, cluster=k8s_cluster)["Secret"]  # nothing to keep yet: a new random one
    applied = subprocess.run(["kubectl", "apply", "--server-side", "-n", namespace, "-f", "-"],
                             input=yaml.safe_dump(first), capture_output=True, text=True, timeout=60,
                             env=env)  # fmt: skip
    assert applied.returncode == 0, applied.stderr
    again = render(namespace=namespace, cluster=k8s_cluster)["Secret"]  # `lookup` finds it: the same token
    assert token_of(again) == token_of(first)


@pytest.mark.parametrize("sets", [(), ("log.storage=pvc", "log.fsGroup=1000", "log.emptyDir.sizeLimit=1Gi")])
def test_the_apiserver_accepts_both_storages(k8s_cluster: Cluster, namespace: str, sets: tuple[str, ...]) -> None:
    docs = list(render(*sets).values())
    for d in docs:
        d["metadata"]["namespace"] = namespace
    env = {**os.environ, "KUBECONFIG": str(k8s_cluster.kubeconfig)}
    applied = subprocess.run(["kubectl", "apply", "--server-side", "--dry-run=server", "-n", namespace, "-f", "-"],
                             input=yaml.safe_dump_all(docs), capture_output=True, text=True, timeout=60,
                             env=env)  # fmt: skip
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout.count("(server dry run)") == len(docs), applied.stdout
