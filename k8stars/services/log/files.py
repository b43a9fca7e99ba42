"""Reading the log files back, for the console: a server's files and the tail of one, under the log directory.

Names come from whoever asks, so each is checked as a single path component (``naming.check_part``: no ``/``,
``..`` or control characters), and every component is opened relative to its parent with O_NOFOLLOW: a symlink
anywhere below the root fails instead of leading outside; only regular files are read. The HTTP view
(``--http-port``): ``GET /api/logs/<app>/<server>`` lists ``{"files": [{"name", "size", "mtime", "set"}]}`` newest
first: the files of ``<app>/<server>/`` (``set`` empty) and of each set directory ``<app>/<set>/<server>/`` (where a
server of a set division writes, ``naming.set_dir``); ``GET /api/logs/<app>/<server>/<file>?bytes=N[&set=S]``
answers the file's last N bytes (whole lines, at most 1 MiB). With
``--http-token-file`` each request but ``/healthz`` and ``/metrics`` carries that token (``Authorization: Bearer``),
else it is answered 401 and nothing is read."""

from __future__ import annotations

import asyncio
import errno
import os
import stat
from dataclasses import asdict, dataclass
from pathlib import Path

from aiohttp import web

from k8stars.service.bearer import TokenFile, bearer_middleware
from k8stars.services.log.naming import BadLogName, check_part

MAX_TAIL = 1 << 20
DEFAULT_TAIL = 64 * 1024
MAX_FILES = 1000
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK  # a FIFO fails at once instead of blocking


@dataclass(frozen=True)
class LogFile:
    name: str
    size: int
    mtime: float
    set: str = ""  # the set directory (``<app>/<set>/<server>/``), empty for ``<app>/<server>/``


def _open_dir(root: Path, parts: tuple[str, ...]) -> int:
    """A descriptor of ``root/parts...``, each part opened below the last without following a symlink."""
    fd = os.open(root, _DIR)
    try:
        for part in parts:
            parent, fd = fd, os.open(part, _DIR, dir_fd=fd)
            os.close(parent)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _server_dir(root: Path, app: str, server: str, division: str = "") -> int:
    """A descriptor of ``root/app/[division/]server``; FileNotFoundError when the server has written nothing there."""
    app, server = check_part("app", app), check_part("server", server)
    return _open_dir(root, (app, check_part("set", division), server) if division else (app, server))


def _files_in(fd: int, division: str) -> list[LogFile]:
    with os.scandir(fd) as entries:
        return [LogFile(e.name, (s := e.stat(follow_symlinks=False)).st_size, s.st_mtime, division)
                for e in entries if e.is_file(follow_symlinks=False)]  # fmt: skip


def _divisions(root: Path, app: str, server: str) -> list[str]:
    """The app's directories other than the server's own: where a set division's servers write."""
    try:
        fd = _open_dir(root, (check_part("app", app),))
    except FileNotFoundError:
        return []
    try:
        with os.scandir(fd) as entries:
            return sorted(e.name for e in entries if e.name != server and e.is_dir(follow_symlinks=False))
    finally:
        os.close(fd)


def list_files(root: Path, app: str, server: str) -> list[LogFile]:
    """The server's regular files, in its own directory and its set directories, newest first (none when it has
    written nothing)."""
    check_part("server", server)
    files: list[LogFile] = []
    for division in ("", *_divisions(root, app, server)):
        try:
            fd = _server_dir(root, app, server, division)
        except (OSError, BadLogName):  # no such server there, a planted symlink, a name no set could have
            continue
        try:
            files += _files_in(fd, division)
        finally:
            os.close(fd)
    return sorted(files, key=lambda f: (-f.mtime, f.set, f.name))[:MAX_FILES]


def tail(root: Path, app: str, server: str, file: str, max_bytes: int = DEFAULT_TAIL, division: str = "") -> str:
    """The last ``max_bytes`` (at most MAX_TAIL) of the file, from the first whole line; FileNotFoundError, or
    OSError for what is not a regular file of its own."""
    max_bytes = max(1, min(max_bytes, MAX_TAIL))
    dir_fd = _server_dir(root, app, server, division)
    try:
        fd = os.open(check_part("file", file), _FILE, dir_fd=dir_fd)
    finally:
        os.close(dir_fd)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EPERM, "not a regular file", file)
        start = max(0, st.st_size - max_bytes)
        data = os.pread(fd, st.st_size - start, start)
    finally:
        os.close(fd)
    if start and b"\n" in data:
        data = data[data.index(b"\n") + 1 :]
    return data.decode("utf-8", errors="replace")


def add_routes(app: web.Application, root: Path, token: TokenFile | None = None) -> None:
    """The view on ``app``; with ``token`` every request but /healthz and /metrics must carry it (bearer)."""
    if token is not None:
        app.middlewares.append(bearer_middleware(token))

    async def files(request: web.Request) -> web.Response:
        m = request.match_info
        try:
            found = await asyncio.to_thread(list_files, root, m["app"], m["server"])
        except BadLogName as e:
            return web.json_response({"error": str(e)}, status=400)
        return web.json_response({"files": [asdict(f) for f in found]})

    async def one(request: web.Request) -> web.Response:
        m = request.match_info
        try:
            size = int(request.query.get("bytes", DEFAULT_TAIL))
            division = request.query.get("set", "")
            text = await asyncio.to_thread(tail, root, m["app"], m["server"], m["file"], size, division)
        except (BadLogName, ValueError) as e:
            return web.json_response({"error": str(e)}, status=400)
        except (FileNotFoundError, NotADirectoryError):
            return web.json_response({"error": f"no file {m['file']}"}, status=404)
        except OSError as e:  # a symlink, a FIFO, a directory
            return web.json_response({"error": f"{m['file']}: {e.strerror or e}"}, status=403)
        return web.Response(text=text, content_type="text/plain")

    app.router.add_get("/api/logs/{app}/{server}", files)
    app.router.add_get("/api/logs/{app}/{server}/{file}", one)
