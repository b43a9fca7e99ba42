"""The pod agent, self-contained: a PyInstaller build of ``tarscli`` (libpython, the standard library and the
agent's modules; it needs only glibc and zlib), so that a server image needs no Python.

One directory, not PyInstaller's one-file mode: the one-file executable unpacks itself to /tmp at every start
(0.7 s, measured), and the readiness probe runs the agent every few seconds in every pod; from a directory it
starts in 0.09 s. The directory is ``tarscli`` (the executable) beside ``_internal/`` (libpython stripped, the
extension modules), 14 MB; TLS and the compressors are left out (the agent uses none of them).

Built once per hash of its inputs (the agent's sources, the Python and PyInstaller versions) into
``$K8STARS_CACHE/agent-<hash>/`` (``~/.cache/k8stars``), under a file lock and landed by an atomic rename, as the
test peers are. Needs the ``images`` extra (``pip install -e .[images]``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import k8stars
from k8stars.paths import cache_home, file_lock

__all__ = ["AgentBuildError", "agent_bundle", "agent_sources"]

PACKAGE = Path(k8stars.__file__).resolve().parent
# What tarscli imports of k8stars (it imports nothing above k8stars.tars): a change here rebuilds the bundle.
SOURCES = ("__init__.py", "paths.py", "tars", "tarscli")
# Never used by the agent; PyInstaller would otherwise follow optional imports of the standard library into them.
EXCLUDES = (
    "tkinter",
    "unittest",
    "pydoc",
    "doctest",
    "lib2to3",
    "sqlite3",
    "xmlrpc",
    "pytest",
    "mypy",
    "ssl",
    "_ssl",
    "_hashlib",
    "lzma",
    "_lzma",
    "bz2",
    "_bz2",
)
BUILD_TIMEOUT_S = 900.0
KEEP = 3
ENTRY = "from k8stars.tarscli.cli import main\n\nmain()\n"


class AgentBuildError(RuntimeError):
    """PyInstaller is missing or failed."""


def agent_sources() -> list[Path]:
    files: list[Path] = []
    for name in SOURCES:
        path = PACKAGE / name
        files += sorted(path.rglob("*.py")) + sorted(path.rglob("*.tars")) if path.is_dir() else [path]
    return files


def _pyinstaller_version() -> str:
    try:
        from importlib.metadata import version

        return version("pyinstaller")
    except Exception as e:  # PackageNotFoundError
        raise AgentBuildError("PyInstaller is not installed: pip install -e '.[images]'") from e


def _hash() -> str:
    h = hashlib.sha256(f"{sys.version}\0{_pyinstaller_version()}\0{ENTRY}\0{EXCLUDES}\0".encode())
    for f in agent_sources():
        h.update(str(f.relative_to(PACKAGE)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def agent_bundle() -> Path:
    """The agent's directory (``tarscli`` and ``_internal/``), built on first use (20 s on two cores)."""
    final = cache_home() / f"agent-{_hash()}"
    if (final / "tarscli").is_file():
        return final
    with file_lock(cache_home() / ".agent.lock"):
        if (final / "tarscli").is_file():
            return final
        tmp = Path(tempfile.mkdtemp(prefix="tmp-agent-", dir=cache_home()))
        try:
            (tmp / "entry.py").write_text(ENTRY)
            argv = [sys.executable, "-m", "PyInstaller", "--onedir", "--strip", "--noconfirm", "--clean",
                    "--log-level", "WARN", "--name", "tarscli", "--distpath", str(tmp / "dist"),
                    "--workpath", str(tmp / "work"), "--specpath", str(tmp),
                    "--paths", str(PACKAGE.parent)]  # fmt: skip
            argv += [arg for mod in EXCLUDES for arg in ("--exclude-module", mod)]
            nice = shutil.which("nice")
            argv = ([nice, "-n", "10"] if nice else []) + [*argv, str(tmp / "entry.py")]
            try:
                proc = subprocess.run(argv, cwd=tmp, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                      timeout=BUILD_TIMEOUT_S)  # fmt: skip
            except subprocess.TimeoutExpired as e:
                raise AgentBuildError(f"PyInstaller timed out after {BUILD_TIMEOUT_S:.0f} s") from e
            if proc.returncode != 0:
                raise AgentBuildError(f"PyInstaller exited {proc.returncode}:\n{(proc.stderr or proc.stdout)[-4000:]}")
            if final.exists():
                shutil.rmtree(final)
            os.rename(tmp / "dist" / "tarscli", final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        _prune(final)
    return final


def _prune(keep: Path) -> None:
    """Builds of older sources go, all but the KEEP most recent (14 MB each; several checkouts may share the cache)."""
    builds = sorted((p for p in cache_home().glob("agent-*") if p != keep), key=lambda p: p.stat().st_mtime)
    for old in builds[: max(0, len(builds) - (KEEP - 1))]:
        shutil.rmtree(old, ignore_errors=True)
