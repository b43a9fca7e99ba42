"""The k8stars-framework chart's tars-log Deployment, Service and claim (`helm template`): the port, the registration
locator, the log directory on an emptyDir or a PVC, the values switches; both variants accepted by a real
apiserver."""

from __future__ import annotations

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


def _helm() -> str:
    helm = shutil.which("helm") or str(Path.home() / ".cache" / "k8stars" / "tools" / "bin" / "helm")
    if not Path(helm).is_file():
        pytest.skip("no helm binary (see tests/operator/test_helm.py)")
    return helm


def helm_template(*sets: str) -> subprocess.CompletedProcess[str]:
    args = [a for s in sets for a in ("--set", s)]
    return subprocess.run([_helm(), "template", "fw", str(CHART), "-n", "tars", *args], capture_output=True,
                          text=True, timeout=60)  # fmt: skip


def render(*sets: str) -> dict[str, dict[str, Any]]:
    out = helm_template(*sets)
    assert out.returncode == 0, out.stderr
    docs = [d for d in yaml.safe_load_all(out.stdout) if d and d["metadata"]["name"] == "tars-log"]
    return {d["kind"]: d for d in docs}


def test_log_deployment_and_service() -> None:
    docs = render()
    assert set(docs) == {"Deployment", "Service"}
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == ["k8stars", "log"]
    args = container["args"]
    assert "--endpoint=tcp -h 0.0.0.0 -p 10005 -t 60000" in args and f"--log-dir={LOG_DIR}" in args
    assert "--locator=tars.tarsregistry.QueryObj@tcp -h tars-registry.tars.svc.cluster.local -p 17890" in args
    assert "--stdout" not in args and "--no-ip-prefix" not in args
    assert container["env"][0]["name"] == "POD_IP"  # what LogObj is registered at
    assert container["volumeMounts"] == [{"name": "logs", "mountPath": LOG_DIR}, {"name": "tmp", "mountPath": "/tmp"}]
    assert pod["volumes"] == [{"name": "tmp", "emptyDir": {}}, {"name": "logs", "emptyDir": {}}]
    assert docs["Deployment"]["spec"]["replicas"] == 1
    assert docs["Service"]["spec"]["ports"] == [{"name": "tars", "port": 10005, "targetPort": "tars"}]


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
    assert pod["volumes"][1:] == [{"name": "logs", "persistentVolumeClaim": {"claimName": "tars-log"}}]
    assert pod["securityContext"]["fsGroup"] == 1000 and pod["securityContext"]["runAsNonRoot"] is True
    args = pod["containers"][0]["args"]
    assert {"--stdout", "--no-ip-prefix", "--hourly=Test.Hello", "--log-type=Test.Hello.biz=2hour"} <= set(args)
    docs = render("log.storage=pvc", "log.pvc.existingClaim=mine")
    assert "PersistentVolumeClaim" not in docs
    (_tmp, volume) = docs["Deployment"]["spec"]["template"]["spec"]["volumes"]
    assert volume["persistentVolumeClaim"] == {"claimName": "mine"}
    assert render("log.emptyDir.sizeLimit=2Gi")["Deployment"]["spec"]["template"]["spec"]["volumes"] == [
        {"name": "tmp", "emptyDir": {}}, {"name": "logs", "emptyDir": {"sizeLimit": "2Gi"}}]  # fmt: skip
    bad = helm_template("log.storage=hostPath")
    assert bad.returncode != 0 and 'log.storage "hostPath": emptyDir' in bad.stderr


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
