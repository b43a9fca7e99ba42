"""The framework image: the k8stars services (operator, registry, config, notify, stat, log, image builder, web
console) that the Helm charts run, as `k8stars <service>` / `tarscli`.

Two layers on nothing else: Debian with python3 (mmdebstrap, the same cached layer as the python base) and the
runtime, installed once per hash of its inputs: k8stars' sources and its dependencies (pip ``--target`` into
Debian's ``/usr/local/lib/python3.X/dist-packages``), compiled to ``.pyc`` whose validity does not depend on
mtimes (the chart's pods have a read-only root: nothing could be compiled at run time), the codec's C accelerator
when the checkout has it built (the host's Python and Debian's share the minor version and glibc), and the
``k8stars`` and ``tarscli`` scripts in ``/usr/local/bin``. Pushed as ``<registry>/k8stars/framework:<tag>``, the tag
the first 12 hex digits of the manifest's digest: the same inputs give the same tag.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.metadata
import shutil
import sys
import tempfile
from pathlib import Path

from k8stars.paths import cache_home

from .bases import _memo, _run, _tree_layer, debian_layer
from .layer import Layer
from .oci import DEFAULT_PATH, ConfigChanges, push_image
from .reference import ImageRef
from .registry import RegistryClient

REPOSITORY = "k8stars/framework"
SCRIPTS = {"k8stars": "k8stars.cli", "tarscli": "k8stars.tarscli.cli"}  # /usr/local/bin/<name> -> <module>.main()


def requirements() -> list[str]:
    """k8stars' own dependencies (no extras), as its package metadata declares them."""
    declared = importlib.metadata.requires("k8stars") or []
    return sorted(r for r in declared if "extra ==" not in r)


def runtime_key(package: Path, deps: list[str]) -> str:
    """A hash of everything the runtime layer is made from."""
    h = hashlib.sha256(f"framework\0{sys.version}\0{deps}\0{sorted(SCRIPTS.items())}\0".encode())
    for f in sorted(p for p in package.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        if f.suffix == ".pyc":
            continue
        h.update(str(f.relative_to(package)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def runtime_layer() -> Layer:
    package = Path(__file__).resolve().parents[1]
    deps = requirements()
    key = runtime_key(package, deps)
    return _memo(f"framework-runtime:{key}", lambda: _runtime(package, deps))


def _runtime(package: Path, deps: list[str]) -> Layer:
    with tempfile.TemporaryDirectory(dir=cache_home()) as tmp:
        root = Path(tmp)
        # Debian's python3 is the host's minor version (bookworm: 3.11), as the compiled wheels must be
        site = root / f"usr/local/lib/python3.{sys.version_info.minor}/dist-packages"
        _run([sys.executable, "-m", "pip", "install", "--quiet", "--no-compile", "--disable-pip-version-check",
              "--target", str(site), *deps], timeout=900)  # fmt: skip
        shutil.copytree(package, site / "k8stars",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))  # fmt: skip
        # unchecked-hash: valid whatever the files' mtimes in the layer; -d: tracebacks name the image's paths
        _run([sys.executable, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash",
              "-d", f"/{site.relative_to(root)}", str(site)], timeout=900)  # fmt: skip
        bin_dir = root / "usr/local/bin"
        bin_dir.mkdir(parents=True)
        for name, module in SCRIPTS.items():
            script = bin_dir / name
            script.write_text(f"#!/usr/bin/python3\nfrom {module} import main\n\nmain()\n")
            script.chmod(0o755)
        return _tree_layer(root, "")


def _layers() -> tuple[list[Layer], ConfigChanges]:
    changes = ConfigChanges(
        env={"PATH": DEFAULT_PATH.partition("=")[2], "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"},
        cmd=["k8stars", "--help"],
        comment="k8stars image framework",
    )
    return [debian_layer(("python3",)), runtime_layer()], changes


async def push_framework(registry: str, *, plain_http: bool | None = None) -> str:
    """Build (cached) and push the framework image to ``registry``; returns ``registry/k8stars/framework:<tag>``."""
    layers, changes = await asyncio.to_thread(_layers)
    async with RegistryClient(ImageRef.parse(f"{registry}/{REPOSITORY}").api_host, plain_http=plain_http) as client:
        digest = await push_image(client, REPOSITORY, "latest", layers, changes=changes)
        tag = digest.removeprefix("sha256:")[:12]
        await push_image(client, REPOSITORY, tag, layers, changes=changes)
    return f"{registry}/{REPOSITORY}:{tag}"
