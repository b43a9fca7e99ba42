"""Server packages for the tests: a normal one and every kind of hostile one."""

from __future__ import annotations

import gzip
import io
import tarfile
import zipfile
import zlib
from collections.abc import Callable


def _info(
    name: str, kind: bytes = tarfile.REGTYPE, size: int = 0, link: str = "", mode: int = 0o644
) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.size, info.linkname, info.mode = kind, size, link, mode
    return info


def tgz(*members: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def file(name: str, data: bytes, mode: int = 0o644) -> tuple[tarfile.TarInfo, bytes]:
    return _info(name, size=len(data), mode=mode), data


def server_tgz(server: str = "HelloServer", size: int = 0) -> bytes:
    """``<server>/<server>`` (an executable), a config, a library and a symlink to it, plus ``size`` bytes of
    incompressible data in ``<server>/data.bin``."""
    import os

    members = [
        (_info(server, tarfile.DIRTYPE, mode=0o755), None),
        file(f"{server}/{server}", b"#!/bin/sh\necho hello from " + server.encode() + b"\n", 0o755),
        file(f"{server}/conf/{server}.conf", b"<tars>\n</tars>\n"),
        file(f"{server}/lib/libhello.so.1", b"\x7fELF lib"),
        (_info(f"{server}/lib/libhello.so", tarfile.SYMTYPE, link="libhello.so.1"), None),
    ]
    if size:
        members.append(file(f"{server}/data.bin", os.urandom(size)))
    return tgz(*members)


def war(members: dict[str, bytes], symlink: str | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = 0o120777 << 16
            zf.writestr(info, "/etc/passwd")
    return buf.getvalue()


def _gzip_zeros(n: int) -> bytes:
    """A gzip'd tar claiming one file of ``n`` zero bytes, made in one pass (a size bomb)."""
    header = _info("bomb/zeros", size=n).tobuf(tarfile.GNU_FORMAT)
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    out = [comp.compress(header)]
    chunk = bytes(1 << 20)
    for _ in range(n >> 20):
        out.append(comp.compress(chunk))
    out.append(comp.flush())
    return b"".join(out)


def zip_bomb(n: int) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("WEB-INF/zeros", "w", force_zip64=True) as f:
            chunk = bytes(1 << 20)
            for _ in range(n >> 20):
                f.write(chunk)
    return buf.getvalue()


def _truncated_tar_in_gzip() -> bytes:
    raw = gzip.decompress(server_tgz(size=64 << 10))
    return gzip.compress(raw[: len(raw) // 2], mtime=0)


# name -> (file name, content, what the refusal says)
HOSTILE: dict[str, tuple[str, Callable[[], bytes], str]] = {
    "path traversal": ("a.tgz", lambda: tgz(file("pkg/../../etc/cron.d/x", b"x")), "path traversal"),
    "absolute path": ("a.tgz", lambda: tgz(file("/etc/passwd", b"x")), "absolute path"),
    "symlink escape": (
        "a.tgz",
        lambda: tgz(file("pkg/a", b"a"), (_info("pkg/etc", tarfile.SYMTYPE, link="../../../etc"), None)),
        "leaves",
    ),
    "absolute symlink": (
        "a.tgz",
        lambda: tgz(file("pkg/a", b"a"), (_info("pkg/shadow", tarfile.SYMTYPE, link="/etc/shadow"), None)),
        "leaves",
    ),
    "through a symlink": (
        "a.tgz",
        lambda: tgz((_info("pkg/d", tarfile.SYMTYPE, link="."), None), file("pkg/d/x", b"x")),
        "through a symlink",
    ),
    "hard link out": (
        "a.tgz",
        lambda: tgz(file("pkg/a", b"a"), (_info("pkg/h", tarfile.LNKTYPE, link="/etc/passwd"), None)),
        "absolute path",
    ),
    "device file": ("a.tgz", lambda: tgz(file("pkg/a", b"a"), (_info("pkg/mem", tarfile.CHRTYPE), None)), "device"),
    "fifo": ("a.tgz", lambda: tgz(file("pkg/a", b"a"), (_info("pkg/fifo", tarfile.FIFOTYPE), None)), "fifo"),
    "truncated gzip": ("a.tgz", lambda: server_tgz(size=256 << 10)[:100_000], "truncated"),
    "truncated tar": ("a.tgz", _truncated_tar_in_gzip, "truncated"),
    "not an archive": ("a.tgz", lambda: b"this is not a tarball\n" * 100, "not a gzip'd tar"),
    "gzip of not a tar": ("a.tar.gz", lambda: gzip.compress(b"plain text, no tar\n" * 100), "not a valid tar"),
    "size bomb": ("a.tgz", lambda: _gzip_zeros(40 << 20), "unpacks to more than"),
    "empty": ("a.tgz", lambda: tgz((_info("pkg", tarfile.DIRTYPE, mode=0o755), None)), "no files"),
    "zip traversal": ("a.war", lambda: war({"../../evil.jsp": b"x"}), "path traversal"),
    "zip symlink": ("a.war", lambda: war({"index.jsp": b"x"}, symlink="WEB-INF/lib"), "symlinks"),
    "zip bomb": ("a.war", lambda: zip_bomb(40 << 20), "unpacks to"),
    "not a zip": ("a.war", lambda: b"PK but not really" * 10, "not a valid zip"),
    "jar not a zip": ("a.jar", lambda: b"\x00" * 1000, "not a valid zip"),
    "unknown type": ("a.zip", lambda: war({"a": b"a"}), "unsupported server file type"),
}
