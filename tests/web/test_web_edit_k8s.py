"""The settings form's host, volume and node part (spec.k8s hostNetwork, hostIPC, hostPorts, mounts, nodeSelector,
notStacked, daemonSet) in a real Chromium, against the apiserver, the operator and its admission webhooks: each save
checked on the TServer and on the workload the operator renders from it; a mount the form cannot show kept as it is;
refusals (the webhook's, the schema's, the console's own) on the form with what was typed; a stale form and a forged
POST by a developer change nothing."""

from __future__ import annotations

from typing import Any

from helpers import Browser, until
from test_servers import add_tree
from test_web_edit import PAGE, editors, save, spec

from k8stars.kube.client import Kube, Obj
from k8stars.kube.resources import DAEMONSET, STATEFULSET, TSERVER
from k8stars.testing.cluster import Cluster

NAME = "test-helloserver"
# The example's log mount: subPathExpr is nothing the form shows, so it is listed and kept as it is
LOG_MOUNT = {"name": "host-log-dir", "mountPath": "/usr/local/app/tars/app_log", "subPathExpr": "$(POD_NAME)",
             "readOnly": False, "source": {"hostPath": {"path": "/usr/local/app/tars/app_log",
                                                        "type": "DirectoryOrCreate"}}}  # fmt: skip


async def pod_spec(kube: Kube, namespace: str, check: Any, kind: Any = STATEFULSET) -> Obj:
    """The rendered workload's pod spec, once ``check(pod_spec)`` holds."""

    async def probe() -> Obj | None:
        workload = await kube.get(kind, namespace, NAME)
        found: Obj | None = workload and workload["spec"]["template"]["spec"]
        return found if found and check(found) else None

    got: Obj = await until(probe, timeout=30, what="the operator to render the settings")
    return got


def volumes(ps: Obj) -> dict[str, Obj]:
    return {v["name"]: {k: x for k, x in v.items() if k != "name"} for v in ps["volumes"]}


def volume_mounts(ps: Obj) -> dict[str, Obj]:
    return {m["name"]: m for m in ps["containers"][0].get("volumeMounts") or []}


async def fill_mount(b: Browser, i: int, name: str, path: str, source: str, origin: str = "", **more: Any) -> None:
    await b.page.fill(f"input[name='m{i}.name']", name)
    await b.page.fill(f"input[name='m{i}.mountPath']", path)
    await b.page.select_option(f"select[name='m{i}.source']", source)
    await b.page.fill(f"input[name='m{i}.from']", origin)
    if "type" in more:
        await b.page.select_option(f"select[name='m{i}.type']", more["type"])
    if more.get("readOnly"):
        await b.page.check(f"input[name='m{i}.readOnly']")


async def saved(b: Browser) -> None:
    await save(b)
    text = await b.page.inner_text("main")
    assert "saved" in text, text


async def test_host_volumes_and_nodes(k8s_cluster: Cluster, kube: Kube, namespace: str, operator: None, console: str,
                                      browser: Any) -> None:  # fmt: skip
    await add_tree(kube, namespace)
    await kube.merge_patch(TSERVER, namespace, NAME, {"spec": {"k8s": {"mounts": [LOG_MOUNT]}}})
    async with editors(k8s_cluster, kube, namespace, console, browser, ("developer", "Test")) as (ops, dev):
        await ops.login("ops", "ops-pass")
        await ops.goto(PAGE)
        assert "host-log-dir" in await ops.page.inner_text("#kept-mounts")
        assert not await ops.page.is_checked("input[name=hostNetwork]")
        # Host network and IPC, a host port for HelloObj (a suggestion of the server's names), a hostPath mount
        # and a node selector
        assert await ops.page.locator("#port-names option").count() == 2
        await ops.page.check("input[name=hostNetwork]")
        await ops.page.check("input[name=hostIPC]")
        await ops.page.fill("input[name='h0.nameRef']", "HelloObj")
        await ops.page.fill("input[name='h0.port']", "10000")  # with hostNetwork, Kubernetes wants the servant's
        await fill_mount(ops, 0, "data", "/data", "hostPath", "/var/data", type="DirectoryOrCreate")
        await ops.page.fill("input[name='n0.key']", "disk")
        await ops.page.select_option("select[name='n0.operator']", "In")
        await ops.page.fill("input[name='n0.values']", "ssd, nvme")
        await ops.page.evaluate("document.getElementById('host').scrollIntoView()")
        await ops.shot("edit_k8s.png")
        await saved(ops)
        k8s = (await spec(kube, namespace))["k8s"]
        assert (k8s["hostNetwork"], k8s["hostIPC"], k8s["notStacked"]) == (True, True, True)  # notStacked: webhook
        assert k8s["hostPorts"] == [{"nameRef": "HelloObj", "port": 10000}]
        data = {"name": "data", "mountPath": "/data", "readOnly": False,
                "source": {"hostPath": {"path": "/var/data", "type": "DirectoryOrCreate"}}}  # fmt: skip
        assert k8s["mounts"] == [LOG_MOUNT, data]
        assert k8s["nodeSelector"] == [{"key": "disk", "operator": "In", "values": ["ssd", "nvme"]}]
        ps = await pod_spec(kube, namespace, lambda p: p.get("hostNetwork") and "data" in volumes(p))
        assert ps["hostIPC"] is True and ps["dnsPolicy"] == "ClusterFirstWithHostNet"
        assert ps["containers"][0]["ports"] == [
            {"name": "p10000-10000", "containerPort": 10000, "hostPort": 10000, "protocol": "TCP"}
        ]
        assert volumes(ps)["data"] == {"hostPath": {"path": "/var/data", "type": "DirectoryOrCreate"}}
        assert volume_mounts(ps)["data"]["mountPath"] == "/data" and not volume_mounts(ps)["data"].get("readOnly")
        assert volume_mounts(ps)["host-log-dir"]["subPathExpr"] == "$(POD_NAME)"
        terms = ps["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert terms["nodeSelectorTerms"][0]["matchExpressions"][0] == k8s["nodeSelector"][0]
        assert "podAntiAffinity" in ps["affinity"]

        # An emptyDir, then a ConfigMap read-only, each in the one blank row; the status written meanwhile (as the
        # operator does as pods come and go) is no one's edit of the settings: the save goes through
        await ops.goto(PAGE)
        await fill_mount(ops, 1, "cache", "/cache", "emptyDir")
        await kube.request("PATCH", TSERVER.path(namespace, NAME, "status"), body={"status": {"readyReplicas": 7}},
                           content_type="application/merge-patch+json")  # fmt: skip
        await saved(ops)
        await ops.goto(PAGE)
        await fill_mount(ops, 2, "conf", "/etc/conf", "configMap", "hello-conf", readOnly=True)
        await saved(ops)
        # A Secret; the hostPath mount, the host port and the host network go
        await ops.goto(PAGE)
        assert await ops.page.input_value("input[name='m2.from']") == "hello-conf"
        await fill_mount(ops, 3, "certs", "/certs", "secret", "hello-certs")
        await ops.page.check("input[name='m0.remove']")
        await ops.page.check("input[name='h0.remove']")
        await ops.page.uncheck("input[name=hostNetwork]")
        await saved(ops)
        k8s = (await spec(kube, namespace))["k8s"]
        assert [m["name"] for m in k8s["mounts"]] == ["host-log-dir", "cache", "conf", "certs"]
        assert k8s["mounts"][0] == LOG_MOUNT
        assert k8s["mounts"][1]["source"] == {"emptyDir": {}}
        assert k8s["mounts"][2]["source"] == {"configMap": {"name": "hello-conf", "defaultMode": 0o644,
                                                            "optional": True}}  # fmt: skip
        assert k8s["mounts"][2]["readOnly"] is True
        assert k8s["mounts"][3]["source"]["secret"]["secretName"] == "hello-certs"
        assert (k8s["hostNetwork"], k8s["hostIPC"], k8s.get("hostPorts")) == (False, True, [])
        ps = await pod_spec(kube, namespace, lambda p: not p.get("hostNetwork") and "certs" in volumes(p))
        assert "data" not in volumes(ps) and "ports" not in ps["containers"][0]
        assert volumes(ps)["cache"] == {"emptyDir": {}}
        assert volumes(ps)["conf"]["configMap"]["name"] == "hello-conf"
        assert volumes(ps)["certs"]["secret"]["secretName"] == "hello-certs"
        assert volume_mounts(ps)["conf"]["readOnly"] is True and volume_mounts(ps)["certs"]["mountPath"] == "/certs"

        # A save that changes nothing changes nothing (the kept mount keeps its place)
        before = await kube.get(TSERVER, namespace, NAME)
        assert before is not None
        await ops.goto(PAGE)
        await saved(ops)
        after = await kube.get(TSERVER, namespace, NAME)
        assert after is not None and after["spec"] == before["spec"]

        # Refusals, what was typed kept: the webhook (a host port for no servant) ...
        await ops.goto(PAGE)
        await ops.page.fill("input[name='h0.nameRef']", "NoSuchObj")
        await ops.page.fill("input[name='h0.port']", "20001")
        await fill_mount(ops, 3, "typed", "/typed", "emptyDir")
        await save(ops)
        refusal = await ops.page.inner_text("#refusal")
        assert "NoSuchObj" in refusal and "names no servant" in refusal, refusal
        assert await ops.page.input_value("input[name='h0.nameRef']") == "NoSuchObj"
        assert await ops.page.input_value("input[name='m3.name']") == "typed"
        assert "host-log-dir" in await ops.page.inner_text("#kept-mounts")
        # ... the CRD schema (a mount name that is no DNS label) ...
        await ops.page.fill("input[name='h0.nameRef']", "HelloObj")
        await ops.page.fill("input[name='m3.name']", "bad_name")
        await save(ops)
        assert "mounts" in await ops.page.inner_text("#refusal")
        assert await ops.page.input_value("input[name='m3.name']") == "bad_name"
        # ... and the console's own (a host port that is no number; a ConfigMap mount without its name)
        await ops.page.fill("input[name='m3.name']", "typed")
        await ops.page.fill("input[name='h0.port']", "lots")
        await save(ops)
        assert "host port of HelloObj: 'lots' is not a whole number" in await ops.page.inner_text("#refusal")
        assert await ops.page.input_value("input[name='h0.port']") == "lots"  # shown again as typed
        assert await ops.page.input_value("input[name='m3.name']") == "typed"
        assert await ops.page.is_checked("input[name='m3.readOnly']") is False
        await ops.goto(PAGE)
        await fill_mount(ops, 3, "conf2", "/conf2", "configMap")
        await save(ops)
        assert "conf2: a ConfigMap name is required" in await ops.page.inner_text("#refusal")
        assert await ops.page.input_value("select[name='m3.source']") == "configMap"
        after = await kube.get(TSERVER, namespace, NAME)
        assert after is not None and after["spec"] == before["spec"]

        # A stale form is refused; a developer's forged POST too
        await ops.goto(PAGE)
        token, version = await ops.csrf(), await ops.page.input_value("input[name=resourceVersion]")
        await kube.merge_patch(TSERVER, namespace, NAME, {"spec": {"k8s": {"replicas": 2}}})
        stale = {"_csrf": token, "resourceVersion": version, "replicas": "1", "s0.name": "HelloObj",
                 "s0.port": "10000", "k8sHost": "1", "hostNetwork": "on"}  # fmt: skip
        assert await ops.forge(PAGE, stale) == 422
        assert (await spec(kube, namespace))["k8s"]["hostNetwork"] is False
        await dev.login("dev", "dev-pass")
        assert (await dev.goto(PAGE)).status == 403
        forged = {**stale, "_csrf": await dev.csrf(), "resourceVersion": ""}
        assert await dev.forge(PAGE, forged) == 403
        assert (await spec(kube, namespace))["k8s"]["hostNetwork"] is False

        # A DaemonSet: the operator renders one instead of the StatefulSet, with the mounts
        await ops.goto(PAGE)
        await ops.page.check("input[name=daemonSet]")
        await saved(ops)
        assert (await spec(kube, namespace))["k8s"]["daemonSet"] is True
        ps = await pod_spec(kube, namespace, lambda p: "certs" in volumes(p), DAEMONSET)
        assert ps["hostIPC"] is True
        await until(lambda: absent(kube, namespace), timeout=30, what="the StatefulSet to go")
        ops.assert_clean("status of 422")
        dev.assert_clean("status of 403")


async def absent(kube: Kube, namespace: str) -> bool:
    return await kube.get(STATEFULSET, namespace, NAME) is None
