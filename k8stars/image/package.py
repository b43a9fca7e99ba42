"""Server packages as an image layer, refused when hostile before anything is pushed.

A ``.tgz``/``.tar.gz`` is extracted with its first directory stripped (``tar --strip-components=1``) into
``/usr/local/server/bin``, a ``.war`` is unzipped there, and a ``.jar`` is put there as ``<ServerName>.jar``.
Nothing is extracted onto a disk: members go from the archive straight into the layer. Refused: paths with
``..`` or absolute ones, symlinks leaving the server directory, paths through a symlink, hard links to anything
but an earlier file of the package, device files and fifos, truncated or corrupt archives, something that is not
the archive its name says, and archives over the size or member limits (size bombs).
"""

from __future__ import annotations

import gzip
import posixpath
import shutil
import stat
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from .layer import Layer, LayerBuilder

__all__ = ["SERVER_DIR", "PackageError", "PackageLimits", "package_kind", "package_layer"]

SERVER_DIR = "usr/local/server/bin"
KINDS = {".tgz": "tgz", ".tar.gz": "tgz", ".war": "war", ".jar": "jar"}


class PackageError(ValueError):
    """A package that cannot be used, with the reason in words."""


@dataclass(frozen=True)
class PackageLimits:
    max_unpacked: int = 2 << 30  # bytes once decompressed
    max_members: int = 100_000
    max_ratio: int = 100  # unpacked / packed, beyond which it is a bomb rather than a package


def package_kind(filename: str) -> str:
    """``tgz``, ``war`` or ``jar`` from the upload's file name; PackageError for anything else."""
    lower = filename.lower()
    for suffix, kind in KINDS.items():
        if lower.endswith(suffix):
            return kind
    raise PackageError(f"unsupported server file type {filename!r}: expected .tgz, .tar.gz, .war or .jar")


def package_layer(
    path: Path, filename: str, server_name: str, workdir: Path, limits: PackageLimits = PackageLimits()
) -> Layer:
    """The layer of the package at ``path`` (uploaded as ``filename``), written under ``workdir``."""
    kind = package_kind(filename)
    builder = LayerBuilder()
    builder.add_dir(SERVER_DIR)
    if kind == "tgz":
        plain = workdir / "package.tar"
        _gunzip(path, plain, limits)
        try:
            tar = tarfile.open(plain, "r:")
        except tarfile.TarError as e:
            raise PackageError(f"the package is not a valid tar archive: {e}") from None
        with tar:
            _from_tar(tar, builder, limits)
            _require_files(builder)
            return builder.write(workdir)
    with _open_zip(path, limits) as zf:
        if kind == "jar":
            builder.add_file(f"{SERVER_DIR}/{server_name}.jar", source=path, mode=0o644)
            return builder.write(workdir)
        _from_zip(zf, builder)
        _require_files(builder)
        return builder.write(workdir)


def _require_files(builder: LayerBuilder) -> None:
    if not any(e.kind == tarfile.REGTYPE for e in builder.entries.values()):
        raise PackageError("the package has no files (after stripping its top directory)")


def _gunzip(src: Path, dest: Path, limits: PackageLimits) -> None:
    packed = src.stat().st_size
    cap = min(limits.max_unpacked, max(packed, 1 << 20) * limits.max_ratio)
    written = 0
    try:
        with gzip.open(src, "rb") as gz, dest.open("wb") as out:
            while chunk := gz.read(1 << 20):
                written += len(chunk)
                if written > cap:
                    raise PackageError(f"the package unpacks to more than {cap} bytes (limit): refused")
                out.write(chunk)
    except gzip.BadGzipFile:
        raise PackageError("the package is not a gzip'd tar (.tgz): bad gzip header") from None
    except EOFError:
        raise PackageError("the package is truncated (the gzip stream ends early)") from None
    except zlib.error as e:
        raise PackageError(f"the package is corrupt: {e}") from None


def _strip(name: str) -> str | None:
    """The member's path inside the server directory (first directory stripped), None for the top itself.
    PackageError for an absolute path or one with ``..``."""
    if name.startswith("/") or "\\" in name:
        raise PackageError(f"refused member {name!r}: absolute path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise PackageError(f"refused member {name!r}: path traversal (..)")
    return "/".join(parts[1:]) or None


def _inside(link_dir: str, target: str) -> bool:
    """Whether a symlink in ``link_dir`` (relative to the server directory) pointing at ``target`` stays inside."""
    if target.startswith("/"):
        return False
    stack = [p for p in link_dir.split("/") if p]
    for part in target.split("/"):
        if part == "..":
            if not stack:
                return False
            stack.pop()
        elif part not in ("", "."):
            stack.append(part)
    return True


def _member_reader(tar: tarfile.TarFile, member: tarfile.TarInfo) -> Callable[[], IO[bytes]]:
    def read() -> IO[bytes]:
        f = tar.extractfile(member)
        if f is None:
            raise PackageError(f"{member.name}: unreadable")
        return f

    return read


def _from_tar(tar: tarfile.TarFile, builder: LayerBuilder, limits: PackageLimits) -> None:
    try:
        members = tar.getmembers()
    except (tarfile.TarError, EOFError) as e:
        if "end of data" in str(e):
            raise PackageError("the package is truncated (the tar ends early)") from None
        raise PackageError(f"the package is not a valid tar archive: {e}") from None
    if len(members) > limits.max_members:
        raise PackageError(f"the package has {len(members)} members (limit {limits.max_members})")
    symlinks: set[str] = set()
    files: set[str] = set()
    total = 0
    for m in members:
        rel = _strip(m.name)
        if rel is None:
            continue
        if any(rel == s or rel.startswith(s + "/") for s in symlinks) or _through_symlink(rel, symlinks):
            raise PackageError(f"refused member {m.name!r}: it goes through a symlink of the package")
        dest = f"{SERVER_DIR}/{rel}"
        if m.isdir():
            builder.add_dir(dest, (m.mode & 0o755) | 0o700, mtime=int(m.mtime))
        elif m.isreg():
            total += m.size
            if total > limits.max_unpacked:
                raise PackageError(f"the package's files add up to more than {limits.max_unpacked} bytes")
            builder.add_file(dest, opener=_member_reader(tar, m), size=m.size, mode=(m.mode & 0o755) | 0o600,
                             mtime=int(m.mtime))  # fmt: skip
            files.add(rel)
        elif m.issym():
            if not _inside(posixpath.dirname(rel), m.linkname):
                raise PackageError(f"refused member {m.name!r}: symlink to {m.linkname!r} leaves the package")
            builder.add_symlink(dest, m.linkname, mtime=int(m.mtime))
            symlinks.add(rel)
        elif m.islnk():
            target = _strip(m.linkname)
            if target is None or target not in files:
                raise PackageError(f"refused member {m.name!r}: hard link to {m.linkname!r}, not a file of the package")
            builder.add_hardlink(dest, f"{SERVER_DIR}/{target}")
            files.add(rel)
        else:
            raise PackageError(f"refused member {m.name!r}: device files and fifos are not allowed in a package")
    _check_members(tar, members)


def _through_symlink(rel: str, symlinks: set[str]) -> bool:
    parent = posixpath.dirname(rel)
    while parent:
        if parent in symlinks:
            return True
        parent = posixpath.dirname(parent)
    return False


def _check_members(tar: tarfile.TarFile, members: list[tarfile.TarInfo]) -> None:
    """A truncated tar lists its members but has not their data: read the last file's end to be sure."""
    regular = [m for m in members if m.isreg() and m.size]
    if not regular:
        return
    last = max(regular, key=lambda m: m.offset_data)
    f = tar.extractfile(last)
    assert f is not None
    f.seek(last.size - 1)
    if len(f.read(1)) != 1:
        raise PackageError("the package is truncated (the tar ends inside a file)")


def _open_zip(path: Path, limits: PackageLimits) -> zipfile.ZipFile:
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile as e:
        raise PackageError(f"the package is not a valid zip archive (.war/.jar): {e}") from None
    infos = zf.infolist()
    packed = max(path.stat().st_size, 1 << 20)
    total = sum(i.file_size for i in infos)
    if len(infos) > limits.max_members:
        zf.close()
        raise PackageError(f"the package has {len(infos)} members (limit {limits.max_members})")
    if total > min(limits.max_unpacked, packed * limits.max_ratio):
        zf.close()
        raise PackageError(f"the package unpacks to {total} bytes (limit): refused")
    try:
        bad = zf.testzip()  # reads every member: CRCs and truncation
    except (zipfile.BadZipFile, EOFError, zlib.error, NotImplementedError) as e:
        zf.close()
        raise PackageError(f"the package is corrupt: {e}") from None
    if bad is not None:
        zf.close()
        raise PackageError(f"the package is corrupt: bad CRC in {bad!r}")
    return zf


def _zip_reader(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> Callable[[], IO[bytes]]:
    return lambda: zf.open(info)


def _from_zip(zf: zipfile.ZipFile, builder: LayerBuilder) -> None:
    """A war is unzipped as is (no directory stripped)."""
    for info in zf.infolist():
        name = info.filename
        if name.startswith("/") or "\\" in name or ".." in name.split("/"):
            raise PackageError(f"refused member {name!r}: path traversal")
        kind = stat.S_IFMT(info.external_attr >> 16)  # unix file type bits, when the zip tool wrote them
        if kind == stat.S_IFLNK:
            raise PackageError(f"refused member {name!r}: symlinks are not allowed in a war")
        if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
            raise PackageError(f"refused member {name!r}: device files and fifos are not allowed in a package")
        rel = "/".join(p for p in name.split("/") if p not in ("", "."))
        if not rel:
            continue
        if info.is_dir():
            builder.add_dir(f"{SERVER_DIR}/{rel}")
        else:
            builder.add_file(f"{SERVER_DIR}/{rel}", opener=_zip_reader(zf, info), size=info.file_size, mode=0o644)


def scratch_dir(root: Path | None = None) -> Path:
    """A private scratch directory for one build (0700), removed with :func:`remove_scratch`."""
    if root is not None:
        root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="k8stars-build-", dir=root))


def remove_scratch(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
