"""`k8stars adminreg` on the real control plane, called by name through the registry as a console calls it: server
commands reach the server's AdminObj through the node servant of its pod (real `tarscli supervisor` agents on the
pods' 127.64.x IPs, trusting only the admin registry the registry lists), to one pod by name or IP or to every pod;
stop/start/restart change the server's state; tarsErrCode codes for unknown pods and bad parameters; the auth checks
and tickets against a TAccount; plugins as TPlugins."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from adminreg_helpers import APP, SERVER, Pod, RegistryProc, adminreg, agents, kwok_pods, wait_for

from k8stars.kube.accounts import hash_password
from k8stars.kube.client import Kube
from k8stars.kube.resources import TACCOUNT, TPLUGIN
from k8stars.tars.protocol.adminreg import PluginConf, tarsErrCode
from k8stars.testing.cluster import Cluster
from tests.tarscli.tarscli_helpers import pods, registry

__all__ = ["pods", "registry"]  # fixtures


async def test_commands_reach_pods_through_the_node_servant(
    k8s_cluster: Cluster, kube: Kube, namespace: str, registry: RegistryProc, pods: Callable[..., Pod], tmp_path: Path
) -> None:
    items = await kwok_pods(kube, namespace, 2)
    first, second = agents(pods, registry, items, TARS_NODE_TRUSTED_PEERS="none")
    names = [str(p["metadata"]["name"]) for p in items]
    for pod in (first, second):
        await pod.wait_state("active")
    async with adminreg(tmp_path, registry, k8s_cluster, namespace) as admin:
        ret, result = await admin.notifyServer(APP, SERVER, names[0], "tars.viewstatus")
        assert ret == 0 and "TestApp.HelloServer" in result, result
        ret, result = await admin.notifyServer(APP, SERVER, first.ip, "tars.viewstatus")  # a pod IP works too
        assert ret == 0 and "TestApp.HelloServer" in result, result

        ret, result = await admin.notifyServer(APP, SERVER, "", "tars.viewstatus")  # every pod of the server
        lines = result.splitlines()
        assert ret == 0 and [n for n in names if any(line.startswith(f"{n}: ") for line in lines)] == names, result

        assert (await admin.pingNode(names[1])) == (True, "ping succ")
        assert (await admin.pingNode("no-such-pod"))[0] is False

        pid = second.service_pid()
        ret, result = await admin.stopServer(APP, SERVER, names[1])
        assert ret == 0, result
        await second.wait_state("inactive")
        assert first.state() == "active"  # the other pod is untouched
        ret, result = await admin.startServer(APP, SERVER, names[1])
        assert ret == 0, result
        await second.wait_state("active")
        restarted = second.service_pid()
        assert restarted not in (None, pid)
        ret, result = await admin.restartServer(APP, SERVER, names[1])
        assert ret == 0, result
        await wait_for(lambda: second.service_pid() not in (None, restarted), 30, "a new service process")
        await second.wait_state("active")

        ret, result = await admin.notifyServer(APP, SERVER, "testapp-helloserver-9", "tars.viewstatus")
        assert ret == tarsErrCode.EM_TARS_NODE_NOT_REGISTRY_ERR, result
        ret, result = await admin.notifyServer(APP, "Other", "", "tars.viewstatus")
        assert ret == tarsErrCode.EM_TARS_NODE_NOT_REGISTRY_ERR, result
        for app, server, command in ((APP, "a b", "tars.viewstatus"), ("", SERVER, "x"), (APP, SERVER, "")):
            ret, result = await admin.notifyServer(app, server, names[0], command)
            assert ret == tarsErrCode.EM_TARS_PARAMETER_ERR, result
        ret, result = await admin.stopServer(APP, "x;y", names[0])
        assert ret == tarsErrCode.EM_TARS_PARAMETER_ERR, result


async def test_auth_checks_and_plugins(
    k8s_cluster: Cluster, kube: Kube, namespace: str, registry: RegistryProc, tmp_path: Path
) -> None:
    token = "tk-" + "a" * 40
    expires = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    account = {"apiVersion": TACCOUNT.api_version, "kind": "TAccount", "metadata": {"name": "ops1"},
               "spec": {"username": "ops1",
                        "authentication": {"bcryptPassword": hash_password("secret1"), "activated": True,
                                           "tokens": [{"name": "ci", "content": token, "expirationTime": expires}]},
                        "authorization": [{"role": "operator", "flag": f"{APP}.{SERVER}"},
                                          {"role": "developer", "flag": "Other"}]}}  # fmt: skip
    await kube.create(TACCOUNT, namespace, account)
    admin_account = {**account, "metadata": {"name": "boss"},
                     "spec": {**account["spec"], "username": "boss",  # type: ignore[dict-item]
                              "authorization": [{"role": "admin", "flag": "Nowhere"}]}}  # fmt: skip
    admin_account["spec"]["authentication"] = {"bcryptPassword": hash_password("secret2"), "activated": True}
    await kube.create(TACCOUNT, namespace, admin_account)
    async with adminreg(tmp_path, registry, k8s_cluster, namespace) as admin:
        assert tuple(await admin.hasOpeAuth(APP, SERVER, "ops1")) == (0, True)
        assert tuple(await admin.hasDevAuth(APP, SERVER, "ops1")) == (0, True)
        assert tuple(await admin.hasOpeAuth(APP, "OtherServer", "ops1")) == (0, False)
        assert tuple(await admin.hasDevAuth("Other", "Any", "ops1")) == (0, True)
        assert tuple(await admin.hasOpeAuth("Other", "Any", "ops1")) == (0, False)
        assert tuple(await admin.hasAdminAuth("ops1")) == (0, False)
        assert tuple(await admin.hasAdminAuth("boss")) == (0, True)  # admin, whatever its flag (K8SFramework)
        assert tuple(await admin.hasOpeAuth(APP, SERVER, "boss")) == (0, True)
        assert tuple(await admin.hasDevAuth(APP, SERVER, "nobody")) == (0, False)
        assert tuple(await admin.checkTicket(token)) == (0, "ops1")
        assert tuple(await admin.checkTicket("tk-wrong")) == (0, "")

        conf = PluginConf(name="网关", name_en="Gateway", obj="tars.tarsgateway.GatewayObj", type=1,
                          path="/plugins/gateway", k8s=True, fextern=1)  # fmt: skip
        assert await admin.registerPlugin(conf) == 0
        plugin = await kube.get(TPLUGIN, namespace, "tars.tarsgateway.gatewayobj")
        assert plugin is not None and plugin["spec"]["path"] == "/plugins/gateway" and plugin["spec"]["extern"] == 1
        conf.path = "/plugins/gw2"
        assert await admin.registerPlugin(conf) == 0  # updated in place
        plugin = await kube.get(TPLUGIN, namespace, "tars.tarsgateway.gatewayobj")
        assert plugin is not None and plugin["spec"]["path"] == "/plugins/gw2"
        assert await admin.registerPlugin(PluginConf()) == tarsErrCode.EM_TARS_PARAMETER_ERR
