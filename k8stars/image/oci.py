"""Images as a registry holds them: reading a base (an index or list -> the linux/amd64 manifest, then its config)
and pushing a new image = the base's layers (present already, mounted across repositories, or copied between
registries) + new layers + a config with the changes, under a tag."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .layer import Blob, Layer
from .registry import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    Manifest,
    RegistryClient,
    RegistryError,
)

__all__ = ["BaseImage", "ConfigChanges", "push_image", "resolve_image"]

OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PLATFORM = ("linux", "amd64")
PARALLEL_BLOBS = 4


@dataclass(frozen=True)
class BaseImage:
    """A resolved single-platform image: where it lives, its manifest and its config."""

    repository: str
    manifest: Manifest
    config: dict[str, Any]

    @property
    def layers(self) -> list[dict[str, Any]]:
        return list(self.manifest.json().get("layers") or [])

    @property
    def docker(self) -> bool:
        return self.manifest.media_type == DOCKER_MANIFEST


@dataclass
class ConfigChanges:
    """What a build changes in the image config (Dockerfile's ENV, ENTRYPOINT, CMD, WORKDIR, LABEL)."""

    env: dict[str, str] = field(default_factory=dict)
    entrypoint: list[str] | None = None
    cmd: list[str] | None = None
    workdir: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    comment: str = "k8stars image build"


async def resolve_image(
    client: RegistryClient, repo: str, reference: str, platform: tuple[str, str] = PLATFORM
) -> BaseImage:
    """The image ``repo:reference``; an index or manifest list gives its ``platform`` (linux/amd64) entry."""
    manifest = await client.get_manifest(repo, reference)
    if manifest.media_type in (OCI_INDEX, DOCKER_LIST):
        entries = manifest.json().get("manifests") or []
        chosen = [
            m
            for m in entries
            if isinstance(m, dict)
            and (m.get("platform") or {}).get("os") == platform[0]
            and (m.get("platform") or {}).get("architecture") == platform[1]
        ]
        if not chosen:
            raise RegistryError(f"registry {client.registry}: {repo}:{reference} has no {'/'.join(platform)} image")
        manifest = await client.get_manifest(repo, str(chosen[0]["digest"]))
        if manifest.media_type not in (OCI_MANIFEST, DOCKER_MANIFEST):
            raise RegistryError(f"registry {client.registry}: {repo}:{reference}: nested index")
    body = manifest.json()
    config_digest = str((body.get("config") or {}).get("digest", ""))
    if not config_digest:
        raise RegistryError(f"registry {client.registry}: {repo}:{reference}: manifest without a config")
    try:
        config = json.loads(await client.get_blob(repo, config_digest))
    except ValueError:
        raise RegistryError(f"registry {client.registry}: {repo}:{reference}: the config is not JSON") from None
    if not isinstance(config, dict):
        raise RegistryError(f"registry {client.registry}: {repo}:{reference}: the config is not an object")
    if len(body.get("layers") or []) != len((config.get("rootfs") or {}).get("diff_ids") or []):
        raise RegistryError(f"registry {client.registry}: {repo}:{reference}: layers and diff_ids disagree")
    return BaseImage(repo, manifest, config)


def _config(base: BaseImage | None, layers: list[Layer], changes: ConfigChanges) -> dict[str, Any]:
    config: dict[str, Any] = json.loads(json.dumps(base.config)) if base else {}
    config.pop("created", None)  # no build time: the same inputs give the same image digest
    config.setdefault("architecture", PLATFORM[1])
    config.setdefault("os", PLATFORM[0])
    cfg: dict[str, Any] = config.setdefault("config", {}) or {}
    config["config"] = cfg
    env: list[str] = list(cfg.get("Env") or ([] if base else [DEFAULT_PATH]))
    for key, value in changes.env.items():
        env = [e for e in env if e.split("=", 1)[0] != key] + [f"{key}={value}"]
    if env:
        cfg["Env"] = env
    if changes.entrypoint is not None:
        cfg["Entrypoint"] = changes.entrypoint
        cfg.pop("Cmd", None)  # as Dockerfile's ENTRYPOINT resets an inherited CMD
    if changes.cmd is not None:
        cfg["Cmd"] = changes.cmd
    if changes.workdir is not None:
        cfg["WorkingDir"] = changes.workdir
    if changes.labels:
        cfg["Labels"] = {**(cfg.get("Labels") or {}), **changes.labels}
    rootfs = config.setdefault("rootfs", {"type": "layers", "diff_ids": []})
    rootfs["type"] = "layers"
    rootfs["diff_ids"] = list(rootfs.get("diff_ids") or []) + [layer.diff_id for layer in layers]
    history = list(config.get("history") or [])
    history += [{"created_by": changes.comment} for _ in layers]
    config["history"] = history
    return config


async def _present(
    push: RegistryClient, repo: str, desc: dict[str, Any], base: BaseImage, base_client: RegistryClient, cache: Path
) -> None:
    """Make a base layer present in the target repository: there already, mounted (same registry), else copied
    through the local cache."""
    digest, size = str(desc["digest"]), int(desc.get("size", 0))
    if await push.blob_exists(repo, digest):
        return
    if push.base == base_client.base and repo != base.repository:
        if await push.mount_blob(repo, digest, base.repository):
            return
    path = cache / "blobs" / digest.replace(":", "/")
    if not path.exists():
        await base_client.download_blob(base.repository, digest, path)
    await push.push_blob(repo, Blob(digest=digest, size=size or path.stat().st_size, path=path))


async def push_image(
    push: RegistryClient,
    repo: str,
    tag: str,
    layers: list[Layer],
    *,
    base: BaseImage | None = None,
    base_client: RegistryClient | None = None,
    changes: ConfigChanges | None = None,
    cache: Path | None = None,
) -> str:
    """Push ``base`` + ``layers`` with ``changes`` as ``repo:tag``; returns the manifest's digest. The manifest
    follows the base's format (Docker v2 or OCI; OCI without a base)."""
    changes = changes or ConfigChanges()
    docker = base is not None and base.docker
    sem = asyncio.Semaphore(PARALLEL_BLOBS)

    async def bounded(coro: Any) -> None:
        async with sem:
            await coro

    jobs = [bounded(push.push_blob(repo, layer)) for layer in layers]
    if base is not None:
        if base_client is None or cache is None:
            raise ValueError("push_image: a base needs its client and a cache directory")
        jobs += [bounded(_present(push, repo, d, base, base_client, cache)) for d in base.layers]
    await asyncio.gather(*jobs)
    config = Blob.of(json.dumps(_config(base, layers, changes), sort_keys=True, separators=(",", ":")).encode())
    await push.push_blob(repo, config)
    layer_type = DOCKER_LAYER if docker else OCI_LAYER
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST if docker else OCI_MANIFEST,
        "config": {"mediaType": DOCKER_CONFIG if docker else OCI_CONFIG, "digest": config.digest, "size": config.size},
        "layers": (base.layers if base else [])
        + [{"mediaType": layer_type, "digest": layer.digest, "size": layer.size} for layer in layers],
    }
    data = json.dumps(manifest, separators=(",", ":")).encode()
    return await push.put_manifest(repo, tag, manifest["mediaType"], data)
