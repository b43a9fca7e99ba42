"""`k8stars adminreg --trusted-peers`: callers outside those networks get 1006 from every command and nothing is
forwarded; a bad network is refused at start (exit 2). Without the option every caller is served (K8SFramework)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from adminreg_helpers import APP, SERVER, RegistryProc, adminreg

from k8stars.tars.protocol.adminreg import PluginConf, tarsErrCode
from tests.tarscli.tarscli_helpers import registry

__all__ = ["registry"]  # fixture


async def test_untrusted_callers_are_refused(registry: RegistryProc, tmp_path: Path) -> None:
    async with adminreg(tmp_path, registry, None, extra=("--trusted-peers", "10.0.0.0/8")) as admin:
        for call in (admin.notifyServer(APP, SERVER, "127.0.0.9", "tars.viewstatus"),
                     admin.stopServer(APP, SERVER, "127.0.0.9"), admin.startServer(APP, SERVER, ""),
                     admin.restartServer(APP, SERVER, "127.0.0.9")):  # fmt: skip
            ret, result = await call
            assert ret == tarsErrCode.EM_TARS_INVALID_IP_ERR and "not a trusted caller" in result, result
        assert tuple(await admin.checkTicket("x")) == (tarsErrCode.EM_TARS_INVALID_IP_ERR, "")
        assert await admin.registerPlugin(PluginConf(name="p", obj="a.b.C")) == tarsErrCode.EM_TARS_INVALID_IP_ERR
        assert (await admin.pingNode("127.0.0.9"))[0] is False
    async with adminreg(tmp_path, registry, None) as admin:  # every caller: the node is simply not there
        ret, result = await admin.notifyServer(APP, SERVER, "127.0.0.9", "tars.viewstatus")
        assert ret == tarsErrCode.EM_TARS_NODE_NO_CONNECTION, result


def test_a_bad_network_is_refused() -> None:
    out = subprocess.run([sys.executable, "-m", "k8stars", "adminreg", "--trusted-peers", "10.0.0.0/99"],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert out.returncode == 2 and "--trusted-peers" in out.stderr, out.stderr
