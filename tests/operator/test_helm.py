"""deploy/helm/k8stars-controller renders with `helm template` and installs on the control plane.

Needs a helm binary: $K8STARS_HELM, `helm` on PATH, or ~/.cache/k8stars/tools/bin/helm (built from the Go module
proxy: `GOBIN=~/.cache/k8stars/tools/bin go install helm.sh/helm/v3/cmd/helm@v3.22.0`). Skipped without one.
"""

from __future__ import annotations

import base64
import copy
import os
import shutil
import ssl
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml  # type: ignore[import-untyped,unused-ignore]
from operator_helpers import free_port, load_examples, until

from k8stars.kube import crds
from k8stars.kube.client import ApiException, Kube, Resource
from k8stars.kube.resources import CRD, TFRAMEWORKCONFIG, TSERVER
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
    return render_chart(CHART, release, namespace, *args)


def render_chart(chart: Path, release: str, namespace: str, *args: str) -> list[dict[str, Any]]:
    assert HELM is not None
    out = subprocess.run(
        [HELM, "template", release, str(chart), "--namespace", namespace, *args],
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
        "Role",
        "RoleBinding",
        "Secret",
        "Service",
        "ServiceAccount",
        "ValidatingWebhookConfiguration",
    ]
    rendered_crds = {d["metadata"]["name"]: d for d in docs if d["kind"] == "CustomResourceDefinition"}
    assert rendered_crds == expected_crds(docs, "k8stars-k8stars-controller-webhook", "tars-system")
    # Each CRD once: one in crds/ and templates/ both would make `helm install` fail on the second.
    in_chart = [d for d in docs if d["kind"] == "CustomResourceDefinition"]
    assert len(in_chart) == len(rendered_crds) == len(crds.all_crds())

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
    assert "--leader-elect" in args and "--leader-election-namespace=tars-system" in args

    no_hooks = render("k8stars", "tars-system", "--set", "webhook.enabled=false")
    assert {d["kind"] for d in no_hooks} == {
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",  # TServer and TFrameworkConfig, v1beta3 only (test_chart_crds_without_conversion)
        "Deployment",
        "Role",
        "RoleBinding",
        "ServiceAccount",
    }


def expected_crds(docs: list[dict[str, Any]], service: str, namespace: str, keep: bool = True) -> dict[str, Any]:
    """The CRDs a render should hold: crds.all_crds(), TServer's and TFrameworkConfig's with the conversion webhook at
    the release's Service and CA (the Secret's ca.crt), labelled as the release's."""
    (secret,) = [d for d in docs if d["kind"] == "Secret"]
    labels = next(d for d in docs if d["kind"] == "Deployment")["metadata"]["labels"]
    wanted = {}
    for manifest in crds.all_crds():
        if manifest["spec"]["names"]["kind"] in crds.CONVERTED:
            where = {"name": service, "namespace": namespace, "path": "/convert", "port": 443}
            manifest = crds.with_conversion(manifest, service=where, ca_bundle=secret["data"]["ca.crt"])
            # url: null drops the url of a CRD registered by `k8stars operator --webhook-url` when Helm takes it over
            manifest["spec"]["conversion"]["webhook"]["clientConfig"]["url"] = None
            manifest["metadata"]["labels"] = {**labels, **manifest["metadata"]["labels"]}
            if keep:
                manifest["metadata"]["annotations"] = {"helm.sh/resource-policy": "keep"}
        wanted[manifest["metadata"]["name"]] = manifest
    return wanted


def test_chart_crds_without_conversion() -> None:
    """Without the webhook (or with crds.conversion=false) TServer and TFrameworkConfig serve v1beta3 only."""
    plain = {c["metadata"]["name"]: c for c in crds.all_crds() if c["spec"]["names"]["kind"] in crds.CONVERTED}
    for args in (("--set", "webhook.enabled=false"), ("--set", "crds.conversion=false", "--set", "crds.keep=false")):
        docs = render("k8stars", "tars-system", *args)
        rendered = {d["metadata"]["name"]: d for d in docs if d["kind"] == "CustomResourceDefinition"}
        assert rendered.keys() == plain.keys()
        for name, crd in rendered.items():
            assert "conversion" not in crd["spec"] and [v["name"] for v in crd["spec"]["versions"]] == ["v1beta3"]
            assert crd["spec"] == plain[name]["spec"]
            keep = (crd["metadata"].get("annotations") or {}).get("helm.sh/resource-policy")
            assert keep == (None if "crds.keep=false" in args else "keep")


def _certificates(docs: list[dict[str, Any]]) -> tuple[bytes, bytes, bytes]:
    """The rendered Secret's serving certificate, key and CA (PEM)."""
    (secret,) = [d for d in docs if d["kind"] == "Secret"]
    cert, key, ca = (base64.b64decode(secret["data"][k]) for k in ("tls.crt", "tls.key", "ca.crt"))
    return cert, key, ca


async def test_chart_conversion_ca_signs_the_webhook_certificate(tmp_path: Path) -> None:
    """Every caBundle of a render (CRD conversion, admission hooks) is the CA that signed the Secret's serving
    certificate, valid for the webhook Service's name: the apiserver calling the Service verifies what the operator
    serves. Checked with a real TLS connection to the operator's webhook server, as the apiserver makes it."""
    docs = render("k8stars", "tars-system")
    cert, key, ca = _certificates(docs)
    bundles = [
        d["spec"]["conversion"]["webhook"]["clientConfig"]["caBundle"]
        for d in docs
        if d["kind"] == "CustomResourceDefinition"
    ] + [
        h["clientConfig"]["caBundle"] for d in docs if d["kind"].endswith("WebhookConfiguration") for h in d["webhooks"]
    ]
    assert len(bundles) == 6 and {base64.b64decode(b) for b in bundles} == {ca}

    (tmp_path / "tls.crt").write_bytes(cert)
    (tmp_path / "tls.key").write_bytes(key)
    server_ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ssl.load_cert_chain(tmp_path / "tls.crt", tmp_path / "tls.key")
    port = free_port()
    runner = await webhook.serve(webhook.Admission(), "127.0.0.1", port, server_ssl)
    service_host = "k8stars-k8stars-controller-webhook.tars-system.svc"
    review = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "ConversionReview",
        "request": {
            "uid": "u",
            "desiredAPIVersion": "k8s.tars.io/v1beta2",
            "objects": [load_examples("tserver.yaml")[0]],
        },
    }
    try:
        async with aiohttp.ClientSession() as session:
            trusting = ssl.create_default_context(cadata=ca.decode())
            async with session.post(
                f"https://127.0.0.1:{port}/convert", json=review, ssl=trusting, server_hostname=service_host
            ) as resp:
                answer = await resp.json()
            assert answer["response"]["result"] == {"status": "Success"}
            assert answer["response"]["convertedObjects"][0]["apiVersion"] == "k8s.tars.io/v1beta2"
            # Another render's CA does not verify this certificate: the pairing is what makes the call work.
            other_ca = _certificates(render("k8stars", "tars-system"))[2]
            with pytest.raises(aiohttp.ClientConnectorCertificateError):
                await session.post(
                    f"https://127.0.0.1:{port}/convert",
                    json=review,
                    ssl=ssl.create_default_context(cadata=other_ca.decode()),
                    server_hostname=service_host,
                )
            # Nor is it valid for another name.
            with pytest.raises(aiohttp.ClientConnectorCertificateError):
                await session.post(
                    f"https://127.0.0.1:{port}/convert", json=review, ssl=trusting, server_hostname="other.svc"
                )
    finally:
        await runner.cleanup()


async def test_chart_crds_convert_on_the_control_plane(k8s_cluster: Cluster, kube: Kube, namespace: str) -> None:
    """The chart's TServer and TFrameworkConfig CRDs install as rendered; with their webhook pointed at the operator's
    webhook server on 127.0.0.1 (the cluster's Services do not route to processes), objects written as v1beta1/
    v1beta2 read back as v1beta3 and the other way round."""
    docs = render(f"k8stars-{namespace}", namespace)
    charted = [d for d in docs if d["kind"] == "CustomResourceDefinition"]
    plain = [c for c in crds.all_crds() if c["spec"]["names"]["kind"] in crds.CONVERTED]
    tls = k8s_cluster.webhook_tls("k8stars-chart-conversion")
    port = free_port()
    runner = await webhook.serve(webhook.Admission(kube), "127.0.0.1", port, tls.server_context())
    try:
        for manifest in charted:  # as the chart renders them: the apiserver accepts the Service reference
            await kube.apply(CRD, None, manifest)
        for manifest in charted:
            local = copy.deepcopy(manifest)
            client = {"url": f"https://127.0.0.1:{port}/convert", "caBundle": tls.ca_bundle}
            local["spec"]["conversion"]["webhook"]["clientConfig"] = client
            await kube.apply(CRD, None, local)
        v1, v2 = (Resource("k8s.tars.io", v, "tservers", "TServer") for v in ("v1beta1", "v1beta2"))
        tfc2 = Resource("k8s.tars.io", "v1beta2", "tframeworkconfigs", "TFrameworkConfig")

        async def served() -> bool:
            try:
                for res in (v1, v2, tfc2):
                    await kube.request("GET", res.path(namespace, None))
            except ApiException as exc:
                if exc.status == 404:
                    return False
                raise
            return True

        await until(served, what="the older versions served")
        (doc,) = load_examples("tserver.yaml")
        old = copy.deepcopy(doc)
        old["apiVersion"] = "k8s.tars.io/v1beta2"
        old["spec"]["k8s"]["readinessGate"] = "example.com/warm"
        await kube.create(v2, namespace, old)
        new = await kube.get(TSERVER, namespace, "test-helloserver")
        # K8SFramework's conversion: the gate becomes the list (no mutating webhook here to put tars.io/active first).
        assert new is not None and new["spec"]["k8s"]["readinessGates"] == ["example.com/warm"]
        seen = await kube.get(v1, namespace, "test-helloserver")
        assert seen is not None and seen["apiVersion"] == "k8s.tars.io/v1beta1"
        assert seen["spec"]["k8s"]["readinessGate"] == "example.com/warm" and "nodeImage" not in seen["spec"]["release"]

        config = copy.deepcopy(load_examples("tframework.yaml")[0])
        await kube.create(TFRAMEWORKCONFIG, namespace, config)
        as_v2 = await kube.get(tfc2, namespace, "tars-framework")
        assert as_v2 is not None and as_v2["imageRegistry"] == config["imageUpload"] and "imageUpload" not in as_v2
    finally:
        for manifest in plain:  # the same field manager: the older versions and the webhook go away again
            await kube.apply(CRD, None, manifest)
        await runner.cleanup()


async def _ca_everywhere(kube: Kube, namespace: str, release: str, crd_names: list[str]) -> str:
    """The CA of the release's Secret, checked to be every CRD's and admission hook's caBundle."""
    secret = await kube.get(
        Resource("", "v1", "secrets", "Secret"), namespace, f"{release}-k8stars-controller-webhook-tls"
    )
    assert secret is not None
    ca = str(secret["data"]["ca.crt"])
    service = f"{release}-k8stars-controller-webhook"
    for name in crd_names:
        crd = await kube.get(CRD, None, name)
        assert crd is not None
        client = crd["spec"]["conversion"]["webhook"]["clientConfig"]
        assert client["service"] == {"name": service, "namespace": namespace, "path": "/convert", "port": 443}
        assert client["caBundle"] == ca
    for kind, plural in (("Mutating", "mutating"), ("Validating", "validating")):
        res = Resource(
            "admissionregistration.k8s.io", "v1", f"{plural}webhookconfigurations", f"{kind}WebhookConfiguration", False
        )
        hooks = await kube.get(res, None, f"{release}-k8stars-controller-{plural}")
        assert hooks is not None and {h["clientConfig"]["caBundle"] for h in hooks["webhooks"]} == {ca}
    return ca


async def test_helm_install_takes_over_existing_crds(k8s_cluster: Cluster, kube: Kube, namespace: str) -> None:
    """A real `helm install` where the CRDs already exist (this cluster's, as after `k8stars operator --install-crds`
    or an older chart): labelled and annotated for the release as docs/operator.md says, TServer and TFrameworkConfig
    are taken over and get the conversion webhook with the CA of the Secret the release made; `helm upgrade` keeps
    that CA unless webhook.renewCerts; `helm uninstall` leaves the CRDs (resource-policy keep)."""
    assert HELM is not None
    release = f"k8s-{namespace}"
    env = {**os.environ, "KUBECONFIG": str(k8s_cluster.kubeconfig)}
    names = [c["metadata"]["name"] for c in crds.all_crds() if c["spec"]["names"]["kind"] in crds.CONVERTED]
    plain = {c["metadata"]["name"]: c for c in crds.all_crds()}

    def run(*args: str) -> None:
        done = subprocess.run(args, capture_output=True, text=True, timeout=120, env=env)
        assert done.returncode == 0, (args, done.stderr)

    run("kubectl", "label", "--overwrite", "crd", *names, "app.kubernetes.io/managed-by=Helm")
    run("kubectl", "annotate", "--overwrite", "crd", *names,
        f"meta.helm.sh/release-name={release}", f"meta.helm.sh/release-namespace={namespace}")  # fmt: skip
    try:
        selector = ("--set-json", 'webhook.namespaceSelector={"matchLabels":{"k8stars.io/none":"x"}}')
        run(HELM, "install", release, str(CHART), "--namespace", namespace, *selector)
        first = await _ca_everywhere(kube, namespace, release, names)
        upgrade = (HELM, "upgrade", release, str(CHART), "--namespace", namespace, *selector)
        # An upgrade keeps the CA (pods still serving the old certificate during the rollout stay trusted) ...
        run(*upgrade)
        assert await _ca_everywhere(kube, namespace, release, names) == first
        # ... unless asked to renew it: then the Secret, the CRDs and the hooks all get the new one.
        run(*upgrade, "--set", "webhook.renewCerts=true")
        assert await _ca_everywhere(kube, namespace, release, names) != first
        run(HELM, "uninstall", release, "--namespace", namespace)
        for name in names:
            assert await kube.get(CRD, None, name) is not None  # kept
    finally:
        for name in names:  # back to this cluster's CRDs: served versions, no webhook, no Helm ownership
            spec = {"conversion": {"strategy": "None", "webhook": None}, "versions": plain[name]["spec"]["versions"]}
            metadata = {
                "labels": {"app.kubernetes.io/managed-by": None, "app.kubernetes.io/instance": None,
                           "app.kubernetes.io/name": None, "app.kubernetes.io/version": None},
                "annotations": {"meta.helm.sh/release-name": None, "meta.helm.sh/release-namespace": None,
                                "helm.sh/resource-policy": None},
            }  # fmt: skip
            await kube.merge_patch(CRD, None, name, {"metadata": metadata, "spec": spec})
        subprocess.run(
            [HELM, "uninstall", release, "--namespace", namespace], capture_output=True, timeout=120, env=env
        )


async def test_chart_installs_on_the_control_plane(k8s_cluster: Cluster, kube: Kube, namespace: str) -> None:
    release = f"k8stars-{namespace}"
    # Hooks limited to namespaces with a label nobody has: this cluster's other tests must not call them. The CRDs
    # stay out: they are this cluster's, shared by every test (test_chart_crds_convert_on_the_control_plane).
    docs = render(release, namespace, "--set-json", 'webhook.namespaceSelector={"matchLabels":{"k8stars.io/none":"x"}}')
    docs = [d for d in docs if d["kind"] != "CustomResourceDefinition"]
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


async def test_chart_rbac_is_enough_for_the_operator(k8s_cluster: Cluster, kube: Kube, namespace: str) -> None:
    """The operator, running as the chart's ServiceAccount with only the chart's ClusterRole, does all its work."""
    import asyncio
    import contextlib

    from operator_helpers import load_examples, resource_of

    from k8stars.kube.resources import SERVICE, STATEFULSET, TENDPOINT, TSERVER
    from k8stars.operator import Operator
    from k8stars.operator.leader import LeaderElector

    release = f"k8stars-{namespace}"
    docs = render(release, namespace, "--set", "webhook.enabled=false")
    rbac = [
        d for d in docs if d["kind"] in ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")
    ]
    env = {**os.environ, "KUBECONFIG": str(k8s_cluster.kubeconfig)}
    applied = subprocess.run(
        ["kubectl", "apply", "--server-side", "-f", "-"],
        input=yaml.safe_dump_all(rbac), capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert applied.returncode == 0, applied.stderr
    (account,) = [d["metadata"]["name"] for d in rbac if d["kind"] == "ServiceAccount"]
    identity = {"Impersonate-User": f"system:serviceaccount:{namespace}:{account}"}
    label = f"tars.io/node.{namespace}"
    nodes = [n["metadata"]["name"] for n in (await kube.list(Resource("", "v1", "nodes", "Node", False)))["items"]]
    try:
        for node in nodes:
            await kube.merge_patch(
                Resource("", "v1", "nodes", "Node", False), None, node, {"metadata": {"labels": {label: "true"}}}
            )
        async with await Kube.connect(str(k8s_cluster.kubeconfig)) as admin_client:
            restricted = Kube(admin_client.api, headers=identity)
            with pytest.raises(Exception, match="forbidden"):  # really restricted: no access to secrets
                await restricted.list(Resource("", "v1", "secrets", "Secret"), namespace)
            elector = LeaderElector(restricted, namespace, "rbac-test", duration=5)
            await asyncio.wait_for(elector.acquire(), 10)  # the Role on leases suffices
            operator = Operator(restricted, namespace=namespace, workers=2, resync=3600)
            task = asyncio.create_task(operator.run())
            try:
                await asyncio.wait_for(operator.ready.wait(), 20)
                (doc,) = load_examples("tserver.yaml")
                await kube.create(TSERVER, namespace, doc)
                (cfg, _) = load_examples("tconfig.yaml")
                await kube.create(resource_of("TConfig"), namespace, cfg)
                cfg2 = {**cfg, "metadata": {"name": "cfg-v2"}, "version": "v2"}
                await kube.create(resource_of("TConfig"), namespace, cfg2)

                async def everything() -> bool:
                    te = await kube.get(TENDPOINT, namespace, "test-helloserver")
                    ts = await kube.get(TSERVER, namespace, "test-helloserver")
                    v1 = await kube.get(resource_of("TConfig"), namespace, cfg["metadata"]["name"])
                    return bool(
                        await kube.get(STATEFULSET, namespace, "test-helloserver")
                        and await kube.get(SERVICE, namespace, "test-helloserver")
                        and te and len((te.get("status") or {}).get("pods") or []) == 2
                        and ts and ts.get("status")
                        and await kube.get(resource_of("TTree"), namespace, "tars-tree")
                        and await kube.get(resource_of("TImage"), namespace, "test-helloserver")
                        and v1 and v1["activated"] is False
                    )  # fmt: skip

                await until(everything, timeout=30, what="the operator's work done under the chart's RBAC")
                assert operator.stats.errors == 0
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
    finally:
        for node in nodes:
            await kube.merge_patch(
                Resource("", "v1", "nodes", "Node", False), None, node, {"metadata": {"labels": {label: None}}}
            )
        cluster_scoped = [d for d in rbac if "namespace" not in d["metadata"]]
        subprocess.run(
            ["kubectl", "delete", "--ignore-not-found", "-f", "-"],
            input=yaml.safe_dump_all(cluster_scoped), capture_output=True, text=True, timeout=60, env=env,
        )  # fmt: skip


FRAMEWORK = CHART.parent / "k8stars-framework"


def test_framework_chart_renders() -> None:
    assert HELM is not None
    docs = render_chart(FRAMEWORK, "fw", "tars", "--set", "ingress.enabled=true")
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    (ingress,) = by_kind["Ingress"]
    assert ingress["apiVersion"] == "networking.k8s.io/v1"  # not the removed v1beta1
    assert ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["port"] == {"name": "http"}
    names = sorted(t["metadata"]["name"] for t in by_kind["TTemplate"])
    assert names == ["tars.cpp", "tars.default", "tars.es", "tars.go", "tars.java", "tars.nodejs", "tars.python"]
    assert all(t["spec"]["parent"] == "tars.default" for t in by_kind["TTemplate"])
    services = {s["metadata"]["name"]: s for s in by_kind["Service"]}
    assert sorted(services) == ["tars-adminreg", "tars-config", "tars-log", "tars-notify", "tars-query",
                                "tars-registry", "tars-stat", "tars-tarsimage", "tars-web"]  # fmt: skip
    assert services["tars-notify"]["spec"]["ports"][0]["port"] == 10002  # the notify service (notify.enabled)
    assert services["tars-registry"]["spec"]["ports"][0]["port"] == 17890
    assert services["tars-config"]["spec"]["ports"][0]["port"] == 10001  # the config service (config.enabled)
    (framework,) = by_kind["TFrameworkConfig"]
    assert framework["nodeImage"]["image"] == "k8stars/tarscli:0.1.0"  # the chart's image unless given
    # SQLite keeps its data in one pod: more replicas are refused at render time.
    refused = subprocess.run(
        [HELM, "template", "fw", str(FRAMEWORK), "--set", "registry.store=sqlite", "--set", "registry.replicas=2"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert refused.returncode != 0 and "use replicas 1, or store mysql" in refused.stderr


async def test_framework_chart_installs(k8s_cluster: Cluster, kube: Kube, namespace: str) -> None:
    docs = render_chart(FRAMEWORK, "fw", namespace)
    env = {**os.environ, "KUBECONFIG": str(k8s_cluster.kubeconfig)}
    applied = subprocess.run(
        ["kubectl", "apply", "--server-side", "-f", "-"],
        input=yaml.safe_dump_all(docs), capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert applied.returncode == 0, applied.stderr
    templates = (await kube.list(Resource("k8s.tars.io", "v1beta3", "ttemplates", "TTemplate"), namespace))["items"]
    assert len(templates) == 7  # tars.default, cpp, go, java, nodejs, python, and K8SFramework's tars.es
    config = await kube.get(Resource("k8s.tars.io", "v1beta3", "tframeworkconfigs", "TFrameworkConfig"), namespace,
                            "tars-framework")  # fmt: skip
    assert (
        config is not None and config["recordLimit"]["texitedPod"] == 48 and config["imageBuild"]["maxBuildTime"] == 300
    )

    async def registry_running() -> bool:
        dep = await kube.get(DEPLOYMENT, namespace, "tars-registry")
        return bool(dep and (dep.get("status") or {}).get("replicas") == 1)

    await until(registry_running, timeout=30, what="the registry Deployment with its pod")
