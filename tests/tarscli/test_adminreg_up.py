"""`k8stars up` serves tars.tarsAdminRegistry.AdminRegObj: found by name through its registry, it sends commands to
the example service through the node servant of its supervisor (the pod IP a loopback address) and the service
answers through its AdminObj; a restart gives a new service process that turns active again."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from tarscli_helpers import ROOT, wait_for
from test_tarscli_up import up_command

from k8stars.tars.protocol.adminreg import AdminRegProxy, tarsErrCode
from k8stars.tars.rpc import Communicator
from tests.conftest import free_port

FIRST_IP = "127.0.0.57"


def service_pid(data: Path) -> int | None:
    try:
        return int((data / "TestApp.HelloServer" / "data" / "service.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def state(data: Path) -> str:
    try:
        return (data / "TestApp.HelloServer" / "data" / "check_status").read_text().strip()
    except OSError:
        return ""


async def test_up_serves_adminreg(tmp_path: Path) -> None:
    port, data, out_path = free_port(), tmp_path / "up", tmp_path / "up.out"
    argv = [*up_command(data, port)]
    argv[argv.index("--first-ip") + 1] = FIRST_IP
    with open(out_path, "wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})  # fmt: skip
    try:
        await wait_for(lambda: "Ctrl-C stops everything." in out_path.read_text() or proc.poll() is not None, 90,
                       "k8stars up to start")  # fmt: skip
        text = out_path.read_text()
        assert proc.poll() is None and "adminreg  tars.tarsAdminRegistry.AdminRegObj@tcp -h 127.0.0.1" in text, text
        locator = f"tars.tarsregistry.QueryObj@tcp -h 127.0.0.1 -p {port}"
        async with Communicator(locator=locator) as comm:
            admin = comm.string_to_proxy(AdminRegProxy, "tars.tarsAdminRegistry.AdminRegObj")
            admin = admin.tars_options(timeout_ms=60000)
            ret, result = await admin.notifyServer("TestApp", "HelloServer", FIRST_IP, "tars.viewstatus")
            assert ret == 0 and "TestApp.HelloServer" in result, result
            before = service_pid(data)
            ret, result = await admin.restartServer("TestApp", "HelloServer", FIRST_IP)
            assert ret == 0, result
            await wait_for(lambda: service_pid(data) not in (None, before), 30, "a new service process")
            await wait_for(lambda: state(data) == "active", 30, "the restarted service to be active")
            ret, _ = await admin.notifyServer("TestApp", "HelloServer", "hello-0", "tars.viewstatus")
            assert ret == tarsErrCode.EM_TARS_NODE_NOT_REGISTRY_ERR  # no Kubernetes here: a pod IP only
            assert tuple(await admin.hasAdminAuth("admin")) == (-1, False)  # no TAccounts without Kubernetes
        proc.send_signal(signal.SIGINT)
        assert proc.wait(40) == 0, out_path.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
