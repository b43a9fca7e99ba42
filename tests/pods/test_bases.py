"""The node image and the cppbase without a cluster (no root needed): `k8stars image bases` pushes them to a real
registry (Debian's docker-registry on 127.0.0.1) deterministically, with K8SFramework's layout, and the node image's
agent runs with nothing but glibc: no Python."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from framework import k8stars

from k8stars.image import RegistryClient, resolve_image
from k8stars.testing.procs import free_port, stop_process, wait_port

REGISTRY = "/usr/bin/docker-registry"


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[str]:
    """host:port of a fresh docker-registry on 127.0.0.1 (scripts/test installs it)."""
    assert Path(REGISTRY).exists(), "docker-registry is missing: scripts/test installs it (Debian)"
    port = free_port()
    config = {"version": 0.1, "log": {"level": "error", "accesslog": {"disabled": True}},
              "storage": {"filesystem": {"rootdirectory": str(tmp_path / "data")}},
              "http": {"addr": f"127.0.0.1:{port}"}}  # fmt: skip
    (tmp_path / "config.yml").write_text(json.dumps(config))
    with open(tmp_path / "registry.log", "wb") as log:
        proc = subprocess.Popen([REGISTRY, "serve", str(tmp_path / "config.yml")], stdout=log, stderr=log)
    try:
        wait_port(port, proc, timeout=20)
        yield f"127.0.0.1:{port}"
    finally:
        stop_process(proc)


async def _unpack(registry: str, ref: str, dest: Path) -> dict[str, object]:
    """The image's layers unpacked into ``dest``; returns its config's ``config``."""
    repo, _, tag = ref.removeprefix(f"{registry}/").partition(":")
    async with RegistryClient(registry, plain_http=True) as client:
        image = await resolve_image(client, repo, tag)
        for i, layer in enumerate(image.layers):
            blob = await client.download_blob(repo, layer["digest"], dest.parent / f"layer{i}.tar.gz")
            assert blob.path is not None
            with tarfile.open(blob.path) as tar:
                tar.extractall(dest, filter="fully_trusted")
    config: dict[str, object] = image.config["config"]
    return config


def _bases(registry: str) -> dict[str, str]:
    out = k8stars("image", "bases", registry, "--kind", "node", "--kind", "cpp")
    return dict(line.split(" ", 1) for line in out.splitlines())


async def test_node_and_cppbase_images(registry: str, tmp_path: Path) -> None:
    first = await asyncio.to_thread(_bases, registry)
    assert await asyncio.to_thread(_bases, registry) == first  # the same inputs, the same digests (tags)
    node = await _unpack(registry, first["node"], tmp_path / "node")
    assert node["Entrypoint"] == ["/opt/k8stars/node/tarscli", "nodeinit"]
    assert "TARS_SYNC_DIRECTORY=/opt/k8stars/node" in node["Env"]  # type: ignore[operator]
    agent = tmp_path / "node" / "opt/k8stars/node/tarscli"
    assert (tmp_path / "node" / "bin/busybox").is_file() and (tmp_path / "node" / "lib64/ld-linux-x86-64.so.2").exists()
    # the agent alone, with an empty environment (no Python on PATH, no PYTHONPATH): nodeinit fills a work dir
    work = tmp_path / "work"
    env = {"TARS_SYNC_DIRECTORY": str(agent.parent), "PodIP": "10.0.0.7", "ServerApp": "Test", "ServerName": "S"}
    proc = subprocess.run([str(agent), "nodeinit", "--node-dir", str(work)], env=env, capture_output=True, text=True,
                          timeout=60, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert os.access(work / "bin" / "tarscli", os.X_OK) and (work / "bin" / "_internal").is_dir()
    assert "PodIP=10.0.0.7" in (work / "util" / "environment").read_text()

    cpp = await _unpack(registry, first["cpp"], tmp_path / "cpp")
    assert cpp["Entrypoint"] == ["/usr/local/app/tars/tarsnode/bin/tarscli", "supervisor"]
    assert "TARS_PATH=/usr/local/server" in cpp["Env"]  # type: ignore[operator]
    assert (tmp_path / "cpp" / "lib/x86_64-linux-gnu/libc.so.6").is_file()
    assert not (tmp_path / "cpp" / "opt").exists()  # a release never contains the agent
