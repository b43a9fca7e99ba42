"""The pod's environment as tarscli sees it: ``$TARS_PATH`` and its layout, the pod IP, durations.

Every value can come from the K8STARS environment variable or from the matching command-line flag; the flag wins.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from k8stars.tars.endpoint import local_ip

DEFAULT_TARS_PATH = "/tars"
DEFAULT_NAMESPACE = "tars-system"
DEFAULT_PORT_MIN = 13000
DEFAULT_PORT_MAX = 16000

META_FILE = "_server_meta.yaml"
# Set by the k8stars operator (and K8SFramework-style manifests): the meta file mounted from the TServer's ConfigMap,
# read instead of $TARS_PATH/bin/_server_meta.yaml.
SERVER_META_ENV = "TARS_SERVER_META"
SERVER_INFO_FILE = "server_info.yaml"
CHECK_STATUS_FILE = "check_status"
PRESTOP_FILE = "prestop"
STOP_FILE = "stop"
SUPERVISOR_PID_FILE = "supervisor.pid"
SERVICE_PID_FILE = "service.pid"

# Set by the supervisor for the service it starts, so that a `tarscli genconf` in start.sh reuses the supervisor's
# configuration (same ports, already registered) instead of allocating new ports.
SUPERVISOR_ENV = "TARSCLI_SUPERVISOR_PID"

_UNITS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"^\s*(-?\d+(?:\.\d+)?)(ns|us|ms|s|m|h|d)\s*$")


def parse_duration(text: str) -> float:
    """K8STARS durations in seconds: ``""``/``"0"`` = 0, else a number with ns/us/ms/s/m/h/d (d = 24 h).
    A bare number other than 0 is an error, as in K8STARS, because its unit would be a guess."""
    s = text.strip()
    if s in ("", "0"):
        return 0.0
    m = _DURATION.match(s)
    if m is None:
        raise ValueError(f"invalid duration {text!r} (use e.g. 500ms, 30s, 5m, 1h, 1d)")
    return float(m.group(1)) * _UNITS[m.group(2)]


def format_duration(seconds: float) -> str:
    if seconds == 0:
        return "0"
    for unit in ("d", "h", "m", "s"):
        n = seconds / _UNITS[unit]
        if n == int(n) and abs(n) >= 1:
            return f"{int(n)}{unit}"
    return f"{round(seconds * 1000)}ms"


@dataclass(frozen=True)
class TarsEnv:
    """Where things are: ``$TARS_PATH/{bin,conf,log,data}``, the pod IP and the port range."""

    tars_path: Path
    pod_ip: str
    namespace: str = DEFAULT_NAMESPACE
    port_min: int = DEFAULT_PORT_MIN
    port_max: int = DEFAULT_PORT_MAX

    @classmethod
    def create(
        cls,
        tars_path: str | None = None,
        pod_ip: str | None = None,
        namespace: str | None = None,
        port_min: int | None = None,
        port_max: int | None = None,
    ) -> TarsEnv:
        path = Path(tars_path or os.environ.get("TARS_PATH") or DEFAULT_TARS_PATH)
        lo = port_min if port_min is not None else DEFAULT_PORT_MIN
        hi = port_max if port_max is not None else DEFAULT_PORT_MAX
        if not 0 < lo <= hi <= 65535:
            raise ValueError(f"bad port range {lo}..{hi}")
        return cls(path, pod_ip or local_ip(), namespace or DEFAULT_NAMESPACE, lo, hi)

    @property
    def bin_dir(self) -> Path:
        return self.tars_path / "bin"

    @property
    def conf_dir(self) -> Path:
        return self.tars_path / "conf"

    @property
    def log_dir(self) -> Path:
        return self.tars_path / "log"

    @property
    def data_dir(self) -> Path:
        return self.tars_path / "data"

    @property
    def meta_path(self) -> Path:
        """``$TARS_SERVER_META`` when set (the operator mounts the TServer's meta there), else bin/_server_meta.yaml."""
        return Path(os.environ.get(SERVER_META_ENV) or self.bin_dir / META_FILE)

    def data(self, name: str) -> Path:
        return self.data_dir / name

    def make_dirs(self) -> None:
        for d in (self.bin_dir, self.conf_dir, self.log_dir, self.data_dir):
            d.mkdir(parents=True, exist_ok=True)


def write_atomic(path: Path, text: str, mode: int = 0o644) -> None:
    """Write a file so that readers (hzcheck, a second tarscli) see the old or the new content, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        return None
