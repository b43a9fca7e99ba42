"""Images we push, checked by an independent client (skopeo) against a real registry (Debian's docker-registry):
busybox bases, layers on bases (OCI and Docker v2, an index, another repository, another registry), determinism,
authentication, retries and a registry that goes away."""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import tarfile
from pathlib import Path

import pytest
from aiohttp import web
from imaging import USERS
from registries import Front, LocalRegistry, copy_to_dir, inspect, skopeo

from k8stars.image import (
    AuthError,
    ConfigChanges,
    Credentials,
    LayerBuilder,
    RegistryClient,
    RegistryError,
    RegistryUnavailable,
    credentials_from_dockerconfig,
    push_busybox_image,
    push_files_on_base,
    push_image,
    resolve_image,
)
from k8stars.image.layer import Blob


def layer_members(path: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(path, "r:gz") as tar:
        return {m.name: m for m in tar.getmembers()}


def layer_file(path: Path, name: str) -> bytes:
    with tarfile.open(path, "r:gz") as tar:
        f = tar.extractfile(name)
        assert f is not None
        return f.read()


async def test_busybox_image_as_a_pause_image(registry: LocalRegistry, busybox: Path, tmp_path: Path) -> None:
    ref = await push_busybox_image(registry.host, "k8stars/pause", "1", cmd=["/bin/sleep", "infinity"])
    assert ref.startswith(f"{registry.host}/k8stars/pause@sha256:")
    info = inspect(f"{registry.host}/k8stars/pause:1")
    assert info["Digest"] == ref.split("@")[1] and info["Os"] == "linux" and info["Architecture"] == "amd64"
    config = json.loads(skopeo("inspect", "--config", "--tls-verify=false", f"docker://{ref}"))
    assert config["config"]["Cmd"] == ["/bin/sleep", "infinity"]
    manifest = copy_to_dir(ref, tmp_path / "dir")
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    (layer,) = manifest["layers"]
    blob = tmp_path / "dir" / layer["digest"].split(":")[1]
    members = layer_members(blob)
    assert members["bin/busybox"].isreg() and members["bin/busybox"].mode == 0o755
    assert members["bin/busybox"].size == busybox.stat().st_size
    assert members["bin/sh"].issym() and members["bin/sh"].linkname == "/bin/busybox"
    assert members["bin/sleep"].issym() and members["tmp"].mode == 0o1777
    assert layer_file(blob, "etc/passwd").startswith(b"root:x:0:0:")
    assert layer_file(blob, "etc/group").startswith(b"root:x:0:")
    assert all(m.mtime == 0 and m.uid == 0 and m.gid == 0 for m in members.values())
    names = list(members)
    assert names == sorted(names)


async def test_same_inputs_same_digests(registry: LocalRegistry, busybox: Path) -> None:
    first = await push_busybox_image(registry.host, "a/busybox", "1")
    second = await push_busybox_image(registry.host, "b/busybox", "2")
    assert first.split("@")[1] == second.split("@")[1]
    files = {"usr/local/server/bin/run.sh": b"#!/bin/sh\necho hello\n"}
    one = await push_files_on_base(f"{registry.host}/a/busybox:1", f"{registry.host}/app/x:1", files)
    two = await push_files_on_base(f"{registry.host}/a/busybox:1", f"{registry.host}/app/x:2", files)
    assert one.split("@")[1] == two.split("@")[1]
    # a layer is a pure function of its entries, whatever the order they were added in
    b1, b2 = LayerBuilder(), LayerBuilder()
    b1.add_file("z/1", b"1")
    b1.add_file("a/2", b"2")
    b2.add_file("a/2", b"2")
    b2.add_file("z/1", b"1")
    assert b1.write().digest == b2.write().digest


async def test_files_on_a_base_in_another_repository(registry: LocalRegistry, busybox: Path, tmp_path: Path) -> None:
    await push_busybox_image(registry.host, "tars/base", "v1")
    changes = ConfigChanges(env={"ServerType": "cpp"})
    ref = await push_files_on_base(f"{registry.host}/tars/base:v1", f"{registry.host}/testapp.hello:v2",
                                   {"usr/local/server/bin/hello": b"\x7fELF..."}, changes=changes)  # fmt: skip
    config = json.loads(skopeo("inspect", "--config", "--tls-verify=false", f"docker://{ref}"))
    assert "ServerType=cpp" in config["config"]["Env"] and config["config"]["Cmd"] == ["/bin/sh"]
    assert len(config["rootfs"]["diff_ids"]) == 2
    manifest = copy_to_dir(ref, tmp_path / "dir")
    base_layer, server_layer = manifest["layers"]
    members = layer_members(tmp_path / "dir" / server_layer["digest"].split(":")[1])
    assert list(members) == ["usr", "usr/local", "usr/local/server", "usr/local/server/bin",
                             "usr/local/server/bin/hello"]  # fmt: skip
    assert members["usr/local/server/bin/hello"].mode == 0o755
    assert base_layer == inspect(f"{registry.host}/tars/base:v1", "--raw")["layers"][0]
    # into a third repository through a front that records the calls: the base layer is mounted, not sent
    calls: list[tuple[str, str]] = []

    def record(request: web.Request) -> None:
        calls.append((request.method, str(request.rel_url)))

    async with Front(registry, record) as front:
        await push_files_on_base(f"{front.host}/tars/base:v1", f"{front.host}/testapp.other:v1",
                                 {"usr/local/server/bin/hello": b"other"})  # fmt: skip
    mounts = [url for method, url in calls if method == "POST" and "mount=" in url]
    assert mounts and all("from=tars" in url for url in mounts)
    assert base_layer["digest"] in " ".join(mounts)
    assert not any(method == "PUT" and base_layer["digest"] in url for method, url in calls)


async def test_docker_v2_base_and_index(registry: LocalRegistry, busybox: Path, tmp_path: Path) -> None:
    """A Docker v2 schema 2 base gives a Docker v2 image; an index resolves to its linux/amd64 image."""
    await push_busybox_image(registry.host, "tars/base", "oci")
    await push_busybox_image(registry.host, "tars/base", "other", cmd=["/bin/true"])  # listed as the arm64 image
    skopeo("copy", "--src-tls-verify=false", "--dest-tls-verify=false", "--format", "v2s2",
           f"docker://{registry.host}/tars/base:oci", f"docker://{registry.host}/tars/base:docker")  # fmt: skip
    ref = await push_files_on_base(f"{registry.host}/tars/base:docker", f"{registry.host}/app/d:1",
                                   {"usr/local/server/bin/a": b"a"})  # fmt: skip
    manifest = copy_to_dir(ref, tmp_path / "docker")
    assert manifest["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert manifest["layers"][1]["mediaType"] == "application/vnd.docker.image.rootfs.diff.tar.gzip"

    async with RegistryClient(registry.host) as client:
        amd64 = await client.get_manifest("tars/base", "oci")
        other = await client.get_manifest("tars/base", "other")
        index = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [
                {"mediaType": other.media_type, "digest": other.digest, "size": len(other.data),
                 "platform": {"os": "linux", "architecture": "arm64"}},
                {"mediaType": amd64.media_type, "digest": amd64.digest, "size": len(amd64.data),
                 "platform": {"os": "linux", "architecture": "amd64"}},
            ],
        }  # fmt: skip
        await client.put_manifest("tars/base", "multi", index["mediaType"], json.dumps(index).encode())
        resolved = await resolve_image(client, "tars/base", "multi")
        assert resolved.manifest.digest == amd64.digest
    ref = await push_files_on_base(f"{registry.host}/tars/base:multi", f"{registry.host}/app/m:1",
                                   {"usr/local/server/bin/a": b"a"})  # fmt: skip
    assert len(inspect(ref)["Layers"]) == 2


def docker_config(host: str, user: str, password: str) -> bytes:
    import base64

    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    return json.dumps({"auths": {host: {"auth": auth}}}).encode()


async def test_credentials(auth_registry: LocalRegistry, registry: LocalRegistry, busybox: Path) -> None:
    (user, password), host = next(iter(USERS.items())), auth_registry.host
    creds = credentials_from_dockerconfig(docker_config(host, user, password), host)
    assert creds == Credentials(user, password) and password not in repr(creds)
    with pytest.raises(AuthError, match="needs credentials and none were given"):
        await push_busybox_image(host, "tars/base", "1")
    with pytest.raises(AuthError, match="the credentials were refused: 401 UNAUTHORIZED"):
        await push_busybox_image(host, "tars/base", "1", credentials=Credentials(user, "wrong"))
    ref = await push_busybox_image(host, "tars/base", "1", credentials=creds)
    skopeo("inspect", "--tls-verify=false", "--creds", f"{user}:{password}", f"docker://{ref}")
    # from a base on the plain registry to the authenticated one: blobs copied between registries
    await push_busybox_image(registry.host, "tars/base", "1", cmd=["/bin/true"])
    ref = await push_files_on_base(f"{registry.host}/tars/base:1", f"{host}/app/x:1", {"usr/local/server/bin/a": b"a"},
                                   push_credentials=creds)  # fmt: skip
    info = json.loads(skopeo("inspect", "--tls-verify=false", "--creds", f"{user}:{password}", f"docker://{ref}"))
    assert len(info["Layers"]) == 2


async def test_retries_on_5xx(registry: LocalRegistry, busybox: Path) -> None:
    """A front answers 503 to every third call: the push still completes."""
    seen = {"n": 0, "failed": 0}

    def flaky(_: web.Request) -> web.Response | None:
        seen["n"] += 1
        if seen["n"] % 3:
            return None
        seen["failed"] += 1
        return web.Response(status=503, text="try later")

    async with Front(registry, flaky) as front:
        ref = await push_busybox_image(front.host, "tars/flaky", "1")
    assert seen["failed"] >= 2
    assert inspect(f"{registry.host}/tars/flaky:1")["Digest"] == ref.split("@")[1]


async def test_bearer_token_auth(registry: LocalRegistry, busybox: Path) -> None:
    """A registry with a token service (as Docker Hub, Harbor, GitLab): the challenge's realm gives a token for
    the scope, with the Basic credentials; a wrong password gets no token."""
    creds = Credentials("robot", "t0ken-pass")
    scopes: list[str] = []

    def need_token(request: web.Request) -> web.Response | None:
        if request.headers.get("Authorization") == "Bearer good-token":
            return None
        repo = request.path.split("/blobs/")[0].split("/manifests/")[0].removeprefix("/v2/")
        challenge = (f'Bearer realm="http://{front.host}/token",service="test-registry",'
                     f'scope="repository:{repo}:pull,push"')  # fmt: skip
        return web.json_response({"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]},
                                 status=401, headers={"WWW-Authenticate": challenge})  # fmt: skip

    async def token(request: web.Request) -> web.Response:
        scopes.extend(request.query.getall("scope", []))
        if request.headers.get("Authorization") != creds.basic():
            return web.json_response({"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]}, status=401)
        return web.json_response({"token": "good-token"})

    async with Front(registry, need_token, {"/token": token}) as front:
        ref = await push_busybox_image(front.host, "tars/bearer", "1", credentials=creds)
        with pytest.raises(AuthError, match="the token service refused: 401 bad credentials"):
            await push_busybox_image(front.host, "tars/bearer", "2", credentials=Credentials("robot", "wrong"))
    assert "repository:tars/bearer:pull,push" in scopes
    assert inspect(f"{registry.host}/tars/bearer:1")["Digest"] == ref.split("@")[1]


async def test_registry_gone(registry: LocalRegistry, busybox: Path) -> None:
    host = registry.host
    registry.stop()
    with pytest.raises(RegistryUnavailable, match=f"registry {host}: .*"):
        async with RegistryClient(host, retries=1) as client:
            await client.push_blob("tars/x", Blob.of(b"data"))


async def test_digest_mismatch_is_refused(registry: LocalRegistry) -> None:
    """A blob whose bytes do not match its digest never lands; a manifest read by digest is checked."""
    async with RegistryClient(registry.host) as client:
        bad = Blob(digest="sha256:" + "1" * 64, size=4, data=b"data")
        with pytest.raises(RegistryError, match=r"DIGEST_INVALID|does not match"):
            await client.push_blob("tars/x", bad)
        assert not await client.blob_exists("tars/x", bad.digest)


def test_layer_writes_hard_links_after_their_file(tmp_path: Path) -> None:
    b = LayerBuilder()
    b.add_file("b/file", b"content", mode=0o755)
    b.add_hardlink("a/link", "b/file")
    layer = b.write(tmp_path)
    assert layer.path is not None
    members = layer_members(layer.path)
    # "a/link" sorts first, so it is the file and "b/file" the link to it
    assert members["a/link"].isreg() and members["b/file"].islnk() and members["b/file"].linkname == "a/link"
    raw = gzip.decompress(layer.path.read_bytes())
    assert layer.diff_id.split(":")[1] == __import__("hashlib").sha256(raw).hexdigest()
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        tar.extractall(tmp_path / "out", filter="data")
    assert (tmp_path / "out/b/file").read_bytes() == b"content"
    with pytest.raises(ValueError, match="bad path"):
        b.add_file("../escape", b"x")


async def test_push_image_from_scratch(registry: LocalRegistry) -> None:
    b = LayerBuilder()
    b.add_file("hello.txt", b"hi")
    async with RegistryClient(registry.host) as client:
        digest = await push_image(client, "scratch/one", "v1", [await asyncio.to_thread(b.write)])
    assert inspect(f"{registry.host}/scratch/one@{digest}")["Digest"] == digest
