"""The apiserver calls webhooks served by Python on https://127.0.0.1:PORT, trusting the caBundle
the launcher made: a validating admission webhook and a CRD conversion webhook."""

from __future__ import annotations

import base64
import json
import ssl
import threading
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.rest import ApiException

from k8stars.testing.cluster import Cluster, WebhookTLS, eventually, make_webhook_tls

Handler = Callable[[dict[str, Any]], dict[str, Any]]
GROUP = "test.k8stars.io"


@contextmanager
def https_server(tls: WebhookTLS, routes: dict[str, Handler]) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """A JSON-in/JSON-out HTTPS server on 127.0.0.1 (ephemeral port) in a thread.

    Yields the port and the list of requests it received.
    """
    seen: list[dict[str, Any]] = []

    class Endpoint(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            route = routes.get(self.path.split("?")[0])
            if route is None:
                self.send_error(404)
                return
            review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append(review)
            body = json.dumps(route(review)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep the test output clean

    server = ThreadingHTTPServer(("127.0.0.1", 0), Endpoint)
    server.socket = tls.server_context().wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# ---- validating admission webhook -------------------------------------------------------------

WEBHOOK_NAME = "deny-forbidden.test.k8stars.io"


def deny_forbidden_key(review: dict[str, Any]) -> dict[str, Any]:
    request = review["request"]
    data = (request.get("object") or {}).get("data") or {}
    response: dict[str, Any] = {"uid": request["uid"], "allowed": "forbidden" not in data}
    if not response["allowed"]:
        response["status"] = {"code": 403, "message": "k8stars test: the key 'forbidden' is not allowed"}
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}


# Manifest builders return Any: the client sends plain dicts as they are, like its models.
def _validating_config(name: str, namespace: str, port: int, tls: WebhookTLS) -> Any:
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": [
            {
                "name": WEBHOOK_NAME,
                "clientConfig": {"url": f"https://127.0.0.1:{port}/validate", "caBundle": tls.ca_bundle},
                "rules": [
                    {
                        "operations": ["CREATE", "UPDATE"],
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "resources": ["configmaps"],
                    }
                ],
                # Only this test's namespace: other tests and system namespaces stay unaffected.
                "namespaceSelector": {"matchLabels": {"k8stars.io/test": namespace}},
                "failurePolicy": "Fail",
                "sideEffects": "None",
                "admissionReviewVersions": ["v1"],
                "timeoutSeconds": 5,
            }
        ],
    }


async def test_validating_webhook_rejects(k8s_cluster: Cluster, api: client.ApiClient, namespace: str) -> None:
    tls = k8s_cluster.webhook_tls("validator")
    core = client.CoreV1Api(api)
    admission = client.AdmissionregistrationV1Api(api)
    config_name = f"k8stars-test-{namespace}"
    with https_server(tls, {"/validate": deny_forbidden_key}) as (port, seen):
        await admission.create_validating_webhook_configuration(_validating_config(config_name, namespace, port, tls))
        try:
            # The apiserver picks up new webhook configurations asynchronously: retry (with new
            # names) until the webhook answers.
            async def rejected() -> ApiException | None:
                body = client.V1ConfigMap(
                    metadata=client.V1ObjectMeta(name=f"bad-{uuid.uuid4().hex[:6]}"), data={"forbidden": "x"}
                )
                try:
                    await core.create_namespaced_config_map(namespace, body)
                except ApiException as exc:
                    return exc
                return None

            err = await eventually(rejected, timeout=20, what="the webhook to reject a ConfigMap")
            assert err.status == 403, err
            message = json.loads(err.body or b"{}")["message"]
            assert message == (
                f'admission webhook "{WEBHOOK_NAME}" denied the request: '
                "k8stars test: the key 'forbidden' is not allowed"
            )

            allowed = await core.create_namespaced_config_map(
                namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="fine"), data={"ok": "y"})
            )
            assert allowed.metadata.name == "fine"
            operations = {(r["request"]["operation"], r["request"]["name"]) for r in seen}
            assert ("CREATE", "fine") in operations, operations
        finally:
            await admission.delete_validating_webhook_configuration(config_name)


# ---- CRD conversion webhook -------------------------------------------------------------------


def convert_size_replicas(review: dict[str, Any]) -> dict[str, Any]:
    """v1 has spec.size (a string), v2 has spec.replicas (an integer)."""
    request = review["request"]
    desired = request["desiredAPIVersion"]
    converted = []
    for obj in request["objects"]:
        obj = json.loads(json.dumps(obj))
        spec = obj.get("spec") or {}
        if desired.endswith("/v2") and "size" in spec:
            spec["replicas"] = int(spec.pop("size"))
        elif desired.endswith("/v1") and "replicas" in spec:
            spec["size"] = str(spec.pop("replicas"))
        obj["spec"], obj["apiVersion"] = spec, desired
        converted.append(obj)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "ConversionReview",
        "response": {"uid": request["uid"], "convertedObjects": converted, "result": {"status": "Success"}},
    }


def _two_version_crd(plural: str, port: int, tls: WebhookTLS) -> Any:
    def version(name: str, storage: bool, spec_props: dict[str, Any]) -> dict[str, Any]:
        schema = {"type": "object", "properties": {"spec": {"type": "object", "properties": spec_props}}}
        return {"name": name, "served": True, "storage": storage, "schema": {"openAPIV3Schema": schema}}

    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"plural": plural, "singular": plural[:-1], "kind": "TScale"},
            "versions": [
                version("v1", True, {"size": {"type": "string"}}),
                version("v2", False, {"replicas": {"type": "integer"}}),
            ],
            "conversion": {
                "strategy": "Webhook",
                "webhook": {
                    "conversionReviewVersions": ["v1"],
                    "clientConfig": {"url": f"https://127.0.0.1:{port}/convert", "caBundle": tls.ca_bundle},
                },
            },
        },
    }


async def test_conversion_webhook_converts(k8s_cluster: Cluster, api: client.ApiClient, namespace: str) -> None:
    tls = k8s_cluster.webhook_tls("converter")
    ext = client.ApiextensionsV1Api(api)
    custom = client.CustomObjectsApi(api)
    with https_server(tls, {"/convert": convert_size_replicas}) as (port, seen):
        crd = _two_version_crd("tscales", port, tls)
        await ext.create_custom_resource_definition(crd)
        try:
            obj = {"apiVersion": f"{GROUP}/v1", "kind": "TScale", "metadata": {"name": "a"}, "spec": {"size": "3"}}

            async def created() -> bool:
                try:
                    await custom.create_namespaced_custom_object(GROUP, "v1", namespace, "tscales", obj)
                except ApiException as exc:
                    if exc.status == 404:  # the CRD's endpoint is not served yet
                        return False
                    raise
                return True

            await eventually(created, timeout=20, what="the CRD to serve creates")

            async def read_v2() -> dict[str, Any] | None:
                try:
                    got: dict[str, Any] = await custom.get_namespaced_custom_object(
                        GROUP, "v2", namespace, "tscales", "a"
                    )
                except ApiException as exc:
                    if exc.status in (404, 503):
                        return None
                    raise
                return got

            as_v2 = await eventually(read_v2, timeout=20, what="reading the v1 object as v2")
            assert as_v2["apiVersion"] == f"{GROUP}/v2"
            assert as_v2["spec"] == {"replicas": 3}

            # Written as v2, stored as v1 (the storage version), read back as v1.
            v2_obj = {**obj, "apiVersion": f"{GROUP}/v2", "metadata": {"name": "b"}, "spec": {"replicas": 5}}
            await custom.create_namespaced_custom_object(GROUP, "v2", namespace, "tscales", v2_obj)
            as_v1 = await custom.get_namespaced_custom_object(GROUP, "v1", namespace, "tscales", "b")
            assert as_v1["spec"] == {"size": "5"}
            assert any(r["request"]["desiredAPIVersion"] == f"{GROUP}/v2" for r in seen)
        finally:
            await ext.delete_custom_resource_definition(crd["metadata"]["name"])


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_webhook_tls_verifies_for_local_hosts(tmp_path: Path, host: str) -> None:
    """The helper's certificate verifies against its own caBundle for both local host names."""
    tls = make_webhook_tls(tmp_path, name="standalone")
    client_ctx = ssl.create_default_context(cadata=base64.b64decode(tls.ca_bundle).decode())
    with https_server(tls, {"/echo": lambda review: {"echo": review}}) as (port, _):
        req = urllib.request.Request(
            f"https://{host}:{port}/echo", data=b'{"x": 1}', headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, context=client_ctx, timeout=5) as resp:
            assert json.loads(resp.read()) == {"echo": {"x": 1}}
