"""supervisor: the pod's PID 1. Generates the config, runs the service, keeps the registry in sync with its health,
and takes the pod out of the registry before it stops.

States (``data/check_status``, read by ``tarscli hzcheck``): ``activating`` from each (re)start until the first
healthy check (or ``TARS_ACTIVATING_TIMEOUT``, then ``inactive``), ``active`` while healthy, ``inactive`` when not,
``deactivating`` from prestop on. Health is the service's ServerF heartbeats to our ``tars.tarsnode.ServerObj`` when
it sends them (TarsCpp, TarsGo, k8stars), else a TCP dial of its adapters and ``local``.

The registry is told on every state change and every ``TARS_REPORT_INTERVAL``; when it cannot be reached the service
keeps running, and the registration is sent again (onStartup, then the current state) as soon as it answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import logging.handlers
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from k8stars.tars.protocol.configf import ConfigInfo
from k8stars.tars.protocol.notifyf import NOTIFYLEVEL
from k8stars.tars.rpc import Server
from k8stars.tarscli import prestop
from k8stars.tarscli.env import (
    CHECK_STATUS_FILE,
    PRESTOP_FILE,
    SERVICE_PID_FILE,
    STOP_FILE,
    SUPERVISOR_ENV,
    SUPERVISOR_PID_FILE,
    TarsEnv,
    read_text,
    write_atomic,
)
from k8stars.tarscli.framework import Framework, FrameworkError
from k8stars.tarscli.genconf import GenconfOptions, genconf, previous_info
from k8stars.tarscli.launch import FOREGROUND, SERVER_TYPE_ENV, Launch, LaunchError, command, script_argv
from k8stars.tarscli.logs import print_tail, setup_logging
from k8stars.tarscli.meta import ServerInfo
from k8stars.tarscli.node import NODE_OBJ, Heartbeats, NodeServant
from k8stars.tarscli.nodeservant import NODE_SERVANT_OBJ, NODE_SERVANT_PORT, CallerGate, NodeImp, trusted_networks
from k8stars.tarscli.pidfile import live_pid, write_pid_file
from k8stars.tarscli.ports import PortAllocator, accepts
from k8stars.tarscli.proc import Child, reap_orphans, run_bounded, stop_group
from k8stars.tarscli.reporter import Reporter

log = logging.getLogger("tarscli")

ACTIVATING, ACTIVE, INACTIVE, DEACTIVATING = "activating", "active", "inactive", "deactivating"
FAST_TICK = 1.0  # check period while (re)starting, so that readiness follows the service within a second
DIAL_TIMEOUT = 0.3
STABLE_AFTER = 60.0  # a service that ran this long without crashing restarts with the initial backoff again


@dataclass
class SupervisorOptions:
    genconf: GenconfOptions = field(default_factory=GenconfOptions)
    start_path: str = ""  # default $TARS_PATH/bin/start.sh
    stop_path: str = ""
    report_interval: float = 30.0
    disable_flow: bool = False
    check_interval: float = 10.0
    before_check_script: str = ""
    check_script_timeout: float = 2.0
    prestop_wait: float = 80.0
    activating_timeout: float = 300.0
    check_retry_timeout: float = 5.0
    server_version: str = ""
    grace_period: float = 90.0
    heartbeat_timeout: float = 30.0
    restart_backoff: float = 1.0
    restart_backoff_max: float = 60.0
    node_port: int = NODE_SERVANT_PORT  # the node servant on the pod IP; 0: not served
    node_trusted_peers: str = ""  # besides the registered admin registries ("": loopback, "none": nobody)


class SupervisorError(RuntimeError):
    """The supervisor cannot start."""


class Supervisor:
    def __init__(self, env: TarsEnv, opts: SupervisorOptions) -> None:
        self.env = env
        self.opts = opts
        self.allocator = PortAllocator(env.port_min, env.port_max)
        self.state = ACTIVATING
        self.info: ServerInfo | None = None
        self.conf_path: Path | None = None
        self.fw: Framework | None = None
        self.beats = Heartbeats("", "")
        self.node_server = Server(grace_seconds=0.5)
        self.node_servant = Server(grace_seconds=0.5)
        self.held: bool | None = None  # stopped by a command: restart at once (True) or when released (False)
        self.resume = asyncio.Event()
        self.child: Child | None = None
        self.started_at = time.monotonic()
        self.restarts = 0
        self.backoff = opts.restart_backoff
        self.stale_ips: list[str] = []
        self.stopping = asyncio.Event()
        self.cut_wait = asyncio.Event()
        self.wake = asyncio.Event()
        self.prestop_task: asyncio.Task[None] | None = None
        self.registry_task: asyncio.Task[None] | None = None
        self.tasks: list[asyncio.Task[None]] = []
        self.local_seen = False
        self.server_type = ""  # K8SFramework's model: no start script, the server started by its type
        self.launch: Launch | None = None
        self.foreground = os.environ.get("LauncherType") == FOREGROUND
        self.exit_code = 0

    # -- lifecycle ------------------------------------------------------------------------------------------------
    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):  # first: a SIGTERM during startup still stops cleanly
            loop.add_signal_handler(sig, self._on_term, sig)
        loop.add_signal_handler(signal.SIGUSR1, self._start_prestop)
        self._claim()
        try:
            await self._prepare()
            await self._run_script("before-check script")
            await self._start_service()
            self.registry_task = asyncio.create_task(self._registry_loop())
            self.tasks += [asyncio.create_task(self._check_loop()), self.registry_task,
                           asyncio.create_task(self._watch_child())]  # fmt: skip
            self._notify(f"server version: {self._version() or 'unknown'}")
            await self.stopping.wait()
            await self._shutdown()
        finally:
            await self._cleanup()
        return self.exit_code

    def _claim(self) -> None:
        """One supervisor per TARS_PATH; a service left over by a supervisor that was killed is stopped first."""
        self.env.make_dirs()
        pid_file = self.env.data(SUPERVISOR_PID_FILE)
        other = live_pid(pid_file)
        if other is not None and other != os.getpid():
            raise SupervisorError(f"another supervisor (pid {other}) runs for {self.env.tars_path}")
        write_pid_file(pid_file, os.getpid())
        for name in (PRESTOP_FILE, CHECK_STATUS_FILE):
            with contextlib.suppress(FileNotFoundError):
                self.env.data(name).unlink()

    async def _prepare(self) -> None:
        stale = live_pid(self.env.data(SERVICE_PID_FILE))
        if stale is not None:
            log.warning("stopping the service (pid %d) left by a previous supervisor", stale)
            await stop_group(stale, prestop.KILL_GRACE)
        self._check_start_path()
        previous = previous_info(self.env)
        port = self.allocator.allocate("tcp -h 127.0.0.1 -p 0")
        node_ep = f"tcp -h 127.0.0.1 -p {port} -t 60000"
        self.info, self.conf_path = genconf(self.env, self.opts.genconf, self.allocator, node=f"{NODE_OBJ}@{node_ep}")
        conf = self.info.conf
        if self.server_type:
            try:
                self.launch = command(self.server_type, self.env.bin_dir, self.info.build_server or conf.server,
                                      self.conf_path.absolute(), os.environ)  # fmt: skip
            except LaunchError as e:
                raise SupervisorError(str(e)) from None
        self.beats = Heartbeats(conf.application, conf.server)
        self.node_server.add_servant(NodeServant(self.beats), NODE_OBJ, node_ep)
        await self.node_server.start()
        self.fw = Framework(self.info, self.env.data_dir)
        await self._serve_node_servant()
        if previous and previous.conf.name == conf.name and previous.local_ip != self.info.local_ip:
            log.info("pod IP changed from %s to %s: the old endpoint will be deregistered", previous.local_ip,
                     self.info.local_ip)  # fmt: skip
            self.stale_ips.append(previous.local_ip)
        eps = ", ".join(f"{a.object} {a.endpoint}" for a in conf.adapters)
        log.info("supervising %s on %s: %s; local %s; node %s; config %s", conf.name, self.info.local_ip, eps,
                 conf.local, node_ep, self.conf_path)  # fmt: skip
        self._set_state(ACTIVATING)

    async def _serve_node_servant(self) -> None:
        """``tars.tarsnode.NodeObj`` on the pod IP; a port already taken (another agent on this IP, outside a pod)
        leaves the server without it rather than stopping it."""
        assert self.info is not None
        if not self.opts.node_port:
            return
        gate = CallerGate(trusted_networks(self.opts.node_trusted_peers), self.fw)
        servant = NodeImp(self.info.conf.application, self.info.conf.server, self, gate)
        endpoint = f"tcp -h {self.info.local_ip} -p {self.opts.node_port} -t 60000"
        self.node_servant.add_servant(servant, NODE_SERVANT_OBJ, endpoint)
        try:
            await self.node_servant.start()
            log.info("node servant %s@%s", NODE_SERVANT_OBJ, endpoint)
        except OSError as e:
            log.warning("node servant not served on %s: %s", endpoint, e)

    def _check_start_path(self) -> None:
        start = self.opts.start_path or str(self.env.bin_dir / "start.sh")
        if not self.opts.start_path and os.environ.get(SERVER_TYPE_ENV) and not Path(start).exists():
            self.server_type = os.environ[SERVER_TYPE_ENV]
            return
        self.opts.start_path = start
        if " " not in start.strip() and not Path(start).exists():
            raise SupervisorError(f"start script {start} does not exist (set TARS_START_PATH or --start-path)")

    def _on_term(self, sig: int) -> None:
        if self.stopping.is_set():
            log.info("%s again: cutting the prestop wait short", signal.Signals(sig).name)
            self.cut_wait.set()
            return
        log.info("%s: stopping", signal.Signals(sig).name)
        self.stopping.set()

    async def _shutdown(self) -> None:
        if self.prestop_task is None and not prestop.has_run(self.env):
            self._start_prestop()
        if self.prestop_task is not None:
            await self.prestop_task
        await self._stop_service()

    async def _cleanup(self) -> None:
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.child is not None and self.child.running:
            await stop_group(self.child.pid, prestop.KILL_GRACE)
        await self.node_server.stop(0)
        await self.node_servant.stop(0)
        if self.fw is not None:
            await self.fw.close()
        self.allocator.release()
        if live_pid(self.env.data(SUPERVISOR_PID_FILE)) == os.getpid():
            self.env.data(SUPERVISOR_PID_FILE).unlink()

    # -- the service ----------------------------------------------------------------------------------------------
    def _service_env(self) -> dict[str, str]:
        """What start.sh needs to find what we generated, even when we were configured by flags."""
        assert self.info is not None and self.conf_path is not None
        env = dict(os.environ)
        env.update(TARS_PATH=str(self.env.tars_path.absolute()), POD_IP=self.info.local_ip,
                   TARS_CONFIG=str(self.conf_path.absolute()), TARS_NAMESPACE=self.env.namespace,
                   TARS_APPLICATION=self.info.conf.application, TARS_SERVER=self.info.conf.server,
                   TARS_BUILD_SERVER=self.info.build_server or self.info.conf.server)  # fmt: skip
        env[SUPERVISOR_ENV] = str(os.getpid())
        if self.opts.genconf.merge_conf:
            env["TARS_MERGE_CONF"] = self.opts.genconf.merge_conf
        if self.opts.server_version:
            env["SERVER_VERSION"] = self.opts.server_version
        return env

    async def _start_service(self) -> None:
        self.beats.reset()
        self.local_seen = False
        argv = self.launch.argv if self.launch else script_argv(self.opts.start_path)
        env = {**self._service_env(), **(self.launch.env if self.launch else {})}
        output = sys.stdout.fileno() if self.foreground else self.env.log_dir / "start.log"
        self.child = Child(argv, cwd=self.env.tars_path, env=env, output=output)
        write_pid_file(self.env.data(SERVICE_PID_FILE), self.child.pid)
        self.started_at = time.monotonic()
        log.info("started %s (pid %d)", " ".join(argv), self.child.pid)
        self._set_state(ACTIVATING)

    async def _stop_service(self) -> None:
        """AdminF.shutdown first (a TARS server drains its calls), then SIGTERM/SIGKILL of its process group."""
        child = self.child
        if child is None or not child.running:
            return
        assert self.fw is not None and self.info is not None
        grace = self.info.conf.deactivating_timeout / 1000
        try:
            await self.fw.admin(1000).shutdown()
        except Exception as e:  # no AdminObj (e.g. @tars/rpc): SIGTERM is its shutdown request
            log.debug("AdminObj shutdown: %s; sending SIGTERM", e)
            await stop_group(child.pid, grace + prestop.KILL_GRACE)
        if not await child.wait_for(grace):
            log.info("service still running %.1f s after shutdown: SIGTERM", grace)
            await stop_group(child.pid, prestop.KILL_GRACE)
        await child.wait_for(1.0)
        log.info("service stopped (exit code %s)", child.returncode)

    # -- commands of the node servant (nodeservant.Supervised) -------------------------------------------------------
    def service_running(self) -> bool:
        return self.child is not None and self.child.running

    def deactivating(self) -> bool:
        return self.stopping.is_set() or self._deactivating()

    async def stop_service(self) -> None:
        await self._stop_service()

    def hold(self, restart: bool) -> None:
        self.held = restart
        self.resume.clear()

    def release(self) -> None:
        """Start the service now: held by a stop, or waiting out a crash backoff or ``data/stop``."""
        if self.held is False:
            self.held = True
        with contextlib.suppress(FileNotFoundError):
            self.env.data(STOP_FILE).unlink()
        self.resume.set()

    def config_target(self) -> tuple[ConfigInfo, str, Path]:
        assert self.info is not None
        c = self.info.conf
        info = ConfigInfo(appname=c.application, servername=c.server, host=self.info.local_ip)
        return info, c.configObj, self.env.bin_dir

    async def _held_exit(self) -> None:
        """The service exited on a command: no crash, no backoff; started again at once or once released."""
        if self.state != DEACTIVATING:
            self._set_state(INACTIVE)
        log.info("service stopped on request%s", "" if self.held else "; held until started")
        while not self.held and not self.stopping.is_set():
            await self._sleep_unless_resumed(1.0)
        self.held = None

    async def _watch_child(self) -> None:
        while True:
            child = self.child
            assert child is not None
            code = await child.wait()
            if self.stopping.is_set() or self.prestop_task is not None:
                return
            if self.held is not None:
                await self._held_exit()
                if self.stopping.is_set() or self.prestop_task is not None:
                    return
                await self._run_stop_command(child)
                await self._start_service()
                continue
            if self.foreground:  # the server is the container's work: its exit is the container's
                log.warning("service exited (code %s), launcherType foreground: the supervisor exits too", code)
                self.exit_code = code if code > 0 else 1 if code else 0
                self.cut_wait.set()
                self.stopping.set()
                return
            uptime = time.monotonic() - child.started
            print_tail(self.env.log_dir / "start.log")
            if self.state != DEACTIVATING:
                self._set_state(INACTIVE)
            if uptime >= STABLE_AFTER:
                self.backoff = self.opts.restart_backoff
            delay = self.backoff
            self.backoff = min(self.backoff * 2, self.opts.restart_backoff_max)
            kind = "[alarm] down, server is inactive" if uptime > self.opts.activating_timeout else "[warn] server down"
            self.restarts += 1
            message = f"{kind} (exit code {code} after {uptime:.0f} s); restart #{self.restarts} in {delay:g} s"
            log.warning("%s", message)
            self._notify(message, NOTIFYLEVEL.NOTIFYERROR)
            self.resume.clear()
            await self._sleep_unless_resumed(delay)  # a start command cuts the backoff short
            while self.env.data(STOP_FILE).exists() and not self.stopping.is_set() and not self.resume.is_set():
                log.info("%s exists: not restarting", self.env.data(STOP_FILE))
                await self._sleep_unless_resumed(self.opts.check_interval)
            if self.held is False:  # stopped by a command during the backoff
                await self._held_exit()
            if self.stopping.is_set() or self.prestop_task is not None:
                return
            await self._run_stop_command(child)
            await self._start_service()

    async def _run_stop_command(self, old: Child) -> None:
        if self.opts.stop_path:
            await run_bounded(script_argv(self.opts.stop_path), cwd=self.env.tars_path, env=self._service_env(),
                              output=self.env.log_dir / "stop.log", timeout=10.0, kill_grace=1.0)  # fmt: skip
        await stop_group(old.pid, prestop.KILL_GRACE)  # what is left of its process group

    async def _sleep_unless_stopping(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), seconds)

    async def _sleep_unless_resumed(self, seconds: float) -> None:
        """Sleep until ``seconds`` pass, a stop, or a start command (``resume``)."""
        waits = [asyncio.ensure_future(self.stopping.wait()), asyncio.ensure_future(self.resume.wait())]
        await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        for w in waits:
            w.cancel()

    async def _run_script(self, what: str) -> bool:
        """Run TARS_BEFORE_CHECK_SCRIPT to completion, killing it (and its children) at its timeout."""
        script = self.opts.before_check_script
        if not script:
            return True
        code = await run_bounded(script_argv(script), cwd=self.env.tars_path, env=self._service_env(),
                                 output=self.env.log_dir / "before_check.log", timeout=self.opts.check_script_timeout,
                                 kill_grace=0.5)  # fmt: skip
        if code is None:
            log.warning("%s still running after %.1f s: killed", what, self.opts.check_script_timeout)
        elif code:
            log.debug("%s exited %s", what, code)
        return code == 0

    # -- health -----------------------------------------------------------------------------------------------------
    def _deactivating(self) -> bool:
        """Our prestop, or a prestop hook that did not reach us (the state file says so)."""
        if self.prestop_task is not None or self.state == DEACTIVATING:
            return True
        if (read_text(self.env.data(CHECK_STATUS_FILE)) or "").strip() == DEACTIVATING:
            log.info("check_status says deactivating (prestop ran outside the supervisor)")
            self.state = DEACTIVATING
            return True
        return False

    def _set_state(self, state: str) -> None:
        """Write the state file (each check, so that hzcheck sees the supervisor alive) and wake the reporter."""
        write_atomic(self.env.data(CHECK_STATUS_FILE), state)
        if state != self.state:
            log.info("state %s -> %s", self.state, state)
            self.state = state
            self.wake.set()

    async def _check_loop(self) -> None:
        while True:
            tick = FAST_TICK if self.state != ACTIVE else min(self.opts.check_interval, self.opts.report_interval)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.beats.changed.wait(), tick)
            self.beats.changed.clear()
            reap_orphans()
            if self._deactivating():
                write_atomic(self.env.data(CHECK_STATUS_FILE), DEACTIVATING)
                continue
            if self.child is None or not self.child.running:
                self._set_state(self.state)
                continue
            await self._run_script("before-check script")
            self._decide(await self._healthy())

    def _decide(self, healthy: bool) -> None:
        if self._deactivating():
            return
        if healthy:
            self._set_state(ACTIVE)
        elif self.state == ACTIVATING and time.monotonic() - self.started_at > self.opts.activating_timeout:
            message = f"[alarm] still activating after {self.opts.activating_timeout:.0f} s: inactive"
            log.warning("%s", message)
            self._notify(message, NOTIFYLEVEL.NOTIFYERROR)
            self._set_state(INACTIVE)
        elif self.state == ACTIVATING:
            self._set_state(ACTIVATING)
        else:
            self._set_state(INACTIVE)

    async def _healthy(self) -> bool:
        if self.beats.seen:
            return self.beats.healthy(self.opts.heartbeat_timeout)
        # no heartbeats (e.g. a Node.js or Java service): every endpoint must accept a connection; an active service
        # gets a few tries so that one slow accept does not flap it
        deadline = time.monotonic() + (self.opts.check_retry_timeout if self.state == ACTIVE else 0)
        while True:
            if await self._dial_all():
                return True
            if time.monotonic() + 1.0 > deadline or self.child is None or not self.child.running:
                return False
            await asyncio.sleep(1.0)

    async def _dial_all(self) -> bool:
        """Every adapter must accept a connection. ``local`` (AdminObj) too once it has been seen up: some
        frameworks (@tars/rpc) leave AdminObj to their own node agent and never listen there."""
        assert self.info is not None
        texts = [a.endpoint for a in self.info.conf.adapters]
        *adapters, local = await asyncio.gather(*(accepts(t, DIAL_TIMEOUT) for t in [*texts, self.info.conf.local]))
        if local and not self.local_seen:
            self.local_seen = True
        return all(adapters) and (local or not self.local_seen)

    # -- registry ---------------------------------------------------------------------------------------------------
    def _version(self) -> str:
        return self.opts.server_version or self.beats.version

    async def _registry_loop(self) -> None:
        assert self.fw is not None and self.info is not None
        opts = self.opts
        reporter = Reporter(self.fw, self.info.conf.name, opts.report_interval, opts.disable_flow, lambda: self.state,
                            self._version, self._deactivating, self.wake, self.stale_ips)  # fmt: skip
        await reporter.run()

    def _start_prestop(self) -> None:
        """SIGUSR1 (from `tarscli prestop`, the preStop hook) or SIGTERM: stop reporting, then the prestop sequence."""
        if self.prestop_task is not None or self.fw is None or self.info is None:
            return
        if self.registry_task is not None:
            self.registry_task.cancel()  # nothing may re-register the pod after its onPrestop
        self.state = DEACTIVATING
        timing = prestop.Timing(self.opts.grace_period, self.opts.prestop_wait,
                                self.info.conf.deactivating_timeout / 1000)  # fmt: skip
        if timing.wait < self.opts.prestop_wait:
            log.warning("prestop wait cut from %.0f s to %.0f s to fit the %.0f s grace period",
                        self.opts.prestop_wait, timing.wait, self.opts.grace_period)  # fmt: skip
        self.prestop_task = asyncio.create_task(prestop.run(self.env, self.info, self.fw, timing, self.cut_wait))

    def _notify(self, message: str, level: NOTIFYLEVEL = NOTIFYLEVEL.NOTIFYNORMAL) -> None:
        """Report to tarsnotify in the background (a few tries): never delays starting or restarting the service."""

        async def send() -> None:
            assert self.fw is not None
            for attempt in range(3):
                try:
                    await self.fw.report(message, level)
                    return
                except FrameworkError as e:
                    log.debug("notify (try %d): %s", attempt + 1, e)
                await asyncio.sleep(2.0)

        task = asyncio.create_task(send())
        self.tasks.append(task)
        task.add_done_callback(lambda t: self.tasks.remove(t) if t in self.tasks else None)


async def supervise(env: TarsEnv, opts: SupervisorOptions) -> int:
    setup_logging(env, "supervisor.log", to_stderr=True)
    return await Supervisor(env, opts).run()
