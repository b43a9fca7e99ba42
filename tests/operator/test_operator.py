"""The operator on the real control plane: TServer → StatefulSet + Service + TEndpoint, pods followed, scaling and
template edits roll, a restart converges without writing anything or touching pods."""

from __future__ import annotations

import asyncio
import contextlib
import copy
from collections.abc import AsyncIterator
from typing import Any

import yaml  # type: ignore[import-untyped,unused-ignore]
from operator_helpers import OperatorRunner, load_examples, resource_of, until

from k8stars.kube.client import ApiException, Kube, Obj
from k8stars.kube.resources import CONFIGMAP, DAEMONSET, POD, SERVICE, STATEFULSET, TENDPOINT, TEXITEDRECORD, TSERVER

NAME = "test-helloserver"


async def _create_tserver(kube: Kube, namespace: str, example: str = "tserver.yaml", **spec: Any) -> Obj:
    (doc,) = load_examples(example)
    doc = copy.deepcopy(doc)
    doc["spec"].update(spec)
    return await kube.create(TSERVER, namespace, doc)


async def _pods(kube: Kube, namespace: str, selector: str = "tars.io/ServerName=HelloServer") -> list[Obj]:
    items: list[Obj] = (await kube.list(POD, namespace, selector=selector))["items"]
    return sorted(items, key=lambda p: str(p["metadata"]["name"]))


async def _activate(kube: Kube, namespace: str, name: str) -> None:
    """What the in-pod agent does once the server is up: set the pod's tars.io/active condition."""
    condition = {"type": "tars.io/active", "status": "True", "reason": "Active", "message": "server active"}
    await kube.request(
        "PATCH",
        POD.path(namespace, name, "status"),
        body={"status": {"conditions": [condition]}},
        content_type="application/strategic-merge-patch+json",
    )


@contextlib.asynccontextmanager
async def fake_agents(kube: Kube, namespace: str) -> AsyncIterator[None]:
    """Stand in for tarscli in every pod: each running pod reports active (StatefulSet rollouts wait for Ready)."""

    async def loop() -> None:
        while True:
            for pod in await _pods(kube, namespace):
                conditions = {c["type"]: c["status"] for c in pod.get("status", {}).get("conditions") or []}
                if pod.get("status", {}).get("phase") == "Running" and conditions.get("tars.io/active") != "True":
                    with contextlib.suppress(ApiException):
                        await _activate(kube, namespace, pod["metadata"]["name"])
            await asyncio.sleep(0.2)

    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _running(pods: list[Obj]) -> bool:
    return all(p.get("status", {}).get("phase") == "Running" and p["status"].get("podIP") for p in pods)


async def test_tserver_becomes_statefulset_and_service(kube: Kube, namespace: str, operator: OperatorRunner) -> None:
    await _create_tserver(kube, namespace)
    sts = await until(lambda: kube.get(STATEFULSET, namespace, NAME), what="StatefulSet")
    labels = {"tars.io/ServerApp": "Test", "tars.io/ServerName": "HelloServer"}
    assert sts["metadata"]["labels"] == labels
    assert sts["metadata"]["ownerReferences"][0]["kind"] == "TServer"
    spec = sts["spec"]
    assert spec["replicas"] == 2 and spec["serviceName"] == NAME
    assert spec["selector"] == {"matchLabels": labels}
    assert spec["podManagementPolicy"] == "Parallel"
    template = spec["template"]
    assert template["metadata"]["labels"] == {**labels, "tars.io/ServerID": "v20260101-1"}
    pod = template["spec"]
    (container,) = pod["containers"]
    assert container["name"] == "test-helloserver"
    assert container["image"] == "registry.example.com/tars/test.helloserver:v20260101-1"
    assert "command" not in container  # K8SFramework's: the image's ENTRYPOINT (a base image's: the agent)
    agent = "/usr/local/app/tars/tarsnode/bin/tarscli"  # where the tarsnode init container put it
    assert "readinessProbe" not in container  # as K8SFramework: the tars.io/active gate is the readiness
    assert container["lifecycle"]["preStop"]["exec"]["command"] == [agent, "prestop"]
    (doc,) = load_examples("tserver.yaml")
    # exactly the user's, as in K8SFramework (the apiserver adds fieldRef.apiVersion)
    assert [e["name"] for e in container["env"]] == [e["name"] for e in doc["spec"]["k8s"]["env"]]
    assert container["resources"]["limits"]["memory"] == "256Mi"
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["host-log-dir"]["subPathExpr"] == "$(POD_NAME)"
    assert list(mounts) == ["host-log-dir", "host-timezone", "tarsnode-work-dir"]
    assert mounts["tarsnode-work-dir"]["mountPath"] == "/usr/local/app/tars/tarsnode"
    assert "ports" not in container  # tars servers expose container ports only for hostPorts
    (init,) = pod["initContainers"]
    assert init["name"] == "tarsnode" and init["image"] == "registry.example.com/tars/tarsnode:v1.4.0"
    assert init["command"] == ["/opt/k8stars/node/tarscli", "nodeinit"]
    assert init["volumeMounts"] == [{"name": "tarsnode-work-dir", "mountPath": "/usr/local/app/tars/tarsnode"}]
    init_env = {e["name"]: e for e in init["env"]}
    assert [n for n in init_env if n[0].isupper() and not n.isupper()] == [
        "Namespace", "PodName", "PodIP", "ServerApp", "ServerName"]  # K8SFramework's  # fmt: skip
    assert init_env["PodIP"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
    assert init_env["K8STARS_SERVER_META"]["valueFrom"]["configMapKeyRef"] == {
        "name": "test-helloserver-server-meta", "key": "_server_meta.yaml"}  # fmt: skip
    assert pod["readinessGates"] == [{"conditionType": "tars.io/active"}]
    assert pod["imagePullSecrets"] == [{"name": "tars-image-secret"}]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["host-log-dir"]["hostPath"] == {"path": "/usr/local/app/tars/app_log", "type": "DirectoryOrCreate"}
    assert volumes["tarsnode-work-dir"]["emptyDir"] == {}
    assert list(volumes) == ["host-log-dir", "host-timezone", "tarsnode-work-dir"]
    node_affinity = pod["affinity"]["nodeAffinity"]
    (term,) = node_affinity["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert term["matchExpressions"] == [{"key": f"tars.io/node.{namespace}", "operator": "Exists"}]
    preferred = node_affinity["preferredDuringSchedulingIgnoredDuringExecution"]
    assert [(p["weight"], p["preference"]["matchExpressions"][0]["key"]) for p in preferred] == [
        (60, f"tars.io/ability.{namespace}.Test-HelloServer"),
        (30, f"tars.io/ability.{namespace}.Test"),
    ]

    # The in-pod agent's server description (reaching it through the init container): one adapter per servant on
    # its declared port.
    assert template["metadata"]["annotations"]["k8stars.io/server-meta-hash"]
    cm = await until(lambda: kube.get(CONFIGMAP, namespace, "test-helloserver-server-meta"), what="ConfigMap")
    server_meta = yaml.safe_load(cm["data"]["_server_meta.yaml"])
    assert (server_meta["application"], server_meta["server"], server_meta["asyncThreadNum"]) == (
        "Test",
        "HelloServer",
        3,
    )
    assert server_meta["adapters"] == [
        {"object": "HelloObj", "endpoint": "tcp -h ${local_ip} -p 10000 -t 60000", "maxconns": 10000,
         "protocol": "tars", "queuecap": 100000, "queuetimeout": 60000, "threads": 3},
        {"object": "AdminHttpObj", "endpoint": "tcp -h ${local_ip} -p 10001 -t 60000", "maxconns": 10000,
         "protocol": "not_tars", "queuecap": 10000, "queuetimeout": 60000, "threads": 3},
    ]  # fmt: skip

    svc = await until(lambda: kube.get(SERVICE, namespace, NAME), what="Service")
    assert svc["spec"]["clusterIP"] == "None" and svc["spec"]["selector"] == labels
    assert [(p["name"], p["port"], p["protocol"]) for p in svc["spec"]["ports"]] == [
        ("helloobj", 10000, "TCP"),
        ("adminhttpobj", 10001, "TCP"),
    ]


async def test_normal_server_and_server_without_release(kube: Kube, namespace: str, operator: OperatorRunner) -> None:
    await _create_tserver(kube, namespace, "tserver-normal.yaml")
    sts = await until(lambda: kube.get(STATEFULSET, namespace, "test-webgateway"), what="StatefulSet")
    pod = sts["spec"]["template"]["spec"]
    assert "initContainers" not in pod and "readinessGates" not in pod
    (container,) = pod["containers"]
    assert container["image"] == " " and sts["spec"]["replicas"] == 0  # no release yet: nothing runs
    assert [(p["name"], p["containerPort"], p.get("hostPort")) for p in container["ports"]] == [
        ("http", 8080, 18080),
        ("metrics", 9100, None),
    ]
    svc = await until(lambda: kube.get(SERVICE, namespace, "test-webgateway"), what="Service")
    assert [p["name"] for p in svc["spec"]["ports"]] == ["http", "metrics"]
    te = await until(lambda: kube.get(TENDPOINT, namespace, "test-webgateway"), what="TEndpoint")
    assert te["spec"]["subType"] == "normal" and te["spec"]["hostPorts"] == [{"nameRef": "http", "port": 18080}]


async def test_pods_running_and_tendpoint_follows(kube: Kube, namespace: str, operator: OperatorRunner) -> None:
    await _create_tserver(kube, namespace)

    async def endpoint_has_running_pods() -> Obj | None:
        pods = await _pods(kube, namespace)
        te = await kube.get(TENDPOINT, namespace, NAME)
        if len(pods) != 2 or not _running(pods) or te is None:
            return None
        entries = (te.get("status") or {}).get("pods") or []
        want = [(p["metadata"]["uid"], p["metadata"]["name"], p["status"]["podIP"]) for p in pods]
        have = [(e["uid"], e["name"], e["podIP"]) for e in entries]
        return te if have == want else None

    te = await until(endpoint_has_running_pods, timeout=30, what="TEndpoint with both running pods")
    assert te["spec"]["app"] == "Test" and te["spec"]["tars"]["servants"][0]["name"] == "HelloObj"
    assert te["spec"]["release"]["id"] == "v20260101-1"
    for entry in te["status"]["pods"]:
        assert entry["podIP"].startswith("127.64.") and entry["hostIP"].startswith("127.63.")
        assert entry["id"] == "v20260101-1" and entry["settingState"] == "Active"
        assert entry["presentState"] == "Activating"  # running, but the agent has not reported active yet
        assert entry["containerStatuses"][0]["name"] == "test-helloserver"

    # The in-pod agent reports the server active through the pod's tars.io/active condition.
    first = (await _pods(kube, namespace))[0]["metadata"]["name"]
    await _activate(kube, namespace, first)

    async def first_active() -> bool:
        te = await kube.get(TENDPOINT, namespace, NAME)
        states = {e["name"]: e["presentState"] for e in (te or {}).get("status", {}).get("pods", [])}
        return states.get(first) == "Active"

    await until(first_active, what="presentState Active")

    async def tserver_ready() -> Obj | None:
        ts = await kube.get(TSERVER, namespace, NAME)
        status = (ts or {}).get("status") or {}
        return ts if status.get("readyReplicas") == 1 and status.get("currentReplicas") == 2 else None

    ts = await until(tserver_ready, what="TServer status readyReplicas 1")
    assert ts["status"]["selector"] == "tars.io/ServerApp=Test,tars.io/ServerName=HelloServer"

    # A deleted pod leaves the TEndpoint and its replacement joins it.
    old_uid = (await _pods(kube, namespace))[0]["metadata"]["uid"]
    await kube.request("DELETE", POD.path(namespace, first), query={"gracePeriodSeconds": 0})
    te = await until(endpoint_has_running_pods, timeout=30, what="TEndpoint with the replacement pod")
    assert old_uid not in {e["uid"] for e in te["status"]["pods"]}

    # ... and is recorded in the server's TExitedRecord.
    record = await until(lambda: kube.get(TEXITEDRECORD, namespace, NAME), what="TExitedRecord")
    assert record["app"] == "Test" and record["server"] == "HelloServer"
    (exited,) = [p for p in record["pods"] if p["uid"] == old_uid]
    assert exited["name"] == first and exited["podIP"].startswith("127.64.") and exited["id"] == "v20260101-1"
    assert exited["createTime"] and exited["deleteTime"]


async def test_scaling_and_template_edits_roll(kube: Kube, namespace: str, operator: OperatorRunner) -> None:
    await _create_tserver(kube, namespace)
    await until(lambda: _pods_running(kube, namespace, 2), timeout=30, what="2 running pods")

    # kubectl scale ts --replicas 3 (the scale subresource)
    await kube.merge_patch(TSERVER, namespace, NAME, {"spec": {"replicas": 3}}, sub="scale")
    await until(lambda: _pods_running(kube, namespace, 3), timeout=30, what="3 running pods")
    await until(lambda: _endpoint_size(kube, namespace, 3), what="TEndpoint with 3 pods")
    await operator.idle()

    # A change outside the pod template: no rollout, the StatefulSet is not even written.
    sts = await kube.get(STATEFULSET, namespace, NAME)
    assert sts is not None
    uids = {p["metadata"]["uid"] for p in await _pods(kube, namespace)}
    await kube.merge_patch(TSERVER, namespace, NAME, {"spec": {"important": 7}})
    await until(lambda: _endpoint_important(kube, namespace, 7), what="TEndpoint spec follows")
    await operator.idle()
    again = await kube.get(STATEFULSET, namespace, NAME)
    assert again is not None and again["metadata"]["resourceVersion"] == sts["metadata"]["resourceVersion"]
    assert {p["metadata"]["uid"] for p in await _pods(kube, namespace)} == uids

    # A new release changes the pod template: every pod is replaced by one running the new image (a StatefulSet
    # rolls one pod at a time, each after the previous one became Ready: the agents report them active).
    image = "registry.example.com/tars/test.helloserver:v20260102-1"
    await kube.merge_patch(TSERVER, namespace, NAME, {"spec": {"release": {"id": "v20260102-1", "image": image}}})

    async def rolled() -> bool:
        pods = await _pods(kube, namespace)
        return (
            len(pods) == 3
            and _running(pods)
            and all(p["spec"]["containers"][0]["image"] == image for p in pods)
            and not ({p["metadata"]["uid"] for p in pods} & uids)
        )

    async with fake_agents(kube, namespace):
        await until(rolled, timeout=60, what="rollout to the new image")
    pods = await _pods(kube, namespace)
    assert all(p["metadata"]["labels"]["tars.io/ServerID"] == "v20260102-1" for p in pods)

    # Both releases are recorded in the server's TImage, newest first; the app is in the namespace's TTree.
    async def releases() -> list[str] | None:
        image = await kube.get(resource_of("TImage"), namespace, NAME)
        ids = [r["id"] for r in (image or {}).get("releases") or []]
        return ids if len(ids) == 2 else None

    assert await until(releases, what="TImage with both releases") == ["v20260102-1", "v20260101-1"]
    tree = await kube.get(resource_of("TTree"), namespace, "tars-tree")
    assert tree is not None and [(a["name"], a["businessRef"]) for a in tree["apps"]] == [("Test", "")]

    # Scale down.
    await kube.merge_patch(TSERVER, namespace, NAME, {"spec": {"k8s": {"replicas": 1}}})
    await until(lambda: _pods_running(kube, namespace, 1), timeout=30, what="1 pod")
    await until(lambda: _endpoint_size(kube, namespace, 1), what="TEndpoint with 1 pod")


async def test_restart_converges_without_touching_anything(
    kube: Kube, namespace: str, operator: OperatorRunner
) -> None:
    await _create_tserver(kube, namespace)
    await _create_tserver(kube, namespace, "tserver-normal.yaml")
    await until(lambda: _pods_running(kube, namespace, 2), timeout=30, what="2 running pods")
    await until(lambda: _endpoint_size(kube, namespace, 2), what="TEndpoint with 2 pods")
    await operator.idle()

    async def snapshot() -> dict[str, str]:
        versions = {}
        for res in (STATEFULSET, SERVICE, TENDPOINT, TSERVER):
            for name in (NAME, "test-webgateway"):
                obj = await kube.get(res, namespace, name)
                assert obj is not None
                versions[f"{res.kind}/{name}"] = obj["metadata"]["resourceVersion"]
        for pod in await _pods(kube, namespace):
            versions[f"Pod/{pod['metadata']['name']}"] = pod["metadata"]["uid"]
        return versions

    before = await snapshot()
    await operator.stop()
    restarted = await operator.start()
    await operator.idle(settle=1.0)
    assert restarted.stats.writes == {}, restarted.stats.writes
    assert await snapshot() == before

    # A change made while the operator is down is picked up after the restart.
    await operator.stop()
    await kube.merge_patch(TSERVER, namespace, NAME, {"spec": {"k8s": {"replicas": 1}}})
    await operator.start()
    await until(lambda: _pods_running(kube, namespace, 1), timeout=30, what="1 pod after restart")
    await operator.idle()
    await until(lambda: _endpoint_size(kube, namespace, 1), what="TEndpoint with 1 pod")


async def test_deleted_owned_objects_come_back(kube: Kube, namespace: str, operator: OperatorRunner) -> None:
    await _create_tserver(kube, namespace)
    svc = await until(lambda: kube.get(SERVICE, namespace, NAME), what="Service")
    await kube.delete(SERVICE, namespace, NAME)

    async def recreated() -> Obj | None:
        again = await kube.get(SERVICE, namespace, NAME)
        return again if again and again["metadata"]["uid"] != svc["metadata"]["uid"] else None

    await until(recreated, what="Service recreated")


async def _pods_running(kube: Kube, namespace: str, count: int) -> bool:
    pods = [p for p in await _pods(kube, namespace) if not p["metadata"].get("deletionTimestamp")]
    return len(pods) == count and len(await _pods(kube, namespace)) == count and _running(pods)


async def _endpoint_size(kube: Kube, namespace: str, count: int) -> bool:
    te = await kube.get(TENDPOINT, namespace, NAME)
    return len(((te or {}).get("status") or {}).get("pods") or []) == count


async def _endpoint_important(kube: Kube, namespace: str, value: int) -> bool:
    te = await kube.get(TENDPOINT, namespace, NAME)
    return bool(te and te["spec"].get("important") == value)


async def test_daemonset_switch(kube: Kube, namespace: str, operator: OperatorRunner) -> None:
    await _create_tserver(kube, namespace)
    await until(lambda: kube.get(SERVICE, namespace, NAME), what="Service")
    await kube.merge_patch(TSERVER, namespace, NAME, {"spec": {"k8s": {"daemonSet": True}}})

    async def daemonset_only() -> Obj | None:
        ds = await kube.get(DAEMONSET, namespace, NAME)
        gone = await kube.get(STATEFULSET, namespace, NAME) is None and await kube.get(SERVICE, namespace, NAME) is None
        return ds if ds and gone else None

    ds = await until(daemonset_only, what="DaemonSet instead of StatefulSet and Service")
    affinity = ds["spec"]["template"]["spec"]["affinity"]
    assert "preferredDuringSchedulingIgnoredDuringExecution" not in affinity["nodeAffinity"]  # no ability affinity
    await until(lambda: _pods_running(kube, namespace, 2), timeout=30, what="a pod per node")

    await kube.merge_patch(TSERVER, namespace, NAME, {"spec": {"k8s": {"daemonSet": False}}})

    async def statefulset_again() -> bool:
        return (
            await kube.get(DAEMONSET, namespace, NAME) is None
            and await kube.get(STATEFULSET, namespace, NAME) is not None
            and await kube.get(SERVICE, namespace, NAME) is not None
        )

    await until(statefulset_again, what="StatefulSet and Service back")


async def test_concurrent_edits_never_recreate_pods(kube: Kube, namespace: str, operator: OperatorRunner) -> None:
    """Two clients edit the TServer at once (fields outside the pod template) while the operator reconciles:
    no conflict error, no pod recreated, the TEndpoint ends with the last values."""
    await _create_tserver(kube, namespace)
    await until(lambda: _pods_running(kube, namespace, 2), timeout=30, what="2 running pods")
    await until(lambda: _endpoint_size(kube, namespace, 2), what="TEndpoint with 2 pods")
    uids = {p["metadata"]["uid"] for p in await _pods(kube, namespace)}

    async def editor(key: str, values: range) -> None:
        for value in values:
            if key == "important":
                await kube.merge_patch(TSERVER, namespace, NAME, {"spec": {"important": value}})
            else:
                await kube.merge_patch(TSERVER, namespace, NAME, {"metadata": {"annotations": {key: str(value)}}})

    await asyncio.gather(editor("important", range(1, 21)), editor("example.com/note", range(40)))
    await until(lambda: _endpoint_important(kube, namespace, 20), what="TEndpoint spec at the last value")
    op = await operator.idle()
    assert op.stats.errors == 0
    assert {p["metadata"]["uid"] for p in await _pods(kube, namespace)} == uids
    assert op.stats.writes.get("statefulset", 0) == 1  # only the first create


async def test_activating_a_tconfig_deactivates_the_previous_version(
    kube: Kube, namespace: str, operator: OperatorRunner
) -> None:
    master, slave = load_examples("tconfig.yaml")
    tconfig = resource_of("TConfig")
    await kube.create(tconfig, namespace, master)
    await kube.create(tconfig, namespace, slave)
    v2 = copy.deepcopy(master)
    v2["metadata"] = {"name": "test-helloserver-hello.conf-m-v2"}
    # A megabyte of content: its watch event is one line far longer than aiohttp's readline() accepts.
    v2["version"], v2["configContent"] = "v2", "<hello>\n" + ("  greeting=hello again\n" * 50_000) + "</hello>\n"
    await kube.create(tconfig, namespace, v2)

    async def v1_deactivated() -> Obj | None:
        v1 = await kube.get(tconfig, namespace, master["metadata"]["name"])
        return v1 if v1 and v1["activated"] is False else None

    v1 = await until(v1_deactivated, what="v1 deactivated")
    assert v1["metadata"]["labels"]["tars.io/Activated"] == "false"
    await operator.idle()
    assert (await kube.get(tconfig, namespace, "test-helloserver-hello.conf-m-v2") or {})["activated"] is True
    # The pod-level config is another group: untouched.
    assert (await kube.get(tconfig, namespace, slave["metadata"]["name"]) or {})["activated"] is True
