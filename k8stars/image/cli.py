"""``k8stars image``: build server images and base images without Docker, list and publish releases, and serve
K8SFramework's build API."""

from __future__ import annotations

import asyncio
import json
import shlex
import shutil
import tempfile
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import click

from k8stars.service.commands import (
    fail,
    host_option,
    kubeconfig_option,
    log_level_option,
    namespace_option,
    port_option,
    serve_command,
)

T = TypeVar("T")
NAMESPACE_ENV = ["K8STARS_IMAGE_NAMESPACE", "POD_NAMESPACE"]
PLAIN_HTTP_HELP = "Plain HTTP to every registry (--https: to none; default: plain HTTP to loopback registries only)."


@click.group("image")
def image() -> None:
    """Build and publish images without Docker (K8SFramework's tarsimage)."""


def _run(coro: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run, mapping failures to exit codes: 2 bad arguments, 1 the registry or the cluster failed."""
    from k8stars.image.package import PackageError
    from k8stars.image.registry import RegistryError
    from k8stars.image.timage import BuildRefused
    from k8stars.kube.client import ApiException

    try:
        return asyncio.run(coro())
    except PackageError as e:
        fail(str(e), 2)
    except BuildRefused as e:
        fail(str(e), 2 if e.status == 400 else 1)
    except (RegistryError, LookupError, OSError, RuntimeError) as e:
        fail(str(e), 1)
    except ValueError as e:
        fail(str(e), 2)
    except ApiException as e:
        fail(f"Kubernetes API: {e.status} {e.reason}: {str(e.body or '')[:500]}", 1)


def _auth(path: str | None, registry: str) -> Any:
    """Credentials for ``registry`` from a docker config.json / .dockerconfigjson file."""
    from k8stars.image.reference import credentials_from_dockerconfig

    if not path:
        return None
    creds = credentials_from_dockerconfig(Path(path).read_bytes(), registry)
    if creds is None:
        raise ValueError(f"{path} has no credentials for {registry}")
    return creds


def _argv(value: str | None) -> list[str] | None:
    """A command as a JSON list, else split like a shell does."""
    if value is None:
        return None
    if value.lstrip().startswith("["):
        parsed = json.loads(value)
        if not isinstance(parsed, list):
            raise ValueError(f"{value!r}: a JSON list of strings expected")
        return [str(v) for v in parsed]
    return shlex.split(value)


plain_http_option = click.option("--plain-http/--https", default=None, help=PLAIN_HTTP_HELP)


@image.command("serve")
@host_option("K8STARS_IMAGE_HOST")
@port_option("K8STARS_IMAGE_PORT", 8080, "Port of the build API (K8SFramework's Service answers on 80).")
@namespace_option(NAMESPACE_ENV, "Namespace of the TImages, the TFrameworkConfig and the registry Secrets.")
@kubeconfig_option()
@click.option("--max-builds", envvar="K8STARS_IMAGE_MAX_BUILDS", type=int, default=5, show_default=True,
              help="Builds (uploads included) at once; more are answered 429.")  # fmt: skip
@click.option("--max-upload", "max_upload_mb", envvar="K8STARS_IMAGE_MAX_UPLOAD", type=int, default=200,
              show_default=True, help="Largest package accepted (MiB); larger ones are answered 413.")  # fmt: skip
@click.option("--max-unpacked", "max_unpacked_mb", envvar="K8STARS_IMAGE_MAX_UNPACKED", type=int, default=2048,
              show_default=True, help="Largest package once unpacked (MiB); beyond, a size bomb (400).")  # fmt: skip
@click.option("--upload-timeout", envvar="K8STARS_IMAGE_UPLOAD_TIMEOUT", type=float, default=400.0, show_default=True,
              help="Seconds to receive an upload (408 beyond): a stalled one would hold a build slot.")  # fmt: skip
@click.option("--work-dir", envvar="K8STARS_IMAGE_WORK_DIR", type=click.Path(file_okay=False), default=None,
              help="Where uploads and layers are kept during a build (default: the temporary directory).")  # fmt: skip
@plain_http_option
@log_level_option()
def serve(**values: Any) -> None:
    """Serve POST /api/{version}/timage/{timage}/building as K8SFramework's tarsimage does."""
    from k8stars.image.service import ImageService, ImageServiceOptions

    serve_command(ImageService, ImageServiceOptions, values)


@image.command("build")
@click.argument("package", type=click.Path(exists=True, dir_okay=False))
@click.option("--base", "base_image", required=True, help="Base image, e.g. 127.0.0.1:5000/tars/cppbase:v1.")
@click.option("--server-type", "server_type", default="cpp", show_default=True, help="ServerType (cpp, go, ...).")
@click.option("--image", "target", default=None, help="Push here (no Kubernetes): host/repo:tag.")
@click.option("--app", "server_app", default=None, help="ServerApp (with --namespace: build as the API does).")
@click.option("--server", "server_name", default=None, help="ServerName (with --namespace).")
@click.option("--timage", default=None, help="TImage to record on (default: lower(app)-lower(server)).")
@click.option("--tag", "server_tag", default="", help="Image tag (default: the build id).")
@click.option("--secret", default="", help="Secret with push credentials (default: imageUpload.secret).")
@click.option("--base-secret", "base_image_secret", default="", help="Secret with credentials for the base.")
@click.option("--person", "create_person", default="", help="Recorded as createPerson.")
@click.option("--mark", default="", help="Recorded as mark.")
@click.option("--auth", "auth_file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Without Kubernetes: a docker config.json with push credentials.")  # fmt: skip
@click.option("--base-auth", "base_auth_file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Without Kubernetes: a docker config.json with credentials for the base.")  # fmt: skip
@namespace_option(NAMESPACE_ENV, "Build for this namespace's TImage, recorded as the API records it.")
@kubeconfig_option()
@plain_http_option
def build(package: str, base_image: str, server_type: str, target: str | None, namespace: str | None,
          kubeconfig: str | None, plain_http: bool | None, auth_file: str | None, base_auth_file: str | None,
          **form: str) -> None:  # fmt: skip
    """Build PACKAGE (.tgz, .tar.gz, .war, .jar) on a base image and push it. With --image: straight to that
    registry; with --namespace, --app and --server: as the build API does (TFrameworkConfig registry, Secrets,
    recorded on the TImage)."""
    if target:
        _run(lambda: _build_plain(Path(package), base_image, server_type, target, plain_http, auth_file,
                                  base_auth_file))  # fmt: skip
        return
    if not (namespace and form.get("server_app") and form.get("server_name")):
        fail("give --image, or --namespace with --app and --server", 2)
    result = _run(lambda: _build_kube(Path(package), base_image, server_type, str(namespace), kubeconfig,
                                      plain_http, form))  # fmt: skip
    click.echo(json.dumps(result))


async def _build_plain(package: Path, base: str, server_type: str, target: str, plain_http: bool | None,
                       auth_file: str | None, base_auth_file: str | None) -> None:  # fmt: skip
    from k8stars.image.oci import ConfigChanges
    from k8stars.image.package import package_layer, remove_scratch, scratch_dir
    from k8stars.image.reference import ImageRef
    from k8stars.image.rootfs import push_layers_on_base

    dst, src = ImageRef.parse(target), ImageRef.parse(base)
    scratch = scratch_dir()
    try:
        server = package.name.split(".")[0]
        layer = await asyncio.to_thread(package_layer, package, package.name, server, scratch)
        ref = await push_layers_on_base(base, target, [layer], changes=ConfigChanges(env={"ServerType": server_type}),
                                        plain_http=plain_http, base_credentials=_auth(base_auth_file, src.registry),
                                        push_credentials=_auth(auth_file, dst.registry))  # fmt: skip
    finally:
        remove_scratch(scratch)
    click.echo(ref)


async def _build_kube(package: Path, base: str, server_type: str, namespace: str, kubeconfig: str | None,
                      plain_http: bool | None, form: dict[str, str]) -> dict[str, str]:  # fmt: skip
    from k8stars.image.builder import Builder, BuildRequest
    from k8stars.image.package import remove_scratch
    from k8stars.kube.client import Kube

    app, server = form.pop("server_app"), form.pop("server_name")
    name = form.pop("timage") or f"{app.lower()}-{server.lower()}"
    async with await Kube.connect(kubeconfig, field_manager="k8stars-image") as kube:
        builder = Builder(kube, namespace, plain_http=plain_http)
        scratch = builder.scratch()
        upload = scratch / "upload"
        shutil.copyfile(package, upload)
        req = BuildRequest(timage=name, server_app=app, server_name=server, server_type=server_type,
                           server_file=upload, filename=package.name, base_image=base, **form)  # fmt: skip
        builder.reserve()
        try:
            result, done = await builder.submit(req, scratch)
        except BaseException:
            remove_scratch(scratch)
            raise
        error = await done
        if error is not None:
            raise RuntimeError(f"build {result.id} failed: {error}")
        return result.json()


@image.command("base")
@click.argument("target")
@click.option("--busybox", "busybox", is_flag=True, help="From Debian's busybox-static (/bin/busybox).")
@click.option("--rootfs", type=click.Path(exists=True, dir_okay=False), default=None,
              help="From a root file system tar (e.g. mmdebstrap's).")  # fmt: skip
@click.option("--debian", "suite", default=None, metavar="SUITE",
              help="From Debian SUITE made by mmdebstrap (variant essential; needs an apt mirror).")  # fmt: skip
@click.option("--include", "includes", multiple=True, help="With --debian: packages to add (repeatable).")
@click.option("--mirror", default=None, help="With --debian: the apt mirror (default: mmdebstrap's).")
@click.option("--cmd", default=None, help='Default command: a JSON list or a shell-like string ("sleep infinity").')
@click.option("--entrypoint", default=None, help="Entrypoint: a JSON list or a shell-like string.")
@click.option("--env", "envs", multiple=True, metavar="KEY=VALUE", help="Environment (repeatable).")
@click.option("--auth", "auth_file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="A docker config.json with push credentials.")  # fmt: skip
@plain_http_option
def base(target: str, busybox: bool, rootfs: str | None, suite: str | None, includes: tuple[str, ...],
         mirror: str | None, cmd: str | None, entrypoint: str | None, envs: tuple[str, ...], auth_file: str | None,
         plain_http: bool | None) -> None:  # fmt: skip
    """Push a base image TARGET (host/repo:tag) built from a root file system, and print it by digest."""
    if sum(bool(x) for x in (busybox, rootfs, suite)) != 1:
        fail("give one of --busybox, --rootfs TAR, --debian SUITE", 2)
    try:
        env = dict(e.split("=", 1) for e in envs)
        command, entry = _argv(cmd), _argv(entrypoint)
    except ValueError as e:
        fail(f"--env/--cmd/--entrypoint: {e}", 2)
    click.echo(_run(lambda: _base(target, busybox, rootfs, suite, includes, mirror, command, entry, env, auth_file,
                                  plain_http)))  # fmt: skip


async def _base(target: str, busybox: bool, rootfs: str | None, suite: str | None, includes: tuple[str, ...],
                mirror: str | None, cmd: list[str] | None, entrypoint: list[str] | None, env: dict[str, str],
                auth_file: str | None, plain_http: bool | None) -> str:  # fmt: skip
    from k8stars.image.bases import debian_rootfs
    from k8stars.image.reference import ImageRef
    from k8stars.image.rootfs import push_busybox_image, push_rootfs_image

    ref = ImageRef.parse(target)
    creds = _auth(auth_file, ref.registry)
    if busybox:
        return await push_busybox_image(ref.registry, ref.repository, ref.tag or "latest", cmd=cmd,
                                        entrypoint=entrypoint, env=env, credentials=creds,
                                        plain_http=plain_http if plain_http is not None else True)  # fmt: skip
    if rootfs:
        return await push_rootfs_image(target, Path(rootfs), cmd=cmd, entrypoint=entrypoint, env=env,
                                       plain_http=plain_http, credentials=creds)  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="k8stars-rootfs-") as tmp:
        tar = Path(tmp) / "rootfs.tar"
        await asyncio.to_thread(debian_rootfs, str(suite), tar, includes, mirror)
        return await push_rootfs_image(target, tar, cmd=cmd, entrypoint=entrypoint, env=env, plain_http=plain_http,
                                       credentials=creds)  # fmt: skip


@image.command("bases")
@click.argument("registry")
@click.option("--kind", "kinds", multiple=True, required=True,
              type=click.Choice(["node", "cpp", "go", "python", "nodejs"]),
              help="node: the tarsnode image (the agent); cpp (= go), python, nodejs: base images.")  # fmt: skip
@click.option("-n", "--namespace", default=None, help="Also record each image on its TImage in this namespace.")
@kubeconfig_option()
@plain_http_option
def bases(registry: str, kinds: tuple[str, ...], namespace: str | None, kubeconfig: str | None,
          plain_http: bool | None) -> None:  # fmt: skip
    """Build (cached) and push K8SFramework's node image and base images to REGISTRY (host:port) as
    tars/<node|cppbase|pythonbase|nodejsbase>:<digest prefix>; print one `KIND IMAGE` line each."""

    async def run() -> list[str]:
        from k8stars.image.bases import push_base, register

        lines = []
        for kind in dict.fromkeys(kinds):
            ref = await push_base(kind, registry, plain_http=plain_http)
            if namespace:
                from k8stars.kube.client import Kube

                async with await Kube.connect(kubeconfig, field_manager="k8stars-image") as kube:
                    await register(kube, namespace, kind, ref)
            lines.append(f"{kind} {ref}")
        return lines

    for line in _run(run):
        click.echo(line)


@image.command("framework")
@click.argument("registry")
@plain_http_option
def framework(registry: str, plain_http: bool | None) -> None:
    """Build (cached) and push the framework image (the k8stars services the Helm charts run) to REGISTRY (host:port)
    as k8stars/framework:<digest prefix>; print it."""

    async def run() -> str:
        from k8stars.image.framework import push_framework

        return await push_framework(registry, plain_http=plain_http)

    click.echo(_run(run))


@image.command("releases")
@click.argument("name")
@namespace_option(NAMESPACE_ENV, "Namespace of the TImage.")
@kubeconfig_option()
@click.option("--json", "as_json", is_flag=True, help="The releases as JSON.")
def releases(name: str, namespace: str | None, kubeconfig: str | None, as_json: bool) -> None:
    """List the releases of TImage NAME (newest first; * marks the one TServer NAME runs)."""
    from k8stars.kube.client import Kube
    from k8stars.kube.resources import TIMAGE, TSERVER

    if not namespace:
        fail("--namespace is required", 2)

    async def go() -> tuple[list[dict[str, Any]], str]:
        async with await Kube.connect(kubeconfig, field_manager="k8stars-image") as kube:
            obj = await kube.get(TIMAGE, namespace, name)
            if obj is None:
                raise LookupError(f"TImage {name} not found in namespace {namespace}")
            ts = await kube.get(TSERVER, namespace, name)
            current = str((((ts or {}).get("spec") or {}).get("release") or {}).get("id", ""))
            return list(obj.get("releases") or []), current

    items, current = _run(go)
    if as_json:
        click.echo(json.dumps(items, indent=2))
        return
    for r in items:
        mark = "*" if r.get("id") == current else " "
        click.echo(f"{mark} {r.get('id', '')}  {r.get('createTime', '')}  {r.get('image', '')}  "
                   f"{r.get('createPerson', '')}  {r.get('mark', '')}".rstrip())  # fmt: skip


@image.command("release")
@click.argument("name")
@click.argument("release_id", metavar="ID")
@namespace_option(NAMESPACE_ENV, "Namespace of the TImage and the TServer.")
@kubeconfig_option()
def release(name: str, release_id: str, namespace: str | None, kubeconfig: str | None) -> None:
    """Publish release ID of TImage NAME: TServer NAME's spec.release becomes it (rollback: an older ID)."""
    from k8stars.image.timage import publish_release
    from k8stars.kube.client import Kube

    if not namespace:
        fail("--namespace is required", 2)

    async def go() -> dict[str, Any]:
        async with await Kube.connect(kubeconfig, field_manager="k8stars-image") as kube:
            return await publish_release(kube, str(namespace), name, release_id)

    click.echo(json.dumps(_run(go)))
