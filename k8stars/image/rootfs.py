"""Base images without Docker: a busybox image from Debian's busybox-static (also a Kubernetes pause/sandbox image),
an image from any root file system tar (e.g. mmdebstrap's), and files added as one layer onto an existing image."""

from __future__ import annotations

import asyncio
import struct
import tarfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO

from k8stars.paths import data_home

from .layer import Layer, LayerBuilder
from .oci import ConfigChanges, push_image, resolve_image
from .reference import Credentials, ImageRef
from .registry import RegistryClient

__all__ = [
    "BUSYBOX",
    "busybox_layer",
    "cache_dir",
    "push_busybox_image",
    "push_files_on_base",
    "push_rootfs_image",
    "rootfs_layer",
]

BUSYBOX = Path("/bin/busybox")  # Debian's busybox-static
PASSWD = b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
GROUP = b"root:x:0:\nnogroup:x:65534:\n"
_PT_INTERP = 3


def cache_dir() -> Path:
    """Where blobs copied between registries and built layers are kept."""
    return data_home() / "image-cache"


def is_static(binary: Path) -> bool:
    """An ELF executable without a program interpreter (PT_INTERP) runs in an image with no libc."""
    with binary.open("rb") as f:
        head = f.read(64)
        if head[:4] != b"\x7fELF" or head[4] != 2:  # 64-bit ELF only
            return False
        phoff, = struct.unpack_from("<Q", head, 32)  # fmt: skip
        phentsize, phnum = struct.unpack_from("<HH", head, 54)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    return all(struct.unpack_from("<I", table, i * phentsize)[0] != _PT_INTERP for i in range(phnum))


async def busybox_layer(busybox: Path = BUSYBOX) -> Layer:
    """/bin/busybox, a symlink per applet (from ``busybox --list-full``), /etc/passwd, /etc/group, /tmp, /root."""
    if not busybox.is_file():
        raise FileNotFoundError(f"{busybox}: no busybox (Debian: apt-get install busybox-static)")
    if not await asyncio.to_thread(is_static, busybox):
        raise ValueError(f"{busybox} is not a static executable (Debian: apt-get install busybox-static)")
    proc = await asyncio.create_subprocess_exec(str(busybox), "--list-full", stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"{busybox} --list-full failed ({proc.returncode})")
    b = LayerBuilder()
    for d, mode in (("dev", 0o755), ("proc", 0o555), ("sys", 0o555), ("tmp", 0o1777), ("root", 0o700)):
        b.add_dir(d, mode)
    for d in ("usr/local/bin", "var"):
        b.add_dir(d)
    for applet in out.decode().split():
        if applet != "bin/busybox":
            b.add_symlink(applet, "/bin/busybox")
    b.add_file("bin/busybox", source=busybox, mode=0o755)
    b.add_file("etc/passwd", PASSWD)
    b.add_file("etc/group", GROUP)
    return await asyncio.to_thread(b.write, None)


async def push_busybox_image(
    registry: str,
    repo: str,
    tag: str,
    *,
    cmd: list[str] | None = None,
    entrypoint: list[str] | None = None,
    env: Mapping[str, str] | None = None,
    plain_http: bool = True,
    credentials: Credentials | None = None,
    busybox: Path = BUSYBOX,
) -> str:
    """Push a one-layer busybox image as ``registry/repo:tag`` and return ``registry/repo@sha256:...``. The
    default command is ``/bin/sh``; ``cmd=["/bin/sleep", "infinity"]`` makes it a pause (sandbox) image."""
    layer = await busybox_layer(busybox)
    changes = ConfigChanges(env=dict(env or {}), entrypoint=entrypoint, cmd=cmd or ["/bin/sh"],
                            comment="k8stars image base: busybox")  # fmt: skip
    async with RegistryClient(registry, credentials=credentials, plain_http=plain_http) as client:
        digest = await push_image(client, repo, tag, [layer], changes=changes)
    return f"{registry}/{repo}@{digest}"


def _member_name(name: str) -> str:
    while name.startswith("./"):
        name = name[2:]
    return "" if name in (".", "") else name.lstrip("/")


def _reader(tar: tarfile.TarFile, member: tarfile.TarInfo) -> Callable[[], IO[bytes]]:
    def open_member() -> IO[bytes]:
        f = tar.extractfile(member)
        if f is None:
            raise ValueError(f"{member.name}: not a regular file")
        return f

    return open_member


def rootfs_layer(tar_path: Path, directory: Path | None = None) -> Layer:
    """A root file system tar (mmdebstrap's output, say) as one deterministic layer: files, directories, symlinks
    and hard links with their modes, owners and times; device nodes and fifos are left to the container runtime."""
    b = LayerBuilder()
    with tarfile.open(tar_path) as tar:
        members = tar.getmembers()
        for m in members:
            name = _member_name(m.name)
            if not name:
                continue
            if m.isdir():
                b.add_dir(name, m.mode, mtime=int(m.mtime))
            elif m.issym():
                b.add_symlink(name, m.linkname, mtime=int(m.mtime))
            elif m.islnk():
                b.add_hardlink(name, _member_name(m.linkname))
            elif m.isreg():
                b.add_file(name, opener=_reader(tar, m), size=m.size, mode=m.mode, mtime=int(m.mtime))
            else:
                continue
            if not m.islnk():
                b.set_owner(name, m.uid, m.gid)  # e.g. /etc/shadow's group shadow
        return b.write(directory)


async def push_rootfs_image(
    target: str,
    rootfs_tar: Path,
    *,
    cmd: list[str] | None = None,
    entrypoint: list[str] | None = None,
    env: Mapping[str, str] | None = None,
    plain_http: bool | None = None,
    credentials: Credentials | None = None,
) -> str:
    """Push a root file system tar as the one-layer image ``target`` (``host/repo:tag``); returns it by digest."""
    ref = ImageRef.parse(target)
    layer = await asyncio.to_thread(rootfs_layer, rootfs_tar, cache_dir() / "layers")
    changes = ConfigChanges(env=dict(env or {}), entrypoint=entrypoint, cmd=cmd, comment="k8stars image base: rootfs")
    async with RegistryClient(ref.api_host, credentials=credentials, plain_http=plain_http) as client:
        digest = await push_image(client, ref.repository, ref.tag or "latest", [layer], changes=changes)
    return f"{ref.registry}/{ref.repository}@{digest}"


async def push_files_on_base(
    base: str,
    target: str,
    files: Mapping[str, bytes | Path],
    *,
    mode: int = 0o755,
    changes: ConfigChanges | None = None,
    plain_http: bool | None = None,
    base_credentials: Credentials | None = None,
    push_credentials: Credentials | None = None,
) -> str:
    """Add ``files`` (image path -> content or local file, all with ``mode``) as one layer onto the image ``base``
    and push the result as ``target``; returns ``target`` by digest. Both are ``host/repo:tag`` references."""
    b = LayerBuilder()
    for path, content in sorted(files.items()):
        if isinstance(content, Path):
            b.add_file(path, source=content, mode=mode)
        else:
            b.add_file(path, content, mode=mode)
    layer = await asyncio.to_thread(b.write, cache_dir() / "layers")
    return await push_layers_on_base(base, target, [layer], changes=changes, plain_http=plain_http,
                                     base_credentials=base_credentials, push_credentials=push_credentials)  # fmt: skip


async def push_layers_on_base(
    base: str,
    target: str,
    layers: list[Layer],
    *,
    changes: ConfigChanges | None = None,
    plain_http: bool | None = None,
    base_credentials: Credentials | None = None,
    push_credentials: Credentials | None = None,
) -> str:
    """``base`` + ``layers`` (+ config ``changes``) pushed as ``target``; returns ``target`` by digest."""
    src, dst = ImageRef.parse(base), ImageRef.parse(target)
    async with (
        RegistryClient(src.api_host, credentials=base_credentials, plain_http=plain_http) as base_client,
        RegistryClient(dst.api_host, credentials=push_credentials, plain_http=plain_http) as push,
    ):
        resolved = await resolve_image(base_client, src.repository, src.reference)
        digest = await push_image(push, dst.repository, dst.tag or "latest", layers, base=resolved,
                                  base_client=base_client, changes=changes, cache=cache_dir())  # fmt: skip
    return f"{dst.registry}/{dst.repository}@{digest}"
