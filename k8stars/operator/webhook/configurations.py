"""The Mutating- and ValidatingWebhookConfiguration of the operator's webhooks (the Helm chart renders the same
hooks: tests/operator/test_helm.py compares them)."""

from __future__ import annotations

from typing import Any

from k8stars.kube import meta
from k8stars.kube.client import Kube, Obj
from k8stars.kube.resources import MUTATING_WEBHOOK, VALIDATING_WEBHOOK

WEBHOOK_KINDS = {"tservers": "TServer", "tconfigs": "TConfig", "ttemplates": "TTemplate", "ttrees": "TTree"}
# tservers/scale: `kubectl scale` and autoscalers get the replica bounds too (the subresource has hooks of its own).
MUTATED = ["taccounts", "tconfigs", "timages", "tservers", "tservers/scale", "ttemplates", "ttrees"]


# As K8SFramework's: requests of v1beta2 come as v1beta2 (its webhook makes a TARS server's v1beta2 readinessGate
# tars.io/active); other versions' requests are converted to one of these (matchPolicy Equivalent).
API_VERSIONS = ["v1beta2", meta.VERSION]


def webhook_configurations(
    base_url: str,
    ca_bundle: str,
    *,
    name: str = "k8stars",
    namespace_selector: Obj | None = None,
) -> tuple[Obj, Obj]:
    """The Mutating- and ValidatingWebhookConfiguration pointing at `base_url` (https://host:port)."""

    def hook(kind: str, path: str, resources: list[str]) -> Obj:
        entry: Obj = {
            "name": f"{kind}.{name}.{meta.GROUP}",
            "clientConfig": {"url": f"{base_url}{path}", "caBundle": ca_bundle},
            "rules": [
                {
                    "apiGroups": [meta.GROUP],
                    "apiVersions": API_VERSIONS,
                    "operations": ["CREATE", "UPDATE"],
                    "resources": resources,
                    "scope": "Namespaced",
                }
            ],
            "admissionReviewVersions": ["v1"],
            "sideEffects": "None",
            "failurePolicy": "Fail",
            "timeoutSeconds": 5,
        }
        if namespace_selector is not None:
            entry["namespaceSelector"] = namespace_selector
        return entry

    validate = hook("validate", "/validate", sorted(WEBHOOK_KINDS))

    # Deleting a TTemplate or TConfig still in use is refused; ignored on failure, so that a stopped operator never
    # blocks deletion (of a namespace, above all: its controller deletes every object in it).
    guard = hook("guard", "/validate", ["tconfigs", "ttemplates"])
    guard["rules"][0]["operations"] = ["DELETE"]
    guard["failurePolicy"] = "Ignore"

    # Objects the operator owns: only it (and Kubernetes' controllers) may change or delete them. Ignore on failure,
    # so that a stopped operator never blocks garbage collection or namespace deletion.
    protect = hook("protect", "/validate", [])
    protect["rules"] = [
        {"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["UPDATE", "DELETE"],
         "resources": ["statefulsets", "daemonsets"], "scope": "Namespaced"},
        {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["UPDATE", "DELETE"],
         "resources": ["services"], "scope": "Namespaced"},
    ]  # fmt: skip
    protect["objectSelector"] = {"matchExpressions": [{"key": meta.SERVER_APP, "operator": "Exists"}]}
    protect["failurePolicy"] = "Ignore"

    mutating = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": f"{name}-mutating"},
        "webhooks": [hook("mutate", "/mutate", MUTATED)],
    }
    validating = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": f"{name}-validating"},
        "webhooks": [validate, guard, protect],
    }
    return mutating, validating


async def register(kube: Kube, base_url: str, ca_bundle: str, **options: Any) -> tuple[str, str]:
    """Server-side apply both webhook configurations; returns their names."""
    mutating, validating = webhook_configurations(base_url, ca_bundle, **options)
    await kube.apply(MUTATING_WEBHOOK, None, mutating)
    await kube.apply(VALIDATING_WEBHOOK, None, validating)
    return mutating["metadata"]["name"], validating["metadata"]["name"]
