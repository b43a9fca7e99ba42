"""hzcheck: the readiness probe. Ready iff the supervisor is alive and says ``active``.

K8STARS also counted ``deactivating`` as ready; a pod in prestop is on its way out, and Kubernetes takes terminating
pods out of Services anyway, so here only ``active`` is ready. The supervisor rewrites the state file on every check
(also during prestop), so a fresh file means a live supervisor.
"""

from __future__ import annotations

import time

from k8stars.tarscli.env import CHECK_STATUS_FILE, SUPERVISOR_PID_FILE, TarsEnv, read_text
from k8stars.tarscli.pidfile import live_pid

READ_TRIES = 10
READ_PAUSE = 0.05


def check(env: TarsEnv, report_interval: float) -> tuple[bool, str]:
    """(ready, message)."""
    path = env.data(CHECK_STATUS_FILE)
    try:
        mtime = path.stat().st_mtime
    except FileNotFoundError:
        return False, "not ready"
    if env.data(SUPERVISOR_PID_FILE).exists() and live_pid(env.data(SUPERVISOR_PID_FILE)) is None:
        return False, "supervisor not alive"
    if report_interval > 0 and time.time() - mtime > 2 * report_interval:
        return False, "supervisor not alive"
    state = ""
    for _ in range(READ_TRIES):
        state = (read_text(path) or "").strip()
        if state:
            break
        time.sleep(READ_PAUSE)
    if state == "active":
        return True, "active"
    return False, f"not active:{state}"
