"""The TarsGo (v1.4.6) RConf peer of the config service tests: tests/services/go_rconf, built once per source hash
into the peers cache, and the server config it reads."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

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
    from k8stars.testing.peers import cache_root

    go = shutil.which("go")
    if go is None:
        pytest.skip("no go toolchain for the TarsGo rconf peer")
    sources = sorted(p for p in RCONF_SRC.iterdir() if p.name in ("go.mod", "go.sum", "main.go"))
    digest = hashlib.sha256(b"".join(p.name.encode() + b"\0" + p.read_bytes() for p in sources)).hexdigest()[:16]
    binary = cache_root() / f"rconf-{digest}" / "rconfpeer"
    if not binary.is_file():
        env = {**os.environ, "CGO_ENABLED": "0", "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=readonly -buildvcs=false"}
        tmp = binary.with_name(f".rconfpeer.{os.getpid()}")
        binary.parent.mkdir(parents=True, exist_ok=True)
        built = subprocess.run([go, "build", "-trimpath", "-o", str(tmp), "."], cwd=RCONF_SRC, env=env,
                               capture_output=True, text=True, timeout=600)  # fmt: skip
        assert built.returncode == 0, built.stderr
        os.replace(tmp, binary)
    return binary
