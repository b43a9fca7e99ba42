"""K8SFramework's pod model, with our agent: the node image and the base images per server type.

A TARS pod runs the ``tarsnode`` init container from the **node image**, which copies the agent (``tarscli``, built
by agent.py: it needs glibc and nothing else) from ``/opt/k8stars/node`` into the pod's work dir
(``/usr/local/app/tars/tarsnode/bin``) and writes what the agent must know there. The server container runs a
release image: a **base image** + ``ENV ServerType`` + the package in ``/usr/local/server/bin``. Each base's
ENTRYPOINT is the agent in the work dir (``tarscli supervisor``), which generates the config, starts the server by
its type, registers it and heartbeats; the readiness probe and preStop call it by the same path. So a release image
never contains the agent, and an old release runs with a newer agent.

| kind | TImage | content |
|---|---|---|
| ``node`` | ``node`` (imageType node) | busybox + glibc + the agent in /opt/k8stars/node |
| ``cpp`` (also ``go``) | ``cppbase`` (Supported cpp, go) | busybox + glibc (Debian's libc6, zlib1g) |
| ``python`` | ``pythonbase`` (Supported python) | Debian (mmdebstrap) with python3 + the k8stars runtime |
| ``nodejs`` | ``nodejsbase`` (Supported nodejs, nodejs-pkg) | Debian (mmdebstrap) with nodejs |

Images are pushed as ``<registry>/tars/<name>:<tag>`` with ``tag`` the first 12 hex digits of their digest (the same
inputs give the same tag); the registration adds that release to TImage ``<name>`` with K8SFramework's labels.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from k8stars.kube.client import Kube, Obj
from k8stars.kube.resources import TIMAGE
from k8stars.paths import cache_home

from .agent import agent_bundle
from .layer import Layer, LayerBuilder
from .oci import DEFAULT_PATH, ConfigChanges, push_image
from .reference import ImageRef
from .registry import RegistryClient
from .rootfs import _member_name, busybox_layer, rootfs_layer
from .timage import now_rfc3339

NODE_SOURCE = "/opt/k8stars/node"  # in the node image; the operator's TARS_SYNC_DIRECTORY
WORK_DIR = "/usr/local/app/tars/tarsnode"  # the pod's tarsnode-work-dir (K8SFramework's path)
AGENT = f"{WORK_DIR}/bin/tarscli"  # the agent as the server container sees it
SERVER_DIR = "/usr/local/server"  # TARS_PATH of a release image: the package is its bin/
GLIBC_DEBS = ("libc6", "zlib1g")  # what the agent (and a cpp/go server built against glibc) needs
PYTHON_DEPS = ("click>=8.1", "PyYAML>=6", "aiohttp>=3.9", "prometheus-client>=0.20")  # the k8stars TARS runtime


@dataclass(frozen=True)
class Kind:
    timage: str
    image_type: str  # node or base
    supported: tuple[str, ...]


KINDS = {
    "node": Kind("node", "node", ()),
    "cpp": Kind("cppbase", "base", ("cpp", "go")),
    "go": Kind("cppbase", "base", ("cpp", "go")),
    "python": Kind("pythonbase", "base", ("python",)),
    "nodejs": Kind("nodejsbase", "base", ("nodejs", "nodejs-pkg")),
}


class BaseImageError(RuntimeError):
    """A Debian package, mmdebstrap or pip failed."""


def _run(argv: list[str], cwd: Path | None = None, timeout: float = 900) -> None:
    try:
        proc = subprocess.run(argv, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise BaseImageError(f"{argv[0]}: {e}") from None
    if proc.returncode != 0:
        raise BaseImageError(f"`{' '.join(argv)}` exited {proc.returncode}: {(proc.stderr or proc.stdout)[-2000:]}")


def _deb_cache() -> Path:
    path = cache_home() / "debs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def debian_package(name: str) -> Path:
    """The host's candidate version of ``name`` as a .deb, downloaded once (``apt-get download``)."""
    out = subprocess.run(["apt-cache", "policy", name], capture_output=True, text=True, check=False).stdout
    version = next((ln.split()[1] for ln in out.splitlines() if ln.strip().startswith("Candidate:")), "")
    if not version or version == "(none)":
        raise BaseImageError(f"Debian package {name}: apt knows no version of it")
    cached = sorted(_deb_cache().glob(f"{name}_*.deb"))
    wanted = [p for p in cached if p.name.startswith(f"{name}_{version.replace(':', '%3a')}_")]
    if wanted:
        return wanted[0]
    with tempfile.TemporaryDirectory(dir=_deb_cache()) as tmp:
        _run(["apt-get", "download", f"{name}={version}"], cwd=Path(tmp), timeout=300)
        got = next(Path(tmp).glob("*.deb"))
        final = _deb_cache() / got.name
        got.rename(final)
    return final


def _reader(tar: tarfile.TarFile, member: tarfile.TarInfo) -> Callable[[], IO[bytes]]:
    def open_member() -> IO[bytes]:
        f = tar.extractfile(member)
        assert f is not None
        return f

    return open_member


def _layer_dir() -> Path:
    return cache_home() / "base-layers"


def _memo(key: str, build: Callable[[], Layer]) -> Layer:
    """A layer built once per ``key`` (a hash of its inputs): gzip of a Debian root file system takes seconds."""
    index = _layer_dir() / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.json"
    with contextlib.suppress(OSError, ValueError, KeyError):
        meta = json.loads(index.read_text())
        path = _layer_dir() / f"{meta['digest'].partition(':')[2]}.tar.gz"
        if path.stat().st_size == meta["size"]:
            return Layer(digest=meta["digest"], size=meta["size"], path=path, diff_id=meta["diff_id"])
    layer = build()
    index.write_text(json.dumps({"digest": layer.digest, "size": layer.size, "diff_id": layer.diff_id}))
    return layer


def _stamp(path: Path) -> str:
    st = path.stat()
    return f"{path}:{st.st_size}:{st.st_mtime_ns}"


def glibc_layer() -> Layer:
    """Debian's libc6 and zlib1g (the host's versions: the agent was built against them) as one layer."""
    debs = [debian_package(name) for name in GLIBC_DEBS]
    return _memo("glibc:" + ":".join(d.name for d in debs), lambda: _glibc_layer(debs))


def _glibc_layer(debs: list[Path]) -> Layer:
    b = LayerBuilder()
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        for deb in debs:
            data = Path(tmp) / f"{deb.name}.tar"
            with open(data, "wb") as out:
                subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=out, check=True)
            tar = stack.enter_context(tarfile.open(data))
            for m in tar.getmembers():
                name_ = _member_name(m.name)
                if not name_ or name_.startswith("usr/share/"):
                    continue
                if m.isdir():
                    b.add_dir(name_, m.mode, mtime=int(m.mtime))
                elif m.issym():
                    b.add_symlink(name_, m.linkname, mtime=int(m.mtime))
                elif m.isreg():
                    b.add_file(name_, opener=_reader(tar, m), size=m.size, mode=m.mode, mtime=int(m.mtime))
        if "lib64/ld-linux-x86-64.so.2" not in b.entries:
            b.add_symlink("lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")
        return b.write(_layer_dir())


def agent_layer() -> Layer:
    """The agent's directory at /opt/k8stars/node (``tarscli`` + ``_internal/``)."""
    root = agent_bundle()
    return _memo(f"agent:{root.name}", lambda: _tree_layer(root, NODE_SOURCE.lstrip("/")))


def _tree_layer(root: Path, prefix: str) -> Layer:
    """The files under ``root`` at ``prefix`` in the image, modes 0755/0644 by their execute bit."""
    b = LayerBuilder()
    for path in sorted(root.rglob("*")):
        rel = f"{prefix}/{path.relative_to(root)}" if prefix else str(path.relative_to(root))
        if path.is_symlink():
            b.add_symlink(rel, str(path.readlink()))
        elif path.is_dir():
            b.add_dir(rel)
        else:
            b.add_file(rel, source=path, mode=0o755 if path.stat().st_mode & 0o111 else 0o644)
    return b.write(_layer_dir())


def debian_rootfs(suite: str, dest: Path, includes: tuple[str, ...] = (), mirror: str | None = None) -> None:
    """A Debian root file system tar by mmdebstrap (variant essential); RuntimeError with its output on failure."""
    if shutil.which("mmdebstrap") is None:
        raise RuntimeError("mmdebstrap is not installed (Debian: apt-get install mmdebstrap)")
    argv = ["mmdebstrap", "--quiet", "--variant=essential", "--format=tar"]
    if includes:
        argv.append("--include=" + ",".join(includes))
    argv += [suite, str(dest)]
    if mirror:
        argv.append(mirror)
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"mmdebstrap failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")


def debian_layer(includes: tuple[str, ...]) -> Layer:
    """The host's Debian suite with ``includes`` (mmdebstrap), its tar cached per package list."""
    suite = _suite()
    tar = cache_home() / "rootfs" / f"{suite}-{'-'.join(sorted(includes))}.tar"
    if not tar.is_file():
        tar.parent.mkdir(parents=True, exist_ok=True)
        tmp = tar.with_suffix(".tmp")
        debian_rootfs(suite, tmp, includes)
        tmp.rename(tar)
    return _memo(f"debian:{_stamp(tar)}", lambda: rootfs_layer(tar, _layer_dir()))


def _suite() -> str:
    for line in Path("/etc/os-release").read_text().splitlines():
        if line.startswith("VERSION_CODENAME="):
            return line.partition("=")[2].strip('"')
    return "bookworm"


def python_runtime_layer() -> Layer:
    """k8stars (its TARS runtime) and the libraries it needs, for Debian's python3, in /usr/local/lib/python3.X/
    dist-packages (on Debian's sys.path); installed once per hash of the sources and the requirements."""
    package = Path(__file__).resolve().parents[1]
    sources = sorted(p for p in package.rglob("*") if p.suffix in (".py", ".tars") and "__pycache__" not in p.parts)
    h = hashlib.sha256(f"{sys.version}\0{PYTHON_DEPS}\0site\0".encode())
    for f in sources:
        h.update(str(f.relative_to(package)).encode() + b"\0" + f.read_bytes() + b"\0")
    key = h.hexdigest()[:16]
    return _memo(f"python-runtime:{key}", lambda: _python_runtime(package, key))


def _python_runtime(package: Path, key: str) -> Layer:
    with tempfile.TemporaryDirectory(dir=cache_home()) as tmp:
        # Debian's python3 is the host's minor version (bookworm: 3.11), as the compiled wheels must be
        target = Path(tmp) / f"usr/local/lib/python3.{sys.version_info.minor}/dist-packages"
        _run([sys.executable, "-m", "pip", "install", "--quiet", "--no-compile", "--disable-pip-version-check",
              "--target", str(target), *PYTHON_DEPS], timeout=600)  # fmt: skip
        shutil.copytree(package, target / "k8stars", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        return _tree_layer(Path(tmp), "")


def _layers(kind: str) -> tuple[list[Layer], ConfigChanges]:
    server = ConfigChanges(env={"PATH": DEFAULT_PATH.partition("=")[2], "TARS_PATH": SERVER_DIR},
                           entrypoint=[AGENT, "supervisor"], workdir=SERVER_DIR,
                           comment=f"k8stars image base --kind {kind}")  # fmt: skip
    if kind == "node":
        path = f"{NODE_SOURCE}:{DEFAULT_PATH.partition('=')[2]}"  # the operator runs `tarscli nodeinit`
        node = ConfigChanges(
            env={"PATH": path, "TARS_SYNC_DIRECTORY": NODE_SOURCE},
            entrypoint=[f"{NODE_SOURCE}/tarscli", "nodeinit"],
            comment="k8stars base: node",
        )
        return [_busybox(), glibc_layer(), agent_layer()], node
    if kind in ("cpp", "go"):
        return [_busybox(), glibc_layer()], server
    if kind == "python":
        return [debian_layer(("python3",)), python_runtime_layer()], server
    if kind == "nodejs":
        return [debian_layer(("nodejs",))], server
    raise ValueError(f"unknown kind {kind!r}: one of {', '.join(KINDS)}")


def _busybox() -> Layer:
    """busybox_layer in the builder's thread (it runs ``busybox --list-full``)."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(busybox_layer())
    finally:
        loop.close()


async def push_base(kind: str, registry: str, *, plain_http: bool | None = None) -> str:
    """Build (cached) and push the image of ``kind`` to ``registry``; returns ``registry/tars/<name>:<tag>``."""
    layers, changes = await asyncio.to_thread(_layers, kind)
    repo = f"tars/{KINDS[kind].timage}"
    async with RegistryClient(ImageRef.parse(f"{registry}/{repo}").api_host, plain_http=plain_http) as client:
        digest = await push_image(client, repo, "latest", layers, changes=changes)
        tag = digest.removeprefix("sha256:")[:12]
        await push_image(client, repo, tag, layers, changes=changes)
    return f"{registry}/{repo}:{tag}"


def timage(kind: str, image: str, existing: Obj | None = None) -> Obj:
    """TImage ``<name>`` with the release ``image`` first, before the existing ones (K8SFramework's labels:
    tars.io/ImageType, and tars.io/Supported.<type> = <type> on a base)."""
    k = KINDS[kind]
    labels = {"tars.io/ImageType": k.image_type, **{f"tars.io/Supported.{t}": t for t in k.supported}}
    tag = image.rpartition(":")[2]
    release = {"id": tag, "image": image, "createPerson": "k8stars", "createTime": now_rfc3339(),
               "mark": f"k8stars image base --kind {kind}"}  # fmt: skip
    others = [r for r in (existing or {}).get("releases") or [] if r.get("id") != tag]
    body: Obj = {"apiVersion": f"{TIMAGE.group}/{TIMAGE.version}", "kind": "TImage",
                 "metadata": {"name": k.timage, "labels": labels}, "imageType": k.image_type,
                 "releases": [release, *others][:48]}  # fmt: skip
    if k.supported:
        body["supportedType"] = list(k.supported)
    return body


async def register(kube: Kube, namespace: str, kind: str, image: str) -> Obj:
    """Record ``image`` as the newest release of the kind's TImage (created if missing)."""
    existing = await kube.get(TIMAGE, namespace, KINDS[kind].timage)
    return await kube.apply(TIMAGE, namespace, timage(kind, image, existing))
