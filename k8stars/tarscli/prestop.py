"""prestop: take the pod out of the registry before it stops, within the pod's termination grace period.

Kubernetes gives a terminating pod ``terminationGracePeriodSeconds`` for everything: the preStop hook, then SIGTERM
and the service's own shutdown. K8STARS spent 1 s + 80 s of waiting + registry retries of up to 100 s per call, which
can overrun a 90 s grace period and get the service SIGKILLed mid-request. Here each call has a short timeout and
the wait is cut so that the whole sequence fits:

    deactivating keepAlive + AdminF.notify("prestop") + wait + onPrestop + stopping the service  <  grace period
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from dataclasses import dataclass

from k8stars.tarscli.env import CHECK_STATUS_FILE, PRESTOP_FILE, SUPERVISOR_PID_FILE, TarsEnv, read_text, write_atomic
from k8stars.tarscli.framework import Framework, FrameworkError
from k8stars.tarscli.meta import ServerInfo
from k8stars.tarscli.pidfile import live_pid

log = logging.getLogger("tarscli")

DEACTIVATING = "deactivating"
REGISTRY_CALL_BUDGET = 3.0  # a lookup (1 s) and a call (2 s)
ADMIN_NOTIFY_TIMEOUT = 1.0
KILL_GRACE = 2.0  # after the service's deactivating-timeout, SIGTERM then SIGKILL
MARGIN = 2.0


@dataclass(frozen=True)
class Timing:
    grace: float  # the pod's terminationGracePeriodSeconds
    prestop_wait: float  # TARS_PRESTOP_WAITTIME: how long clients get to drop the endpoint
    service_stop: float  # the service's deactivating-timeout

    @property
    def stop_budget(self) -> float:
        return self.service_stop + KILL_GRACE

    @property
    def wait(self) -> float:
        """The prestop wait actually used: TARS_PRESTOP_WAITTIME, cut to what the grace period leaves."""
        reserve = 2 * REGISTRY_CALL_BUDGET + ADMIN_NOTIFY_TIMEOUT + self.stop_budget + MARGIN
        return max(0.0, min(self.prestop_wait, self.grace - reserve))

    @property
    def total(self) -> float:
        """The longest a prestop can take, its wait included."""
        return 2 * REGISTRY_CALL_BUDGET + ADMIN_NOTIFY_TIMEOUT + self.wait


async def _sleep(seconds: float, cancel: asyncio.Event | None) -> None:
    if cancel is None:
        await asyncio.sleep(seconds)
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(cancel.wait(), seconds)


async def run(env: TarsEnv, info: ServerInfo, fw: Framework, timing: Timing,
              cancel: asyncio.Event | None = None) -> None:  # fmt: skip
    """The prestop sequence; RPC errors are logged, never raised. ``cancel`` cuts the wait short."""
    write_atomic(env.data(PRESTOP_FILE), "running\n")
    write_atomic(env.data(CHECK_STATUS_FILE), DEACTIVATING)
    told = True
    try:
        await fw.keep_alive(DEACTIVATING)
    except FrameworkError as e:
        told = False
        log.warning("prestop: %s", e)
    try:
        await fw.admin(round(ADMIN_NOTIFY_TIMEOUT * 1000)).notify("prestop")
    except Exception as e:  # the service may have no AdminObj; it is only told, nothing depends on it
        log.debug("prestop: AdminObj notify: %s", e)
    if told:
        log.info("prestop: deactivating; waiting %.1f s for clients to drop the endpoint", timing.wait)
        await _sleep(timing.wait, cancel)
    else:
        log.warning("prestop: the registry was not told; not waiting")
    try:
        await fw.on_prestop()
        log.info("prestop: deregistered %s from %s", info.conf.name, info.local_ip)
    except FrameworkError as e:
        log.warning("prestop: %s", e)
    write_atomic(env.data(PRESTOP_FILE), "done\n")


def has_run(env: TarsEnv) -> bool:
    return env.data(PRESTOP_FILE).exists()


async def command(env: TarsEnv, timing: Timing) -> str:
    """``tarscli prestop`` (the preStop hook). With a live supervisor, the supervisor runs the sequence (so that it
    stops its own heartbeats first and nothing re-registers the pod) and this waits for it to finish."""
    if has_run(env):
        return "Prestop has run before"
    supervisor = live_pid(env.data(SUPERVISOR_PID_FILE))
    if supervisor is not None and supervisor != os.getpid():
        os.kill(supervisor, signal.SIGUSR1)
        deadline = time.monotonic() + timing.total + 5
        while time.monotonic() < deadline:
            if (read_text(env.data(PRESTOP_FILE)) or "").strip() == "done":
                return "prestop done by the supervisor"
            if live_pid(env.data(SUPERVISOR_PID_FILE)) is None:
                break
            await asyncio.sleep(0.2)
        return "the supervisor did not finish prestop in time"
    info = ServerInfo.load(env.data("server_info.yaml"))
    fw = Framework(info, env.data_dir)
    try:
        await run(env, info, fw, timing)
    finally:
        await fw.close()
    return "prestop done"
