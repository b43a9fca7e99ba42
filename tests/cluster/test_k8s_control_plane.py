"""The real control plane does what the operator will rely on: CRD schema validation, scheduling
and pod lifecycle (via kwok) with loopback IPs, garbage collection, optimistic concurrency."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.rest import ApiException

from k8stars.testing.cluster import Cluster, eventually

GROUP = "test.k8stars.io"


# Manifest builders return Any: the client sends plain dicts as they are, like its models.
def _crd(plural: str, kind: str) -> Any:
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "required": ["replicas", "image"],
                "properties": {
                    "replicas": {"type": "integer", "minimum": 1, "maximum": 10},
                    "image": {"type": "string", "pattern": "^[a-z0-9./:-]+$"},
                },
            }
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"plural": plural, "singular": plural[:-1], "kind": kind},
            "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": schema}}],
        },
    }


async def _established(ext: client.ApiextensionsV1Api, name: str) -> bool:
    crd = await ext.read_custom_resource_definition(name)
    return any(c.type == "Established" and c.status == "True" for c in crd.status.conditions or [])


async def test_crd_schema_violation_is_rejected(api: client.ApiClient, namespace: str) -> None:
    ext = client.ApiextensionsV1Api(api)
    crd = _crd("tservers", "TServer")
    await ext.create_custom_resource_definition(crd)
    try:
        await eventually(lambda: _established(ext, crd["metadata"]["name"]), what="CRD Established")
        custom = client.CustomObjectsApi(api)

        def server(name: str, spec: dict[str, Any]) -> dict[str, Any]:
            return {"apiVersion": f"{GROUP}/v1", "kind": "TServer", "metadata": {"name": name}, "spec": spec}

        # The CRD's REST endpoint may lag Established by a moment; a valid create proves it serves.
        good = server("good", {"replicas": 2, "image": "tars/hello:1"})
        await eventually(lambda: _create_ok(custom, namespace, good), timeout=15, what="CR endpoint to serve creates")

        with pytest.raises(ApiException) as err:
            await custom.create_namespaced_custom_object(
                GROUP, "v1", namespace, "tservers", server("bad", {"replicas": 0, "image": "UPPER CASE"})
            )
        assert err.value.status == 422
        body = str(err.value.body)
        assert "spec.replicas" in body and "spec.image" in body, body

        with pytest.raises(ApiException) as missing:
            await custom.create_namespaced_custom_object(
                GROUP, "v1", namespace, "tservers", server("missing", {"replicas": 1})
            )
        assert missing.value.status == 422
        assert "spec.image" in str(missing.value.body)
    finally:
        await ext.delete_custom_resource_definition(crd["metadata"]["name"])


async def _create_ok(custom: client.CustomObjectsApi, namespace: str, body: dict[str, Any]) -> bool:
    try:
        await custom.create_namespaced_custom_object(GROUP, "v1", namespace, "tservers", body)
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


def _statefulset(name: str, replicas: int) -> Any:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "serviceName": name,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "initContainers": [{"name": "init", "image": "busybox"}],
                    "containers": [{"name": "server", "image": "tars/hello:1"}],
                },
            },
        },
    }


async def _running_pods(core: client.CoreV1Api, namespace: str, selector: str, count: int) -> list[Any] | None:
    pods = (await core.list_namespaced_pod(namespace, label_selector=selector)).items
    running = [p for p in pods if p.status.phase == "Running" and p.status.pod_ip]
    return running if len(running) == count else None


async def test_statefulset_pods_run_with_loopback_ips(api: client.ApiClient, namespace: str) -> None:
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    await apps.create_namespaced_stateful_set(namespace, _statefulset("hello", 3))
    pods = await eventually(lambda: _running_pods(core, namespace, "app=hello", 3), timeout=60, what="3 Running pods")
    assert sorted(p.metadata.name for p in pods) == ["hello-0", "hello-1", "hello-2"]
    for pod in pods:
        assert pod.spec.node_name.startswith("k8stars-node-"), pod.spec.node_name
        pod_ip = ipaddress.ip_address(pod.status.pod_ip)
        assert pod_ip.is_loopback and pod_ip in ipaddress.ip_network("127.64.0.0/16"), pod_ip
        assert ipaddress.ip_address(pod.status.host_ip) in ipaddress.ip_network("127.63.0.0/24")
        ready = {c.type: c.status for c in pod.status.conditions}
        assert ready["Ready"] == "True" and ready["PodScheduled"] == "True", ready
    assert len({p.status.pod_ip for p in pods}) == 3, "pod IPs must be unique"

    sts = await eventually(
        lambda: _ready_statefulset(apps, namespace, "hello", 3), timeout=30, what="StatefulSet ready"
    )
    assert sts.status.ready_replicas == 3


async def _ready_statefulset(apps: client.AppsV1Api, namespace: str, name: str, count: int) -> Any:
    sts = await apps.read_namespaced_stateful_set(name, namespace)
    return sts if (sts.status.ready_replicas or 0) == count else None


async def test_garbage_collector_removes_dependents(api: client.ApiClient, namespace: str) -> None:
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    # Pods owned by a StatefulSet ...
    await apps.create_namespaced_stateful_set(namespace, _statefulset("doomed", 2))
    await eventually(lambda: _running_pods(core, namespace, "app=doomed", 2), timeout=60, what="2 pods")
    # ... and a plain ownerReference between two ConfigMaps.
    owner = await core.create_namespaced_config_map(namespace, _config_map("owner"))
    ref = client.V1OwnerReference(api_version="v1", kind="ConfigMap", name="owner", uid=owner.metadata.uid)
    await core.create_namespaced_config_map(namespace, _config_map("dependent", owner_references=[ref]))

    await apps.delete_namespaced_stateful_set("doomed", namespace, propagation_policy="Background")
    await core.delete_namespaced_config_map("owner", namespace, propagation_policy="Background")

    async def pods_gone() -> bool:
        return not (await core.list_namespaced_pod(namespace, label_selector="app=doomed")).items

    async def dependent_gone() -> bool:
        names = [c.metadata.name for c in (await core.list_namespaced_config_map(namespace)).items]
        return "dependent" not in names

    await eventually(pods_gone, timeout=30, what="GC to delete the StatefulSet's pods")
    await eventually(dependent_gone, timeout=30, what="GC to delete the dependent ConfigMap")


def _config_map(name: str, data: dict[str, str] | None = None, **meta: Any) -> client.V1ConfigMap:
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name, **meta), data=data)


async def test_stale_resource_version_conflicts(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    created = await core.create_namespaced_config_map(namespace, _config_map("cas", {"v": "1"}))
    stale_rv = created.metadata.resource_version
    fresh = await core.replace_namespaced_config_map(
        "cas", namespace, _config_map("cas", {"v": "2"}, resource_version=stale_rv)
    )
    assert fresh.metadata.resource_version != stale_rv

    with pytest.raises(ApiException) as err:
        await core.replace_namespaced_config_map(
            "cas", namespace, _config_map("cas", {"v": "3"}, resource_version=stale_rv)
        )
    assert err.value.status == 409
    assert "the object has been modified" in str(err.value.body)
    # A patch that carries the stale resourceVersion is refused the same way.
    with pytest.raises(ApiException) as patch_err:
        await core.patch_namespaced_config_map(
            "cas", namespace, {"metadata": {"resourceVersion": stale_rv}, "data": {"v": "4"}}
        )
    assert patch_err.value.status == 409
    assert (await core.read_namespaced_config_map("cas", namespace)).data == {"v": "2"}


async def test_readiness_gate_is_left_to_the_test(api: client.ApiClient, namespace: str) -> None:
    """kwok's stages here never set a readiness gate: the pod is Ready only once we do."""
    core = client.CoreV1Api(api)
    gate = "tars.io/active"
    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(name="gated", labels={"app": "gated"}),
        spec=client.V1PodSpec(
            readiness_gates=[client.V1PodReadinessGate(condition_type=gate)],
            containers=[client.V1Container(name="server", image="tars/hello:1")],
        ),
    )
    await core.create_namespaced_pod(namespace, pod)

    async def ready_state(want: str) -> bool:
        pod = await core.read_namespaced_pod("gated", namespace)
        conditions = {c.type: c.status for c in pod.status.conditions or []}
        return pod.status.phase == "Running" and conditions.get("Ready") == want

    await eventually(lambda: ready_state("False"), timeout=30, what="Running but not Ready")

    async def set_gate(status: str) -> None:
        body = {"status": {"conditions": [{"type": gate, "status": status}]}}
        await core.patch_namespaced_pod_status("gated", namespace, body)

    await set_gate("True")
    await eventually(lambda: ready_state("True"), timeout=15, what="Ready after the gate is True")
    await set_gate("False")
    await eventually(lambda: ready_state("False"), timeout=15, what="not Ready after the gate is False")


async def test_startup_time_and_memory_budget(k8s_cluster: Cluster) -> None:
    # Reused clusters (K8STARS_CLUSTER_REUSE) report the start-up of the `up` that made them.
    assert 0 < k8s_cluster.startup_seconds < 30, k8s_cluster.startup_seconds
    rss = k8s_cluster.rss_bytes()
    parts = {"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok", "pod-reaper"}
    assert set(rss) == parts, rss
    assert sum(rss.values()) < 2 * 2**30, rss


async def test_control_plane_sockets_are_loopback_only(k8s_cluster: Cluster, api: client.ApiClient) -> None:
    """Every TCP socket of every component, listening or connected, is on 127.0.0.0/8 (or ::1):
    tests and the cluster must only ever talk to this machine."""
    await client.CoreV1Api(api).list_node()  # at least one live client connection
    sockets = _tcp_sockets({p.pid for p in k8s_cluster.procs})
    assert any(state == "0A" for state, _, _ in sockets), "found no listening socket"
    assert any(state == "01" for state, _, _ in sockets), "found no established connection"
    for state, local, remote in sockets:
        assert ipaddress.ip_address(local).is_loopback, (state, local, remote)
        # A listening socket's "remote" is the unspecified address.
        remote_ip = ipaddress.ip_address(remote)
        assert remote_ip.is_loopback or (state == "0A" and remote_ip.is_unspecified), (state, local, remote)


def _tcp_sockets(pids: set[int]) -> list[tuple[str, str, str]]:
    """(state, local IP, remote IP) of the TCP sockets `pids` own, from /proc (IPv4 and IPv6).

    States are /proc's hex codes: 01 ESTABLISHED, 0A LISTEN, ...
    """
    inodes: set[str] = set()
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    found = []
    for table, width in (("/proc/net/tcp", 4), ("/proc/net/tcp6", 16)):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, remote, state, inode = fields[1], fields[2], fields[3], fields[9]
            if inode in inodes:
                found.append(
                    (
                        state,
                        _decode_proc_address(local.split(":")[0], width),
                        _decode_proc_address(remote.split(":")[0], width),
                    )
                )
    return found


def _decode_proc_address(hex_addr: str, width: int) -> str:
    raw = bytes.fromhex(hex_addr)
    # /proc/net prints each 32-bit word in host (little-endian) byte order.
    words = [raw[i : i + 4][::-1] for i in range(0, width, 4)]
    return str(ipaddress.ip_address(b"".join(words)))
