"""The k8stars-framework chart's tars-adminreg (`helm template`): the Deployment registering AdminRegObj, hardened like
every framework pod, its Service, and a Role with only what AdminReg needs (read pods and TAccounts, write TPlugins),
checked with the apiserver's authorizer (`kubectl auth can-i --as` the ServiceAccount)."""

from __future__ import annotations

import os
import subprocess
from typing import Any

import yaml  # type: ignore[import-untyped,unused-ignore]
from test_log_chart import helm_template

from k8stars.testing.cluster import Cluster


def render(*sets: str) -> dict[str, dict[str, Any]]:
    out = helm_template(*sets)
    assert out.returncode == 0, out.stderr
    docs = [d for d in yaml.safe_load_all(out.stdout) if d and d["metadata"]["name"] == "tars-adminreg"]
    return {d["kind"]: d for d in docs}


def test_adminreg_deployment_and_service() -> None:
    docs = render()
    assert set(docs) == {"Deployment", "Service", "ServiceAccount", "Role", "RoleBinding"}
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == ["k8stars", "adminreg"]
    assert {"--endpoint=tcp -h 0.0.0.0 -p 12000 -t 60000", "--namespace=tars", "--node-port=19385",
            "--locator=tars.tarsregistry.QueryObj@tcp -h tars-registry.tars.svc.cluster.local -p 17890",
            "--admin-endpoint=tcp -h 127.0.0.1 -p 19385"} <= set(container["args"])  # fmt: skip
    assert container["env"][0]["name"] == "POD_IP"  # registered from the pod IP: what the node servants trust
    assert pod["serviceAccountName"] == "tars-adminreg" and pod["securityContext"]["runAsNonRoot"] is True
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True and security["allowPrivilegeEscalation"] is False
    assert docs["Service"]["spec"]["ports"] == [{"name": "tars", "port": 12000, "targetPort": "tars"}]
    assert render("adminreg.enabled=false") == {}
    assert render("adminreg.port=12001")["Service"]["spec"]["ports"][0]["port"] == 12001


def test_the_role_is_least_privilege(k8s_cluster: Cluster, namespace: str) -> None:
    docs = list(render().values())
    for d in docs:
        d["metadata"]["namespace"] = namespace
    for d in docs:
        if d["kind"] == "RoleBinding":
            d["subjects"][0]["namespace"] = namespace
    env = {**os.environ, "KUBECONFIG": str(k8s_cluster.kubeconfig)}
    applied = subprocess.run(["kubectl", "apply", "--server-side", "-n", namespace, "-f", "-"],
                             input=yaml.safe_dump_all(docs), capture_output=True, text=True, timeout=60,
                             env=env)  # fmt: skip
    assert applied.returncode == 0, applied.stderr
    account = f"system:serviceaccount:{namespace}:tars-adminreg"

    def can(verb: str, resource: str) -> bool:
        out = subprocess.run(["kubectl", "auth", "can-i", verb, resource, "-n", namespace, "--as", account],
                             capture_output=True, text=True, timeout=30, env=env)  # fmt: skip
        return out.stdout.strip() == "yes"

    allowed = [("get", "pods"), ("list", "pods"), ("get", "taccounts.k8s.tars.io"), ("list", "taccounts.k8s.tars.io"),
               ("create", "tplugins.k8s.tars.io"), ("patch", "tplugins.k8s.tars.io")]  # fmt: skip
    denied = [("delete", "pods"), ("create", "pods"), ("watch", "pods"), ("get", "secrets"),
              ("patch", "taccounts.k8s.tars.io"), ("delete", "tplugins.k8s.tars.io"),
              ("patch", "tservers.k8s.tars.io")]  # fmt: skip
    assert [a for a in allowed if not can(*a)] == []
    assert [d for d in denied if can(*d)] == []
