"""The Helm charts on a cluster with a real node: `helm install` of deploy/helm/k8stars-controller and
deploy/helm/k8stars-framework with the framework image from the cluster's registry, until every Deployment is Ready.

    async with install_charts(cluster, namespace, framework_image, node_image) as charts:
        charts.registry_locator      # tars.tarsregistry.QueryObj@tcp -h <registry pod IP> -p 17890

What the test cluster lacks and a real one has is supplied around the charts, not in them: pods reach the
apiserver through `apirelay` (no kube-proxy routes the `kubernetes` Service), which a Helm post-renderer (this
module's ``__main__``) points every container at with ``KUBERNETES_SERVICE_HOST``/``PORT``, the variables a kubelet
would set from that Service. The charts' values are their documented ones: the image, the operator and its webhooks
limited to the namespace, the TFrameworkConfig's registry and node image.

Helm: $K8STARS_HELM, `helm` on PATH, or $K8STARS_CACHE/tools/bin/helm (~/.cache/k8stars) (`helm_binary`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import sys
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml  # type: ignore[import-untyped,unused-ignore]

from k8stars.kube import crds
from k8stars.kube.client import Kube, Obj, Resource
from k8stars.kube.resources import CRD, POD
from k8stars.paths import cache_home

from .apirelay import api_relay
from .launcher import Cluster

CHARTS = Path(__file__).resolve().parents[3] / "deploy" / "helm"
DEPLOYMENT = Resource("apps", "v1", "deployments", "Deployment")
WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet", "Job")
HELM_OWNER = {"app.kubernetes.io/managed-by": "Helm"}


class ChartError(RuntimeError):
    """helm failed, or the charts' workloads did not become Ready (with each pod's status)."""


def helm_binary() -> str | None:
    for candidate in (os.environ.get("K8STARS_HELM"), shutil.which("helm"),
                      str(cache_home() / "tools" / "bin" / "helm")):  # fmt: skip
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


@dataclass(frozen=True)
class Charts:
    namespace: str
    controller_release: str
    framework_release: str
    registry_ip: str  # the tars-registry pod's IP (on the bridge)
    registry_port: int

    @property
    def registry_locator(self) -> str:
        return f"tars.tarsregistry.QueryObj@tcp -h {self.registry_ip} -p {self.registry_port}"


def with_env(docs: list[Obj], env: dict[str, str]) -> list[Obj]:
    """Every container (init ones too) of every workload and Pod in ``docs`` with ``env`` set (replacing a same-named
    entry)."""
    for doc in docs:
        if doc.get("kind") in WORKLOADS:
            spec = doc["spec"]["template"]["spec"]
        elif doc.get("kind") == "Pod":
            spec = doc["spec"]
        else:
            continue
        for container in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
            kept = [e for e in container.get("env") or [] if e.get("name") not in env]
            container["env"] = kept + [{"name": k, "value": v} for k, v in env.items()]
    return docs


async def _helm(cluster: Cluster, *args: str, timeout: float = 300) -> str:
    helm = helm_binary()
    if helm is None:
        raise ChartError("no helm binary ($K8STARS_HELM, helm on PATH or ~/.cache/k8stars/tools/bin/helm)")
    home = str(cluster.workdir / "helm")
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig), "HELM_CACHE_HOME": home, "HELM_CONFIG_HOME": home,
           "HELM_DATA_HOME": home}  # fmt: skip
    pipe = asyncio.subprocess.PIPE
    proc = await asyncio.create_subprocess_exec(helm, *args, env=env, stdin=asyncio.subprocess.DEVNULL, stdout=pipe,
                                                stderr=pipe)  # fmt: skip
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise ChartError(f"helm {' '.join(args[:2])}: no answer in {timeout:.0f} s") from None
    if proc.returncode != 0:
        raise ChartError(f"helm {' '.join(args)} exited {proc.returncode}: {err.decode()[-3000:]}")
    return out.decode()


def _postrender(env: dict[str, str]) -> list[str]:
    args = ["--post-renderer", sys.executable]
    for arg in ("-m", __name__, *(f"{k}={v}" for k, v in env.items())):
        args += ["--post-renderer-args", arg]
    return args


def controller_values(namespace: str, repository: str, tag: str) -> Obj:
    return {
        "image": {"repository": repository, "tag": tag, "pullPolicy": "IfNotPresent"},
        "operator": {"namespace": namespace, "workers": 2},
        "webhook": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}},
        "resources": {"requests": {"cpu": "20m", "memory": "64Mi"}, "limits": {"memory": "512Mi"}},
    }


def framework_values(repository: str, tag: str, registry: str, node_image: str) -> Obj:
    return {
        "image": {"repository": repository, "tag": tag, "pullPolicy": "IfNotPresent"},
        "frameworkConfig": {"imageUpload": {"registry": f"{registry}/tars"}, "nodeImage": {"image": node_image}},
    }


async def _adopt_crds(kube: Kube, release: str, namespace: str) -> list[str]:
    """TServer's and TFrameworkConfig's CRDs (templates of the controller chart) made by someone else on this cluster
    (`install_crds`) are taken over by the release as docs/operator.md says; returns their names."""
    taken = []
    for manifest in crds.all_crds():
        name = manifest["metadata"]["name"]
        if manifest["spec"]["names"]["kind"] not in crds.CONVERTED or await kube.get(CRD, None, name) is None:
            continue
        annotations = {"meta.helm.sh/release-name": release, "meta.helm.sh/release-namespace": namespace}
        await kube.merge_patch(CRD, None, name, {"metadata": {"labels": HELM_OWNER, "annotations": annotations}})
        taken.append(name)
    return taken


async def _release_crds(kube: Kube) -> None:
    """Back to this cluster's plain CRDs after `helm uninstall` kept them: no conversion webhook (its Service is
    gone), no Helm ownership, so the next install or `install_crds` finds them as before."""
    plain = {c["metadata"]["name"]: c for c in crds.all_crds() if c["spec"]["names"]["kind"] in crds.CONVERTED}
    for name, manifest in plain.items():
        if await kube.get(CRD, None, name) is None:
            continue
        metadata = {
            "labels": {k: None for k in ("app.kubernetes.io/managed-by", "app.kubernetes.io/instance",
                                         "app.kubernetes.io/name", "app.kubernetes.io/version")},
            "annotations": {"meta.helm.sh/release-name": None, "meta.helm.sh/release-namespace": None,
                            "helm.sh/resource-policy": None},
        }  # fmt: skip
        spec = {"conversion": {"strategy": "None", "webhook": None}, "versions": manifest["spec"]["versions"]}
        await kube.merge_patch(CRD, None, name, {"metadata": metadata, "spec": spec})


async def not_ready(kube: Kube, namespace: str) -> list[str]:
    """The namespace's Deployments that are not (yet) Ready with all their replicas, each with its pods' state."""
    waiting = []
    for dep in (await kube.list(DEPLOYMENT, namespace))["items"]:
        want = dep["spec"].get("replicas", 1)
        status = dep.get("status") or {}
        if status.get("readyReplicas", 0) != want or status.get("updatedReplicas", 0) != want:
            waiting.append(f"{dep['metadata']['name']}: {status.get('readyReplicas', 0)}/{want} ready")
    return waiting


async def pods_state(kube: Kube, namespace: str) -> str:
    lines = []
    for pod in (await kube.list(POD, namespace))["items"]:
        status = pod.get("status") or {}
        states = {c["name"]: (c.get("ready"), c.get("restartCount"), c.get("state"))
                  for c in status.get("containerStatuses") or []}  # fmt: skip
        lines.append(f"{pod['metadata']['name']} {status.get('phase')} {json.dumps(states)[:1500]}")
    return "\n".join(lines)


async def wait_ready(kube: Kube, namespace: str, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while waiting := await not_ready(kube, namespace):
        if loop.time() > deadline:
            raise ChartError(f"not Ready in {timeout:.0f} s: {waiting}\n{await pods_state(kube, namespace)}")
        await asyncio.sleep(1)


@contextlib.asynccontextmanager
async def install_charts(cluster: Cluster, namespace: str, image: str, node_image: str, *, timeout: float = 420,
                         extra: Sequence[str] = ()) -> AsyncIterator[Charts]:  # fmt: skip
    """Both charts in ``namespace`` (created, deleted after) with ``image`` (host/repo:tag) for every framework pod,
    every Deployment Ready; uninstalled after, the CRDs given back."""
    assert cluster.real_node is not None, "the charts run on a cluster with a real node"
    repository, _, tag = image.rpartition(":")
    suffix = uuid.uuid4().hex[:6]
    controller, framework = f"k8stars-{suffix}", f"framework-{suffix}"
    values = cluster.workdir / f"values-{suffix}"
    values.mkdir(parents=True, exist_ok=True)
    (values / "controller.yaml").write_text(yaml.safe_dump(controller_values(namespace, repository, tag)))
    (values / "framework.yaml").write_text(yaml.safe_dump(framework_values(repository, tag, cluster.real_node.registry,
                                                                           node_image)))  # fmt: skip
    async with await Kube.connect(str(cluster.kubeconfig), field_manager="k8stars-charts") as kube, \
            api_relay(cluster) as relay:  # fmt: skip
        await kube.create(Resource("", "v1", "namespaces", "Namespace", namespaced=False), None,
                          {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})  # fmt: skip
        installed: list[str] = []
        try:
            await _adopt_crds(kube, controller, namespace)
            common = ["--namespace", namespace, *_postrender(relay.env), *extra]
            await _helm(cluster, "install", controller, str(CHARTS / "k8stars-controller"), "-f",
                        str(values / "controller.yaml"), *common)  # fmt: skip
            installed.append(controller)
            await wait_ready(kube, namespace, timeout)  # the webhooks answer before the framework's objects come
            await _helm(cluster, "install", framework, str(CHARTS / "k8stars-framework"), "-f",
                        str(values / "framework.yaml"), *common)  # fmt: skip
            installed.append(framework)
            await wait_ready(kube, namespace, timeout)
            (registry,) = (await kube.list(POD, namespace, selector="app=tars-registry"))["items"]
            port = next(p["containerPort"] for p in registry["spec"]["containers"][0]["ports"] if p["name"] == "tars")
            yield Charts(namespace, controller, framework, registry["status"]["podIP"], int(port))
        finally:
            for release in reversed(installed):
                with contextlib.suppress(ChartError):
                    await _helm(cluster, "uninstall", release, "--namespace", namespace, "--wait", timeout=180)
            await _release_crds(kube)
            await kube.delete(Resource("", "v1", "namespaces", "Namespace", namespaced=False), None, namespace)


def pod_rss_mib(pod_uids: Sequence[str]) -> dict[str, float]:
    """Per pod UID: the summed VmRSS of its processes (found by the pod's cgroup, `pod<uid>`), in MiB."""
    wanted = {f"pod{uid}": uid for uid in pod_uids} | {f"pod{uid.replace('-', '_')}": uid for uid in pod_uids}
    total = dict.fromkeys(pod_uids, 0.0)
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError, StopIteration, ValueError):
            cgroup = (proc / "cgroup").read_text()
            uid = next(u for key, u in wanted.items() if key in cgroup)
            rss = next(ln for ln in (proc / "status").read_text().splitlines() if ln.startswith("VmRSS:"))
            total[uid] += int(rss.split()[1]) / 1024
    return {uid: round(mib, 1) for uid, mib in total.items()}


def main(argv: list[str]) -> None:
    """Helm post-renderer: manifests on stdin, each container given the KEY=VALUE environment of ``argv``."""
    env = dict(a.split("=", 1) for a in argv)
    docs = [d for d in yaml.safe_load_all(sys.stdin) if d]
    yaml.safe_dump_all(with_env(docs, env), sys.stdout, sort_keys=False)


if __name__ == "__main__":
    main(sys.argv[1:])
