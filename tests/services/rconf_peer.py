"""The TarsGo (v1.4.6) RConf peer of the config service tests: tests/services/go_rconf, built once per source hash
into the peers cache, and the server config it reads."""

from __future__ import annotations

from pathlib import Path

RCONF_SRC = Path(__file__).resolve().parent / "go_rconf"
GO_CONF = """<tars>
  <application>
    <client>
      sync-invoke-timeout=3000
    </client>
    <server>
      app=Test
      server=HelloServer
      localip=127.0.0.1
      basepath={basepath}
      logpath={basepath}
      config=tars.tarsconfig.ConfigObj@tcp -h 127.0.0.1 -p {port}
    </server>
  </application>
</tars>
"""


def rconf_peer() -> Path:
    """tests/services/go_rconf built once per source hash (TarsGo v1.4.6, as the interop peer pins it)."""
    from k8stars.testing.peers import go_program

    return go_program(RCONF_SRC, "rconfpeer")
