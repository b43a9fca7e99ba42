"""Deterministic image layers: the same entries give the same bytes, so the same digest, on every build.

Entries are written sorted by path, parents first, with mtime, uid and gid 0 (unless given), no user or group
names, and a gzip header without name or time. Layers are written to a file (a package may be large) while both
digests are computed: ``digest`` of the gzip'd blob (what a registry stores) and ``diff_id`` of the tar (what the
image config lists).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import posixpath
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol

__all__ = ["Blob", "Layer", "LayerBuilder", "normalize_path"]

COMPRESS_LEVEL = 6  # zlib's default: most of level 9's size at a fraction of its time
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Blob:
    """Content addressed by its sha256 digest, held in memory (``data``) or in a file (``path``)."""

    digest: str
    size: int
    data: bytes | None = None
    path: Path | None = None

    @classmethod
    def of(cls, data: bytes) -> Blob:
        return cls(digest=sha256_digest(data), size=len(data), data=data)

    def read(self) -> bytes:
        if self.data is not None:
            return self.data
        assert self.path is not None
        return self.path.read_bytes()


@dataclass(frozen=True)
class Layer(Blob):
    """A gzip'd tar layer; ``diff_id`` is the sha256 of the uncompressed tar."""

    diff_id: str = ""


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def normalize_path(path: str) -> str:
    """A layer path: relative, normalized, no `..`; raises ValueError for one that leaves the root."""
    norm = posixpath.normpath("/" + path.replace("\\", "/")).lstrip("/")
    parts = path.replace("\\", "/").split("/")
    if ".." in parts or not norm or norm == ".":
        raise ValueError(f"bad path {path!r}")
    return norm


@dataclass
class _Entry:
    kind: bytes  # a tarfile type
    mode: int
    size: int = 0
    data: bytes | None = None
    opener: Callable[[], IO[bytes]] | None = None
    link: str = ""
    mtime: int = 0
    owner: tuple[int, int] = (0, 0)  # uid, gid


class _Sink(Protocol):
    def write(self, b: bytes | bytearray | memoryview, /) -> int: ...


class _HashingWriter(io.RawIOBase):
    """Passes writes on to ``target`` while hashing and counting them."""

    def __init__(self, target: _Sink) -> None:
        self.target, self.hash, self.size = target, hashlib.sha256(), 0

    def writable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.size

    def write(self, b: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        self.hash.update(b)
        self.size += len(b)
        self.target.write(b)
        return len(b)


@dataclass
class LayerBuilder:
    """Collects files, directories, symlinks and hard links, then writes them as one layer."""

    entries: dict[str, _Entry] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.entries)

    def _parents(self, path: str) -> None:
        parent = posixpath.dirname(path)
        while parent and parent not in self.entries:
            self.entries[parent] = _Entry(tarfile.DIRTYPE, 0o755)
            parent = posixpath.dirname(parent)

    def add_dir(self, path: str, mode: int = 0o755, *, mtime: int = 0) -> None:
        path = normalize_path(path)
        self._parents(path)
        self.entries[path] = _Entry(tarfile.DIRTYPE, mode & 0o7777, mtime=mtime)

    def add_file(
        self,
        path: str,
        data: bytes | None = None,
        *,
        mode: int = 0o644,
        source: Path | None = None,
        opener: Callable[[], IO[bytes]] | None = None,
        size: int | None = None,
        mtime: int = 0,
    ) -> None:
        """A regular file from bytes, a local file (``source``) or a reader (``opener`` with its ``size``).
        ``mtime`` 0 unless the input had its own (Python compares a .pyc's recorded mtime with its source's)."""
        path = normalize_path(path)
        self._parents(path)
        mode &= 0o7777
        if data is not None:
            self.entries[path] = _Entry(tarfile.REGTYPE, mode, len(data), data=data, mtime=mtime)
        elif source is not None:
            src = source
            self.entries[path] = _Entry(tarfile.REGTYPE, mode, src.stat().st_size, opener=lambda: src.open("rb"),
                                        mtime=mtime)  # fmt: skip
        elif opener is not None and size is not None:
            self.entries[path] = _Entry(tarfile.REGTYPE, mode, size, opener=opener, mtime=mtime)
        else:
            raise TypeError("add_file needs data, source, or opener and size")

    def add_symlink(self, path: str, target: str, *, mtime: int = 0) -> None:
        path = normalize_path(path)
        self._parents(path)
        self.entries[path] = _Entry(tarfile.SYMTYPE, 0o777, link=target, mtime=mtime)

    def set_owner(self, path: str, uid: int, gid: int) -> None:
        """Owner of an entry added already (a root file system's; everything else is root's)."""
        self.entries[normalize_path(path)].owner = (max(0, uid), max(0, gid))

    def add_hardlink(self, path: str, target: str) -> None:
        """A hard link to another regular file of this layer (added before or after)."""
        path = normalize_path(path)
        self._parents(path)
        self.entries[path] = _Entry(tarfile.LNKTYPE, 0o644, link=normalize_path(target))

    def _ordered(self) -> list[tuple[str, _Entry]]:
        """Sorted entries; a hard link group is written as a file at its first path and links to it after, since
        tar readers need the file before its links whatever the order of the paths."""
        items = sorted(self.entries.items())
        groups: dict[str, list[str]] = {}
        for path, e in items:
            if e.kind == tarfile.LNKTYPE:
                linked = self.entries.get(e.link)
                if linked is None or linked.kind != tarfile.REGTYPE:
                    raise ValueError(f"hard link {path} -> {e.link}: no such file in the layer")
                groups.setdefault(e.link, []).append(path)
        head_of: dict[str, tuple[str, _Entry]] = {}  # every member of a group -> (the path written as the file, it)
        for file_path, links in groups.items():
            head = min([file_path, *links])
            for p in [file_path, *links]:
                head_of[p] = (head, self.entries[file_path])
        out: list[tuple[str, _Entry]] = []
        for path, e in items:
            if path in head_of:
                head, file_entry = head_of[path]
                e = (
                    file_entry
                    if path == head
                    else _Entry(
                        tarfile.LNKTYPE, file_entry.mode, link=head, mtime=file_entry.mtime, owner=file_entry.owner
                    )
                )
            out.append((path, e))
        return out

    def write(self, directory: Path | None = None) -> Layer:
        """Write the layer: into a file under ``directory``, or into memory when None."""
        ordered = self._ordered()
        if directory is None:
            buf = io.BytesIO()
            diff_id, _ = _write(ordered, buf)
            data = buf.getvalue()
            return Layer(digest=sha256_digest(data), size=len(data), data=data, diff_id=diff_id)
        directory.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=directory, suffix=".tar.gz.part")
        try:
            with os.fdopen(fd, "wb") as f:
                diff_id, (digest, size) = _write(ordered, f)
            final = directory / (digest.split(":", 1)[1] + ".tar.gz")
            os.replace(name, final)
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise
        return Layer(digest=digest, size=size, path=final, diff_id=diff_id)


def _write(ordered: list[tuple[str, _Entry]], out: IO[bytes]) -> tuple[str, tuple[str, int]]:
    outer = _HashingWriter(out)
    with gzip.GzipFile(filename="", fileobj=outer, mode="wb", compresslevel=COMPRESS_LEVEL, mtime=0) as gz:
        inner = _HashingWriter(gz)
        with tarfile.open(fileobj=inner, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for path, e in ordered:
                info = tarfile.TarInfo(path)
                info.type, info.mode, info.mtime = e.kind, e.mode, max(0, e.mtime)
                info.uid, info.gid = e.owner
                info.uname = info.gname = ""
                info.linkname = e.link
                if e.kind == tarfile.REGTYPE:
                    info.size = e.size
                    if e.data is not None:
                        tar.addfile(info, io.BytesIO(e.data))
                    else:
                        assert e.opener is not None
                        with e.opener() as f:
                            tar.addfile(info, _Exact(f, e.size))
                else:
                    tar.addfile(info)
    return "sha256:" + inner.hash.hexdigest(), ("sha256:" + outer.hash.hexdigest(), outer.size)


class _Exact(io.RawIOBase):
    """A reader that must give exactly ``size`` bytes: a source that changed size under us fails the layer rather
    than writing a corrupt tar."""

    def __init__(self, f: IO[bytes], size: int) -> None:
        self.f, self.left = f, size

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        data = self.f.read(n) if n else b""
        if len(data) < n:
            raise ValueError("a file was shorter than announced")
        self.left -= len(data)
        return data
