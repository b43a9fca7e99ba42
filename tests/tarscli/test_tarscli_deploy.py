"""deploy/: no Docker engine or cluster here, so the images' scripts run as they would in a container (same
TARS_PATH layout), and the manifests are checked for what the pod needs."""

from __future__ import annotations

import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import yaml  # type: ignore[import-untyped,unused-ignore]
from tarscli_helpers import ROOT, Pod, RegistryProc, wait_active_hosts

from examples.hello.gen.hello import HelloProxy
from k8stars.tars.rpc import Communicator
from k8stars.tarscli.env import parse_duration

DOCKER = ROOT / "deploy" / "docker"
K8S = ROOT / "deploy" / "k8s"


def test_dockerfiles_copy_files_that_exist() -> None:
    for dockerfile in DOCKER.glob("*/Dockerfile"):
        for line in dockerfile.read_text().splitlines():
            if line.startswith("COPY "):
                for src in line.split()[1:-1]:
                    assert (ROOT / src).exists(), f"{dockerfile}: {src}"
        assert 'CMD ["tarscli", "supervisor"]' in dockerfile.read_text()


def test_deployment_has_probe_hook_pod_ip_and_consistent_grace() -> None:
    docs = [d for f in K8S.glob("*.yaml") for d in yaml.safe_load_all(f.read_text()) if d]
    hello = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "testapp-helloserver")
    pod = hello["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    env = {e["name"]: e for e in c["env"]}
    assert env["POD_IP"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
    assert c["readinessProbe"]["exec"]["command"] == ["tarscli", "hzcheck"]
    assert c["lifecycle"]["preStop"]["exec"]["command"] == ["tarscli", "prestop"]
    assert parse_duration(env["TARS_TERMINATION_GRACE_PERIOD"]["value"]) == pod["terminationGracePeriodSeconds"]
    service = next(d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == "tars-registry")
    assert service["metadata"]["namespace"] == "tars-system" and service["spec"]["ports"][0]["port"] == 17890
    assert hello["metadata"]["namespace"] == "tars-system"  # the default locator's ${namespace}


def _image_layout(tmp_path: Path, registry: RegistryProc) -> Path:
    """What the hello image puts in /tars: the meta file, start.sh and the example under app/."""
    tp = tmp_path / "tars"
    (tp / "bin").mkdir(parents=True)
    (tp / "app").mkdir()
    (tp / "app" / "examples").symlink_to(ROOT / "examples")
    for name in ("_server_meta.yaml", "start.sh"):
        shutil.copy2(DOCKER / "hello" / name, tp / "bin" / name)
    return tp


async def _serves(locator: str) -> str:
    async with Communicator(locator=locator) as comm:
        return await comm.string_to_proxy(HelloProxy, "TestApp.HelloServer.HelloObj").sayHello("image")


async def test_hello_image_scripts_under_the_supervisor(
    tmp_path: Path, registry: RegistryProc, pods: Callable[..., Pod]
) -> None:
    tp = _image_layout(tmp_path, registry)
    pod = pods("TestApp.HelloServer", "127.0.0.26", registry.locator, "unused")
    pod.tars_path = tp  # the image's own bin/ (its meta file has no locator: TARS_LOCATOR gives it, as in a cluster)
    pod.env = {"TARS_LOCATOR": registry.locator, "SERVER_VERSION": "0.1.0"}
    pod.start()
    await pod.wait_state("active")
    await wait_active_hosts(registry.locator, "TestApp.HelloServer.HelloObj", ["127.0.0.26"])
    assert await _serves(registry.locator) == "hello image"


async def test_base_image_start_script_execs_the_build_server(
    tmp_path: Path, registry: RegistryProc, pods: Callable[..., Pod]
) -> None:
    """The base image's start.sh: syncdir from vol-conf, genconf (reusing the supervisor's ports), then
    bin/$TARS_BUILD_SERVER --config=conf/<name>.conf."""
    tp = _image_layout(tmp_path, registry)
    shutil.copy2(DOCKER / "tarscli" / "start.sh", tp / "bin" / "start.sh")
    binary = tp / "bin" / "Hello"
    binary.write_text(f'#!/bin/sh\ncd "$TARS_PATH/app" && exec "{sys.executable}" -m examples.hello.server "$@"\n')
    binary.chmod(0o755)
    (tp / "vol-conf").mkdir()
    (tp / "vol-conf" / "extra.txt").write_text("from a ConfigMap\n")
    pod = pods("TestApp.HelloServer", "127.0.0.27", registry.locator, "unused")
    pod.tars_path = tp
    pod.env = {"TARS_LOCATOR": registry.locator, "TARS_BUILD_SERVER": "Hello"}
    pod.start()
    await pod.wait_state("active")
    assert (tp / "bin" / "extra.txt").read_text() == "from a ConfigMap\n"
    conf = (tp / "conf" / "Hello.conf").read_text()
    port = re.search(r"endpoint=tcp -h 127\.0\.0\.27 -p (\d+)", conf)
    assert port is not None
    await wait_active_hosts(registry.locator, "TestApp.HelloServer.HelloObj", ["127.0.0.27"])
    assert await _serves(registry.locator) == "hello image"
