"""Real TARS peers for interop tests and benchmarks: @tars/rpc (Node) and TarsGo (Go).

The peer programs live next to this file (``node/`` and ``go/``); this module installs or
builds them once into a cache directory and hands out command lines:

* :func:`node_dir` - ``npm ci`` of ``node/package-lock.json`` into
  ``<cache>/node-<hash>/`` plus a copy of the scripts in ``<cache>/node-<hash>/s-<hash>/``
  (the returned directory; Node finds ``node_modules`` in its parent).
* :func:`go_binary` - ``go generate`` + ``go build`` of ``go/`` into
  ``<cache>/go-<hash of sources>/tarspeer``.
* :func:`node_script`, :func:`peer_command` - argv prefixes (``node_script("fake_registry")``
  is a static QueryObj for exercising ``--locator``).
* :func:`run_codec` / :func:`run_codec_async` - one ``encode|decode|bench`` round trip.

``<cache>`` is ``$K8STARS_PEERS_CACHE`` or ``~/.cache/k8stars/peers``. Builds are guarded
by a file lock (several pytest workers may ask at once) and land by an atomic rename, so
an interrupted build never leaves a half-made peer behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Literal

from k8stars.paths import cache_home, file_lock

__all__ = [
    "GO_SRC",
    "NODE_SRC",
    "Peer",
    "PeerBuildError",
    "PeerError",
    "cache_root",
    "go_binary",
    "node_dir",
    "node_script",
    "peer_command",
    "run_codec",
    "run_codec_async",
]

Peer = Literal["node", "go"]
CodecCommand = Literal["encode", "decode", "bench"]
Program = Literal["codec", "echo-server", "echo-client"]

HERE = Path(__file__).resolve().parent
NODE_SRC = HERE / "node"
GO_SRC = HERE / "go"

NODE_SCRIPTS = ("codec.js", "echo_common.js", "echo_server.js", "echo_client.js", "fake_registry.js", "bcrypt_check.js")
_NODE_PROGRAMS = {"codec": "codec.js", "echo-server": "echo_server.js", "echo-client": "echo_client.js"}

NPM_TIMEOUT_S = 600.0
GO_BUILD_TIMEOUT_S = 1500.0


class PeerBuildError(RuntimeError):
    """A peer could not be installed or built (tool missing, registry down, compile error)."""


class PeerError(RuntimeError):
    """A peer program failed (nonzero exit, bad output, timeout)."""


def cache_root() -> Path:
    env = os.environ.get("K8STARS_PEERS_CACHE")
    root = Path(env) if env else cache_home() / "peers"
    root.mkdir(parents=True, exist_ok=True)
    return root


def _hash_files(files: list[Path], base: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(files):
        h.update(str(f.relative_to(base)).encode() + b"\0")
        h.update(f.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def _locked(name: str) -> contextlib.AbstractContextManager[None]:
    return file_lock(cache_root() / f".{name}.lock")


def _require_tool(tool: str, hint: str) -> str:
    exe = shutil.which(tool)
    if exe is None:
        raise PeerBuildError(f"`{tool}` not found on PATH: {hint}")
    return exe


def _nice() -> list[str]:
    exe = shutil.which("nice")
    return [exe, "-n", "10"] if exe else []


def _run_build(argv: list[str], cwd: Path, env: dict[str, str], timeout: float, what: str) -> None:
    try:
        proc = subprocess.run(
            argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired as e:
        raise PeerBuildError(f"{what}: `{' '.join(argv)}` timed out after {timeout:.0f}s") from e
    if proc.returncode != 0:
        tail = (proc.stderr.strip() or proc.stdout.strip())[-4000:]
        raise PeerBuildError(f"{what}: `{' '.join(argv)}` exited {proc.returncode} in {cwd}:\n{tail}")


# --------------------------------------------------------------------------- Node


def _node_modules_dir() -> Path:
    """``npm ci`` once per package-lock into ``<cache>/node-<hash>``."""
    lock = NODE_SRC / "package-lock.json"
    manifest = NODE_SRC / "package.json"
    final = cache_root() / f"node-{_hash_files([manifest, lock], NODE_SRC)}"
    if (final / "node_modules" / "@tars" / "rpc").is_dir():
        return final
    with _locked("node"):
        if (final / "node_modules" / "@tars" / "rpc").is_dir():
            return final
        _require_tool("node", "install Node.js >= 18 (Debian: apt-get install nodejs npm)")
        npm = _require_tool("npm", "install npm (Debian: apt-get install npm)")
        tmp = Path(tempfile.mkdtemp(prefix="tmp-node-", dir=cache_root()))
        tmp.chmod(0o755)
        try:
            shutil.copy2(manifest, tmp / "package.json")
            shutil.copy2(lock, tmp / "package-lock.json")
            env = dict(
                os.environ,
                npm_config_update_notifier="false",
                npm_config_fund="false",
                npm_config_audit="false",
            )
            _run_build(
                [npm, "ci", "--no-audit", "--no-fund"],
                tmp,
                env,
                NPM_TIMEOUT_S,
                "installing the Node peer (@tars/rpc, @tars/stream) from the npm registry",
            )
            if final.exists():
                shutil.rmtree(final)
            os.rename(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def node_dir() -> Path:
    """Directory holding the Node peer scripts, runnable as ``node codec.js`` etc."""
    modules = _node_modules_dir()
    scripts = [NODE_SRC / s for s in NODE_SCRIPTS]
    final = modules / f"s-{_hash_files(scripts, NODE_SRC)}"
    if all((final / s).is_file() for s in NODE_SCRIPTS):
        return final
    with _locked("node"):
        if all((final / s).is_file() for s in NODE_SCRIPTS):
            return final
        tmp = Path(tempfile.mkdtemp(prefix="tmp-s-", dir=modules))
        tmp.chmod(0o755)
        try:
            for s in scripts:
                shutil.copy2(s, tmp / s.name)
            if final.exists():
                shutil.rmtree(final)
            os.rename(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def node_script(name: str) -> list[str]:
    """argv prefix running one Node peer script, e.g. ``node_script("codec.js") + ["encode"]``."""
    if not name.endswith(".js"):
        name += ".js"
    if name not in NODE_SCRIPTS:
        raise ValueError(f"unknown Node peer script {name!r}; have {', '.join(NODE_SCRIPTS)}")
    node = _require_tool("node", "install Node.js >= 18 (Debian: apt-get install nodejs npm)")
    # --no-warnings: @tars/rpc trips Node's circular-require warning on every start.
    return [node, "--no-warnings", str(node_dir() / name)]


# --------------------------------------------------------------------------- Go


def _go_sources() -> list[Path]:
    files = [GO_SRC / "go.mod", GO_SRC / "go.sum", GO_SRC / "echo.tars"]
    files += [p for p in GO_SRC.glob("*.go") if not p.name.endswith("_test.go")]
    return files


def go_binary() -> Path:
    """Path of the built ``tarspeer`` binary (TarsGo peer), building it on first use."""
    sources = _go_sources()
    final = cache_root() / f"go-{_hash_files(sources, GO_SRC)}"
    binary = final / "tarspeer"
    if binary.is_file():
        return binary
    with _locked("go"):
        if binary.is_file():
            return binary
        go = _require_tool("go", "install Go >= 1.24 (the TarsGo peer is built from the Go module proxy)")
        tmp = Path(tempfile.mkdtemp(prefix="tmp-go-", dir=cache_root()))
        try:
            src = tmp / "src"
            src.mkdir()
            for f in sources:
                shutil.copy2(f, src / f.name)
            env = dict(os.environ, CGO_ENABLED="0", GOTOOLCHAIN="local")
            what = "building the TarsGo peer (tarspeer)"
            # tars2go (pinned as a go tool in go.mod) writes gen/Test/Echo.tars.go.
            _run_build([*_nice(), go, "generate", "."], src, env, GO_BUILD_TIMEOUT_S, what)
            out = tmp / "out"
            out.mkdir()
            _run_build(
                [*_nice(), go, "build", "-trimpath", "-o", str(out / "tarspeer"), "."],
                src,
                env,
                GO_BUILD_TIMEOUT_S,
                what,
            )
            if final.exists():
                shutil.rmtree(final)
            os.rename(out, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return binary


def go_program(src: Path, name: str) -> Path:
    """A small TarsGo program of the tests (``main.go`` with its go.mod/go.sum in ``src``), built once per source
    hash into the peers cache as ``name``."""
    sources = sorted(p for p in src.iterdir() if p.name in ("go.mod", "go.sum", "main.go"))
    binary = cache_root() / f"{name}-{_hash_files(sources, src)}" / name
    if binary.is_file():
        return binary
    with _locked(name):
        if binary.is_file():
            return binary
        go = _require_tool("go", f"install Go >= 1.24 (the TarsGo program {name} is built from the Go module proxy)")
        binary.parent.mkdir(parents=True, exist_ok=True)
        tmp = binary.with_name(f".{name}.{os.getpid()}")
        env = dict(os.environ, CGO_ENABLED="0", GOTOOLCHAIN="local", GOFLAGS="-mod=readonly -buildvcs=false")
        _run_build([*_nice(), go, "build", "-trimpath", "-o", str(tmp), "."], src, env, GO_BUILD_TIMEOUT_S,
                   f"building the TarsGo program {name}")  # fmt: skip
        os.replace(tmp, binary)
    return binary


# --------------------------------------------------------------------------- running


def peer_command(peer: Peer, program: Program) -> list[str]:
    """argv prefix for ``program`` of ``peer``; the two peers take the same arguments after it.

    ``peer_command("go", "codec") + ["encode"]``, ``peer_command("node", "echo-server") +
    ["--endpoint", "tcp -h 127.0.0.1 -p 20001 -t 60000"]``, ...
    """
    if program not in _NODE_PROGRAMS:
        raise ValueError(f"unknown peer program {program!r}")
    if peer == "node":
        return node_script(_NODE_PROGRAMS[program])
    if peer == "go":
        return [str(go_binary()), program]
    raise ValueError(f"unknown peer {peer!r}")


def _parse_reply(argv: list[str], rc: int | None, out: bytes, err: bytes) -> dict[str, Any]:
    if rc != 0:
        raise PeerError(f"`{' '.join(argv)}` exited {rc}: {err.decode(errors='replace').strip()[-4000:]}")
    try:
        reply = json.loads(out)
    except ValueError as e:
        raise PeerError(f"`{' '.join(argv)}` printed no JSON: {out[:500]!r}") from e
    if not isinstance(reply, dict):
        raise PeerError(f"`{' '.join(argv)}` printed {type(reply).__name__}, not an object")
    return reply


def run_codec(peer: Peer, command: CodecCommand, request: dict[str, Any], timeout: float = 120.0) -> dict[str, Any]:
    """Run ``codec encode|decode|bench`` of one peer with ``request`` on stdin, return its JSON reply."""
    argv = [*peer_command(peer, "codec"), command]
    try:
        proc = subprocess.run(argv, input=json.dumps(request).encode(), capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise PeerError(f"`{' '.join(argv)}` timed out after {timeout}s") from e
    return _parse_reply(argv, proc.returncode, proc.stdout, proc.stderr)


async def run_codec_async(
    peer: Peer, command: CodecCommand, request: dict[str, Any], timeout: float = 120.0
) -> dict[str, Any]:
    """Async :func:`run_codec` (building the peer, if needed, happens in a worker thread)."""
    argv = [*(await asyncio.to_thread(peer_command, peer, "codec")), command]
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(json.dumps(request).encode()), timeout)
    except TimeoutError as e:
        proc.kill()
        await proc.wait()
        raise PeerError(f"`{' '.join(argv)}` timed out after {timeout}s") from e
    return _parse_reply(argv, proc.returncode, out, err)
