"""deploy/helm/k8stars-controller renders with `helm template` and installs on the control plane.

Needs a helm binary: $K8STARS_HELM, `helm` on PATH, or ~/.cache/k8stars/tools/bin/helm (built from the Go module
proxy: `GOBIN=~/.cache/k8stars/tools/bin go install helm.sh/helm/v3/cmd/helm@v3.22.0`). Skipped without one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped,unused-ignore]
from operator_helpers import until

from k8stars.kube import crds
from k8stars.kube.client import Kube, Resource
from k8stars.operator import webhook
from k8stars.testing.cluster import Cluster

CHART = Path(__file__).resolve().parents[2] / "deploy" / "helm" / "k8stars-controller"
DEPLOYMENT = Resource("apps", "v1", "deployments", "Deployment")


def _helm() -> str | None:
    for candidate in (
        os.environ.get("K8STARS_HELM"),
        shutil.which("helm"),
        str(Path.home() / ".cache" / "k8stars" / "tools" / "bin" / "helm"),
    ):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


HELM = _helm()
pytestmark = pytest.mark.skipif(HELM is None, reason="no helm binary (see the module docstring)")


def render(release: str, namespace: str, *args: str) -> list[dict[str, Any]]:
    assert HELM is not None
    out = subprocess.run(
        [HELM, "template", release, str(CHART), "--namespace", namespace, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def test_chart_renders_crds_rbac_operator_and_webhooks() -> None:
    docs = render("k8stars", "tars-system", "--include-crds")
    kinds = sorted({d["kind"] for d in docs})
    assert kinds == [
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "Deployment",
        "MutatingWebhookConfiguration",
        "Secret",
        "Service",
        "ServiceAccount",
        "ValidatingWebhookConfiguration",
    ]
    rendered_crds = {d["metadata"]["name"]: d for d in docs if d["kind"] == "CustomResourceDefinition"}
    assert rendered_crds == {c["metadata"]["name"]: c for c in crds.all_crds()}

    # The chart's hooks are the operator's own (same names, rules, review versions, side effects).
    ours = webhook.webhook_configurations("https://x", "ca")
    for kind, expected in zip(("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"), ours, strict=True):
        (config,) = [d for d in docs if d["kind"] == kind]
        assert [h["name"] for h in config["webhooks"]] == [h["name"] for h in expected["webhooks"]]
        for hook, want in zip(config["webhooks"], expected["webhooks"], strict=True):
            for key in ("rules", "admissionReviewVersions", "sideEffects", "failurePolicy", "timeoutSeconds"):
                assert hook[key] == want[key], (hook["name"], key)
            assert hook.get("objectSelector") == want.get("objectSelector")
            assert hook["clientConfig"]["service"]["name"] == "k8stars-k8stars-controller-webhook"
            assert hook["clientConfig"]["caBundle"]

    (role,) = [d for d in docs if d["kind"] == "ClusterRole"]
    groups = {g for rule in role["rules"] for g in rule["apiGroups"]}
    assert "apiextensions.k8s.io" not in groups  # the chart installs the CRDs, the operator needs no rights on them
    assert all("*" not in rule["verbs"] and "*" not in rule["resources"] for rule in role["rules"])
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--no-install-crds" in args and "--webhook-port=9443" in args

    no_hooks = render("k8stars", "tars-system", "--set", "webhook.enabled=false")
    assert {d["kind"] for d in no_hooks} == {"ClusterRole", "ClusterRoleBinding", "Deployment", "ServiceAccount"}


async def test_chart_installs_on_the_control_plane(k8s_cluster: Cluster, kube: Kube, namespace: str) -> None:
    release = f"k8stars-{namespace}"
    # Hooks limited to namespaces with a label nobody has: this cluster's other tests must not call them.
    docs = render(release, namespace, "--set-json", 'webhook.namespaceSelector={"matchLabels":{"k8stars.io/none":"x"}}')
    env = {**os.environ, "KUBECONFIG": str(k8s_cluster.kubeconfig)}
    manifest = yaml.safe_dump_all(docs)
    cluster_scoped = [d for d in docs if "namespace" not in d["metadata"]]
    try:
        applied = subprocess.run(
            ["kubectl", "apply", "--server-side", "-f", "-"],
            input=manifest, capture_output=True, text=True, timeout=60, env=env,
        )  # fmt: skip
        assert applied.returncode == 0, applied.stderr

        async def deployment_available() -> bool:
            dep = await kube.get(DEPLOYMENT, namespace, f"{release}-k8stars-controller"[:50].rstrip("-"))
            return bool(dep and (dep.get("status") or {}).get("replicas") == 1)

        await until(deployment_available, timeout=30, what="operator Deployment with its pod")
    finally:
        subprocess.run(
            ["kubectl", "delete", "--ignore-not-found", "-f", "-"],
            input=yaml.safe_dump_all(cluster_scoped), capture_output=True, text=True, timeout=60, env=env,
        )  # fmt: skip
