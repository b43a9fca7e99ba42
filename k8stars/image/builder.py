"""K8SFramework's image build: a server package on a base image, pushed to the namespace's registry and recorded
on the TImage. The package is checked and turned into a layer before anything is recorded or pushed; then the
build runs in the background (phases Pending -> Preparing -> Submitting -> Building -> Pushing -> Done | Failed)
under the TFrameworkConfig's ``imageBuild.maxBuildTime`` deadline."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import re
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

from k8stars.kube.client import Kube, Obj

from . import timage
from .layer import Layer
from .oci import ConfigChanges, push_image, resolve_image
from .package import PackageError, PackageLimits, package_kind, package_layer, remove_scratch, scratch_dir
from .reference import ImageRef
from .registry import RegistryClient, RegistryError
from .rootfs import cache_dir

__all__ = ["SERVER_TYPES", "BuildRequest", "BuildResult", "Builder", "new_build_id"]

log = logging.getLogger("k8stars.image")

SERVER_TYPES = ("cpp", "java-jar", "java-war", "nodejs", "nodejs-pkg", "go", "php", "python")
MAX_BUILDS = 5  # K8SFramework's MaximumConcurrencyBuildTask
SWEEP_INTERVAL = 30.0
STOPPED = "the image service stopped during the build"
_NAME = re.compile(r"^[A-Za-z][0-9A-Za-z]{0,62}$")  # TServer app and server
_TAG = re.compile(r"^[a-z0-9][a-z0-9.-]{0,127}$")  # what the TImage's image pattern lets through
_K8S_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_UNSET = ("", "undefined", "null")  # what a JavaScript form sends for a field it did not fill


def new_build_id(now: float | None = None) -> str:
    """K8SFramework's id shape ``v<YYYYMMDDhhmmss>-<6 hex>``, but on a 24-hour UTC clock with the milliseconds in
    the hex part, so that ids sort by time."""
    now = time.time() if now is None else now
    stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(now))
    millis = int(now * 1000) % 1000
    return f"v{stamp}-{0x100000 + millis * 4096 + random.randrange(4096):x}"


def handler_name() -> str:
    """Who handles builds (the reply's and build state's ``handler``): the pod name, else this host's name."""
    return os.environ.get("POD_NAME") or socket.gethostname()


@dataclass
class BuildRequest:
    """The multipart form of ``POST /api/{version}/timage/{timage}/building``."""

    timage: str
    server_app: str
    server_name: str
    server_type: str
    server_file: Path  # the saved upload
    filename: str  # the upload's own name (its suffix says the kind)
    base_image: str
    server_tag: str = ""
    secret: str = ""
    base_image_secret: str = ""
    create_person: str = ""
    mark: str = ""

    def check(self) -> None:
        """BuildRefused (400) for a form K8SFramework's validation rules refuse."""
        for key in ("secret", "base_image_secret", "server_tag", "create_person", "mark"):
            if getattr(self, key).strip() in _UNSET:
                setattr(self, key, "")
        if not _K8S_NAME.match(self.timage):
            raise timage.BuildRefused(f"bad TImage name {self.timage!r}")
        if not _NAME.match(self.server_app):
            raise timage.BuildRefused(f"ServerApp {self.server_app!r}: a letter then letters and digits expected")
        if not _NAME.match(self.server_name):
            raise timage.BuildRefused(f"ServerName {self.server_name!r}: a letter then letters and digits expected")
        if self.server_type not in SERVER_TYPES:
            raise timage.BuildRefused(f"ServerType {self.server_type!r}: one of {', '.join(SERVER_TYPES)} expected")
        if self.server_tag and not _TAG.match(self.server_tag):
            raise timage.BuildRefused(f"ServerTag {self.server_tag!r}: lower case letters, digits, . and - expected")
        if not self.base_image:
            raise timage.BuildRefused("BaseImage is required")
        try:
            ImageRef.parse(self.base_image)
        except ValueError as e:
            raise timage.BuildRefused(f"BaseImage: {e}") from None
        for key, label in (("secret", "Secret"), ("base_image_secret", "BaseImageSecret")):
            value = getattr(self, key)
            if value and not _K8S_NAME.match(value):
                raise timage.BuildRefused(f"{label} {value!r} is not a Secret name")
        try:
            package_kind(self.filename)
        except PackageError as e:
            raise timage.BuildRefused(f"ServerFile: {e}") from None


@dataclass(frozen=True)
class BuildResult:
    id: str
    image: str
    secret: str
    source: str

    def json(self) -> dict[str, str]:
        return {"id": self.id, "image": self.image, "secret": self.secret, "source": self.source}


@dataclass
class _Build:
    request: BuildRequest
    result: BuildResult
    state: Obj
    layer: Layer
    scratch: Path
    framework: timage.Framework
    done: asyncio.Future[str | None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    steps: asyncio.Future[None] | None = None


class Builder:
    """Builds of one namespace: at most ``max_builds`` at once (uploads included), each under its deadline."""

    def __init__(
        self,
        kube: Kube,
        namespace: str,
        *,
        max_builds: int = MAX_BUILDS,
        workdir: Path | None = None,
        plain_http: bool | None = None,
        limits: PackageLimits | None = None,
        handler: str | None = None,
    ) -> None:
        self.kube, self.namespace = kube, namespace
        self.max_builds = max_builds
        self.workdir = workdir
        self.plain_http = plain_http
        self.limits = limits or PackageLimits()
        self.handler = handler or handler_name()
        self.slots = 0  # uploads and builds in progress
        self.builds: dict[str, _Build] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self.closing = False

    # -- slots: taken when an upload starts, given back when its build ends -------------------------------------

    def reserve(self) -> bool:
        if self.slots >= self.max_builds:
            return False
        self.slots += 1
        return True

    def release(self) -> None:
        self.slots = max(0, self.slots - 1)

    def scratch(self) -> Path:
        return scratch_dir(self.workdir)

    # -- the build -----------------------------------------------------------------------------------------------

    async def submit(self, req: BuildRequest, scratch: Path) -> tuple[BuildResult, asyncio.Future[str | None]]:
        """Check the form and the package, claim the TImage and start the build, which takes over the reserved
        slot and ``scratch``. Returns the result and a future of the build's error (None: success). BuildRefused
        when it cannot start; then nothing was recorded or pushed."""
        req.check()
        fw = await timage.framework(self.kube, self.namespace)
        try:
            layer = await asyncio.to_thread(package_layer, req.server_file, req.filename, req.server_name, scratch,
                                            self.limits)  # fmt: skip
        except PackageError as e:
            raise timage.BuildRefused(f"ServerFile: {e}") from None
        build_id = new_build_id()
        image = f"{fw.registry}/{req.server_app.lower()}.{req.server_name.lower()}:{req.server_tag or build_id}"
        secret = req.secret or fw.secret
        state: Obj = {
            "id": build_id,
            "baseImage": req.base_image,
            "baseImageSecret": req.base_image_secret,
            "image": image,
            "secret": secret,
            "serverType": req.server_type,
            "createPerson": req.create_person,
            "createTime": timage.now_rfc3339(),
            "mark": req.mark,
            "phase": "Pending",
            "message": "pending",
            "handler": self.handler,
        }
        await timage.claim_build(self.kube, self.namespace, req.timage, state)
        result = BuildResult(build_id, image, secret, req.timage)
        build = _Build(req, result, state, layer, scratch, fw)
        self.builds[build_id] = build
        task = asyncio.create_task(self._run(build), name=f"build-{build_id}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return result, build.done

    async def _phase(self, build: _Build, phase: str, message: str) -> None:
        build.state.update(phase=phase, message=message)
        await timage.set_phase(self.kube, self.namespace, build.request.timage, build.result.id, phase, message)

    async def _run(self, build: _Build) -> None:
        error: str | None = None
        if self.closing:
            build.steps = asyncio.get_running_loop().create_future()
            build.steps.cancel()
        else:
            build.steps = asyncio.ensure_future(asyncio.wait_for(self._steps(build), build.framework.max_build_time))
        try:
            await build.steps
        except TimeoutError:
            error = timage.OVERTIME
        except asyncio.CancelledError:  # close(): recorded as failed now rather than as overtime later
            error = STOPPED
        except (RegistryError, ValueError, OSError) as e:
            error = str(e)
        except Exception as e:  # a bug: recorded on the TImage rather than leaving the build running forever
            log.exception("build %s", build.result.id)
            error = f"internal error: {e}"
        finally:
            remove_scratch(build.scratch)
        if error is None:
            build.state.update(phase="Done", message="Success")
            release = {k: build.state[k] for k in ("id", "image", "createPerson", "createTime", "mark")}
            if build.state["secret"]:
                release["secret"] = build.state["secret"]
        else:
            build.state.update(phase="Failed", message=error)
            release = None
            log.warning("build %s of TImage %s failed: %s", build.result.id, build.request.timage, error)
        try:
            await timage.finish_build(self.kube, self.namespace, build.request.timage, build.state, release,
                                      build.framework.release_limit)  # fmt: skip
        finally:
            self.builds.pop(build.result.id, None)
            self.release()
            if not build.done.done():
                build.done.set_result(error)

    async def _steps(self, build: _Build) -> None:
        req, state = build.request, build.state
        target = ImageRef.parse(state["image"])
        base = ImageRef.parse(req.base_image)
        await self._phase(build, "Preparing", "preparing secret")
        push_creds = await timage.registry_credentials(self.kube, self.namespace, state["secret"], target.registry)
        base_creds = await timage.registry_credentials(self.kube, self.namespace, req.base_image_secret,
                                                       base.registry)  # fmt: skip
        if base_creds is None and base.registry == target.registry:
            base_creds = push_creds  # one registry, one account (K8SFramework merges both secrets likewise)
        async with (
            RegistryClient(base.api_host, credentials=base_creds, plain_http=self.plain_http) as base_client,
            RegistryClient(target.api_host, credentials=push_creds, plain_http=self.plain_http) as push,
        ):
            await self._phase(build, "Submitting", f"reading base image {req.base_image}")
            resolved = await resolve_image(base_client, base.repository, base.reference)
            await self._phase(build, "Building", "adding the server package layer")
            changes = ConfigChanges(env={"ServerType": req.server_type}, comment=f"k8stars image build {state['id']}")
            await self._phase(build, "Pushing", f"pushing {state['image']}")
            await push_image(push, target.repository, target.tag or state["id"], [build.layer], base=resolved,
                             base_client=base_client, changes=changes, cache=cache_dir())  # fmt: skip

    # -- housekeeping --------------------------------------------------------------------------------------------

    def start(self) -> None:
        self._sweeper = asyncio.create_task(self._sweep_loop(), name="timage-overtime")

    async def _sweep_loop(self) -> None:
        while True:
            try:
                fw = await timage.framework(self.kube, self.namespace)
                swept = await timage.sweep_overtime(self.kube, self.namespace, fw.max_build_time, set(self.builds))
                for name in swept:
                    log.warning("TImage %s: a build still running after %d s failed (%s)", name, fw.max_build_time,
                                timage.OVERTIME)  # fmt: skip
            except Exception as e:  # the apiserver may be away for a while
                log.debug("overtime sweep: %s", e)
            await asyncio.sleep(SWEEP_INTERVAL)

    async def close(self) -> None:
        """Stop the sweeper and the builds in progress, recording them as failed."""
        self.closing = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
        for build in list(self.builds.values()):
            if build.steps is not None:
                build.steps.cancel()
        if self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)
