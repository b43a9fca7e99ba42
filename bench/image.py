"""bench/image: building and pushing images without Docker, against Debian's ``docker-registry`` on 127.0.0.1.

Measures:
- a busybox base image (Debian busybox-static) built and pushed, cold (empty registry) and again (blobs present);
- a server image: a 10 MB package (incompressible) checked, made a layer and pushed on that base, the base cached
  in the registry (its blobs mounted or present): p50 / p90 over ``--runs`` builds, each a new package;
- five such builds at once (wall time);
- with ``--debian SUITE``: a Debian root file system by mmdebstrap (variant essential, with python3) pushed as a
  base; skipped with the reason when mmdebstrap cannot reach its apt mirror.

Run: ``python -m bench.image [--runs 10] [--size-mb 10] [--debian bookworm]``.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from k8stars.image import ConfigChanges, push_busybox_image, push_rootfs_image
from k8stars.image.oci import push_image, resolve_image
from k8stars.image.package import package_layer
from k8stars.image.registry import RegistryClient
from k8stars.image.rootfs import cache_dir
from k8stars.testing.procs import free_port, stop_process, wait_port


@contextmanager
def registry(root: Path) -> Iterator[str]:
    port = free_port()
    config = {
        "version": 0.1,
        "log": {"level": "error", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(root / "data")}},
        "http": {"addr": f"127.0.0.1:{port}"},
        "health": {"storagedriver": {"enabled": False}},
    }
    (root / "config.yml").write_text(json.dumps(config))
    exe = shutil.which("docker-registry") or "/usr/bin/docker-registry"
    proc = subprocess.Popen([exe, "serve", str(root / "config.yml")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        wait_port(port, proc)
        yield f"127.0.0.1:{port}"
    finally:
        stop_process(proc)


def package(size: int) -> bytes:
    """A server package: the executable and ``size`` bytes of incompressible data."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=6) as tar:
        for name, data in (("Bench/Bench", b"#!/bin/sh\nexec sleep infinity\n"), ("Bench/data.bin", os.urandom(size))):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


async def build(host: str, base_repo: str, pkg: Path, tag: str, work: Path) -> float:
    """Package -> layer -> pushed on the base; seconds."""
    start = time.perf_counter()
    scratch = Path(tempfile.mkdtemp(dir=work))
    layer = await asyncio.to_thread(package_layer, pkg, pkg.name, "Bench", scratch)
    async with RegistryClient(host) as client:
        base = await resolve_image(client, base_repo, "v1")
        await push_image(client, "bench/bench.server", tag, [layer], base=base, base_client=client,
                         changes=ConfigChanges(env={"ServerType": "cpp"}), cache=cache_dir())  # fmt: skip
    shutil.rmtree(scratch, ignore_errors=True)
    return time.perf_counter() - start


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--size-mb", type=int, default=10)
    parser.add_argument("--debian", metavar="SUITE", default=None, help="Also a Debian base by mmdebstrap.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-image-") as tmp, registry(Path(tmp)) as host:
        work = Path(tmp) / "work"
        work.mkdir()
        os.environ["XDG_DATA_HOME"] = str(Path(tmp) / "xdg")
        t = time.perf_counter()
        await push_busybox_image(host, "tars/cppbase", "v1")
        cold = time.perf_counter() - t
        t = time.perf_counter()
        await push_busybox_image(host, "tars/cppbase", "v1")
        print(f"busybox base image: {ms(cold)} cold, {ms(time.perf_counter() - t)} again (blobs present)")

        size = args.size_mb << 20
        pkgs = []
        for i in range(args.runs + 5):
            path = work / f"Bench-{i}.tgz"
            path.write_bytes(package(size))
            pkgs.append(path)
        times = [await build(host, "tars/cppbase", pkgs[i], f"r{i}", work) for i in range(args.runs)]
        q = statistics.quantiles(times, n=10)
        print(f"build + push of a {args.size_mb} MB package on a cached base: p50 {ms(statistics.median(times))}, "
              f"p90 {ms(q[8])}, min {ms(min(times))} ({args.runs} runs, each a new package)")  # fmt: skip
        t = time.perf_counter()
        together = await asyncio.gather(*(build(host, "tars/cppbase", pkgs[args.runs + i], f"c{i}", work)
                                          for i in range(5)))  # fmt: skip
        print(f"5 builds at once: {ms(time.perf_counter() - t)} wall, each {ms(min(together))}..{ms(max(together))}")

        if args.debian:
            await debian(host, args.debian, Path(tmp))


async def debian(host: str, suite: str, tmp: Path) -> None:
    from k8stars.image.bases import debian_rootfs

    tar = tmp / "rootfs.tar"
    t = time.perf_counter()
    try:
        await asyncio.to_thread(debian_rootfs, suite, tar, ("python3", "ca-certificates"))
    except RuntimeError as e:
        print(f"debian base: skipped ({str(e).splitlines()[-1][:200]})")
        return
    made = time.perf_counter() - t
    t = time.perf_counter()
    ref = await push_rootfs_image(f"{host}/tars/python:{suite}", tar, cmd=["/usr/bin/python3"])
    pushed = time.perf_counter() - t
    async with RegistryClient(host) as client:
        layers = (await client.get_manifest("tars/python", suite)).json()["layers"]
    print(f"debian {suite} base with python3: mmdebstrap {made:.1f} s ({tar.stat().st_size >> 20} MB tar), layer + "
          f"push {pushed:.1f} s ({layers[0]['size'] >> 20} MB gzip'd) -> {ref}")  # fmt: skip


if __name__ == "__main__":
    if sys.platform != "linux":
        raise SystemExit("bench/image needs Linux (docker-registry, busybox-static)")
    asyncio.run(main())
