"""The k8stars-framework chart's image service (`helm template`): Deployment, Service tars-tarsimage on port 80,
least-privilege RBAC (no pods), the values switches; accepted by a real apiserver (server-side dry run)."""

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


def _helm() -> str:
    helm = shutil.which("helm") or str(Path.home() / ".cache" / "k8stars" / "tools" / "bin" / "helm")
    if not Path(helm).is_file():
        pytest.skip("no helm binary (see tests/operator/test_helm.py)")
    return helm


def render(*sets: str) -> dict[str, dict[str, Any]]:
    args = [a for s in sets for a in ("--set", s)]
    out = subprocess.run([_helm(), "template", "fw", str(CHART), "-n", "tars", *args], capture_output=True,
                         text=True, timeout=60, check=False)  # fmt: skip
    assert out.returncode == 0, out.stderr
    docs = [d for d in yaml.safe_load_all(out.stdout) if d and d["metadata"]["name"] == "tars-tarsimage"]
    return {d["kind"]: d for d in docs}


def test_image_service() -> None:
    docs = render()
    assert set(docs) == {"Deployment", "Service", "ServiceAccount", "Role", "RoleBinding"}
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "tars-tarsimage"
    (container,) = pod["containers"]
    assert container["command"] == ["k8stars", "image", "serve"]
    args = container["args"]
    assert {"--host=0.0.0.0", "--port=8080", "--namespace=tars", "--max-builds=5", "--max-upload=200"} <= set(args)
    assert not {"--plain-http", "--https"} & set(args)
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert docs["Service"]["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": "http"}]
    rules = docs["Role"]["rules"]
    resources = {r for rule in rules for r in rule["resources"]}
    assert resources == {"tframeworkconfigs", "timages", "secrets"}  # no pods, unlike K8SFramework's
    assert all(set(rule["verbs"]) <= {"get", "list", "update", "patch"} for rule in rules)
    secrets = next(rule for rule in rules if rule["resources"] == ["secrets"])
    assert secrets["verbs"] == ["get"]


def test_switches() -> None:
    assert render("imageBuilder.enabled=false") == {}
    args = render("imageBuilder.plainHttp=true")["Deployment"]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--plain-http" in args
    args = render("imageBuilder.plainHttp=false")["Deployment"]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--https" in args


def test_the_apiserver_accepts_it(k8s_cluster: Cluster, namespace: str) -> None:
    docs = list(render().values())
    for d in docs:
        d["metadata"]["namespace"] = namespace
        for subject in d.get("subjects") or []:
            subject["namespace"] = namespace
    env = {**os.environ, "KUBECONFIG": str(k8s_cluster.kubeconfig)}
    applied = subprocess.run(["kubectl", "apply", "--server-side", "--dry-run=server", "-n", namespace, "-f", "-"],
                             input=yaml.safe_dump_all(docs), capture_output=True, text=True, timeout=60, env=env,
                             check=False)  # fmt: skip
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout.count("(server dry run)") == len(docs), applied.stdout
