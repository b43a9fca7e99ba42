"""The web console in ``k8stars up``, when a Kubernetes API is given (``--kubeconfig`` and ``--namespace``).

The console shows and changes Kubernetes objects (TServers, pods, TConfigs, TAccounts): ``k8stars up`` has none of
its own, so without a kubeconfig it starts no console (a second, registry-only console would be a second way to do
each thing). With one, ``k8stars web`` runs on 127.0.0.1 over that namespace, its monitoring page reading the local
query services through the local registry and its logs page the local log service's files; its session key is a
file under the data directory (no Secret needed).
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from k8stars.tarscli.proc import Child, stop_group

START_TIMEOUT = 30.0


@dataclass(frozen=True)
class ConsoleOptions:
    kubeconfig: str
    namespace: str
    port: int = 8080


async def _answering(port: int, child: Child, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not child.running:
            raise RuntimeError(f"the web console exited ({child.returncode})")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.2)
            continue
        writer.close()
        return
    raise RuntimeError(f"the web console does not answer on 127.0.0.1:{port} after {timeout:.0f} s")


async def start_console(opts: ConsoleOptions, data_dir: Path, locator: str, log_url: str, env: dict[str, str],
                        log_token_file: Path) -> Child:  # fmt: skip
    """``k8stars web`` for ``opts``, answering; RuntimeError (with its log's path) when it cannot start.
    ``log_url``, ``log_token_file``: the log service's files view and the bearer token it asks for."""
    web_dir = data_dir / "web"
    web_dir.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "k8stars", "web", "--host", "127.0.0.1", "--port", str(opts.port),
            "--namespace", opts.namespace, "--kubeconfig", opts.kubeconfig, "--key-file", str(web_dir / "session.key"),
            "--locator", locator, "--log-url", log_url, "--log-token-file", str(log_token_file)]  # fmt: skip
    child = Child(argv, cwd=web_dir, env=env, output=web_dir / "web.log")
    try:
        await _answering(opts.port, child, START_TIMEOUT)
    except RuntimeError as e:
        if child.running:  # started but not answering: it is not left behind
            await stop_group(child.pid, 1.0)
            await child.wait_for(2.0)
        raise RuntimeError(f"{e}; see {web_dir / 'web.log'}") from None
    return child
