"""The agent's own log files (rotated, under the server's log dir) and the tail of the service's start.log."""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path

from k8stars.tarscli.env import TarsEnv

TAIL_BYTES = 64 * 1024


def setup_logging(env: TarsEnv, name: str, to_stderr: bool) -> None:
    root = logging.getLogger("tarscli")
    root.setLevel(logging.DEBUG)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s")
    try:
        env.log_dir.mkdir(parents=True, exist_ok=True)
        fh = logging.handlers.RotatingFileHandler(env.log_dir / name, maxBytes=10 << 20, backupCount=5)
        fh.setFormatter(fmt)
        root.addHandler(fh)
    except OSError as e:
        print(f"tarscli: cannot log to {env.log_dir}: {e}", file=sys.stderr)
    if to_stderr:
        sh = logging.StreamHandler(sys.stderr)
        sh.setFormatter(fmt)
        sh.setLevel(logging.INFO)
        root.addHandler(sh)


def print_tail(path: Path) -> None:
    """The end of the service's start.log on our stdout, so that `kubectl logs` shows why the service died."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, path.stat().st_size - TAIL_BYTES))
            tail = f.read()
    except OSError:
        return
    sys.stdout.buffer.write(b"---- last lines of start.log ----\n" + tail + b"\n---- end ----\n")
    sys.stdout.flush()
