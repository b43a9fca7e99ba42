"""Starting a server by its ``ServerType``, as K8SFramework's base images do: the release image is a base + ``ENV
ServerType=<type>`` + the package under ``/usr/local/server/bin`` (= ``$TARS_PATH/bin``; our base images set
``TARS_PATH=/usr/local/server``), with no start script. The supervisor uses this when no start path is given and
``bin/start.sh`` does not exist.

| ServerType | command (in ``$TARS_PATH``, ``TARS_CONFIG`` = the config in the environment too) |
|---|---|
| ``cpp``, ``go``, ``nodejs-pkg`` | ``bin/<server> --config=<conf>`` (``LD_LIBRARY_PATH=bin:bin/lib``) |
| ``nodejs`` | ``node $NODE_AGENT_BIN bin/ -c <conf>`` when the image names a node agent, else ``node bin/<main>`` (the
  package.json ``main``, else ``index.js``) |
| ``python`` | ``python3 bin/<server>.py --config=<conf>`` (else ``bin/main.py``) |
| ``java-jar`` | ``java -Dconfig=<conf> -jar bin/<server>.jar`` |

``LauncherType`` (the TServer's ``k8s.launcherType``, from the pod's work dir): ``background`` (the default) - the
supervisor restarts a server that exits, its output in ``log/start.log``; ``foreground`` - the server is the
container's work: its output goes to the container's, and its exit ends the supervisor with its exit code (the
kubelet restarts the container).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

SERVER_TYPE_ENV = "ServerType"
FOREGROUND = "foreground"
BINARY_TYPES = ("cpp", "go", "nodejs-pkg")
TYPES = (*BINARY_TYPES, "nodejs", "python", "java-jar")


class LaunchError(ValueError):
    """The server cannot be started by its type (unknown type, program missing)."""


@dataclass
class Launch:
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)


def script_argv(command: str) -> list[str]:
    """A start/stop/check script is executed directly (no extra shell between the supervisor and the service, so
    that signals reach it), or by sh when it lacks its execute bit; anything else is a command line for ``sh -c``,
    as in K8STARS."""
    path = Path(command.strip())
    if " " not in command.strip() and path.is_file():
        return [str(path)] if os.access(path, os.X_OK) else ["/bin/sh", str(path)]
    return ["/bin/sh", "-c", command]


def _tool(name: str, environ: Mapping[str, str]) -> str:
    found = shutil.which(name, path=environ.get("PATH") or os.defpath)
    if found is None:
        raise LaunchError(f"ServerType needs `{name}` on PATH, and this image has none (use the matching base image)")
    return found


def _node_main(bin_dir: Path) -> Path:
    try:
        main = json.loads((bin_dir / "package.json").read_text()).get("main") or "index.js"
    except (OSError, ValueError, AttributeError):
        main = "index.js"
    return bin_dir / str(main)


def command(server_type: str, bin_dir: Path, server: str, conf: Path, environ: Mapping[str, str]) -> Launch:
    """How to start ``server`` of ``server_type`` from ``bin_dir`` with the config ``conf``."""
    config = f"--config={conf}"
    if server_type in BINARY_TYPES:
        program = bin_dir / server
        if not program.is_file():
            raise LaunchError(f"ServerType {server_type}: {program} does not exist (the package's program is named "
                              "like the server)")  # fmt: skip
        if not os.access(program, os.X_OK):
            program.chmod(program.stat().st_mode | 0o111)  # K8SFramework's start.sh does chmod +x too
        libs = f"{bin_dir}:{bin_dir / 'lib'}"
        if environ.get("LD_LIBRARY_PATH"):
            libs += f":{environ['LD_LIBRARY_PATH']}"
        return Launch([str(program), config], {"LD_LIBRARY_PATH": libs})
    if server_type == "nodejs":
        node = _tool("node", environ)
        if environ.get("NODE_AGENT_BIN"):
            return Launch([node, environ["NODE_AGENT_BIN"], f"{bin_dir}/", "-c", str(conf)])
        return Launch([node, str(_node_main(bin_dir))])
    if server_type == "python":
        script = next((p for p in (bin_dir / f"{server}.py", bin_dir / "main.py") if p.is_file()), None)
        if script is None:
            raise LaunchError(f"ServerType python: neither {bin_dir / server}.py nor {bin_dir}/main.py exists")
        return Launch([_tool("python3", environ), str(script), config])
    if server_type == "java-jar":
        return Launch([_tool("java", environ), f"-Dconfig={conf}", "-jar", str(bin_dir / f"{server}.jar")])
    raise LaunchError(f"ServerType {server_type!r} is not one this agent starts ({', '.join(TYPES)}); give a start "
                      "script (bin/start.sh or TARS_START_PATH)")  # fmt: skip
