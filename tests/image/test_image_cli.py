"""`k8stars image base` and `k8stars image build` without Kubernetes, through the command line, checked by skopeo."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from imaging import USERS
from packages import server_tgz
from registries import LocalRegistry, copy_to_dir, inspect

pytestmark = pytest.mark.usefixtures("busybox")


def k8stars(*args: str, rc: int = 0) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "k8stars", "image", *args], capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip
    assert proc.returncode == rc, proc.stderr
    return proc


def test_base_busybox_and_build(registry: LocalRegistry, tmp_path: Path) -> None:
    base = f"{registry.host}/tars/busybox:1"
    ref = k8stars("base", base, "--busybox", "--cmd", "sleep infinity", "--env", "LANG=C.UTF-8").stdout.strip()
    assert ref.startswith(f"{registry.host}/tars/busybox@sha256:")
    config = inspect(base, "--config")["config"]
    assert config["Cmd"] == ["sleep", "infinity"] and "LANG=C.UTF-8" in config["Env"]

    package = tmp_path / "HelloServer.tgz"
    package.write_bytes(server_tgz())
    target = f"{registry.host}/test.helloserver:v1"
    out = k8stars("build", str(package), "--base", base, "--image", target, "--server-type", "go").stdout.strip()
    assert out.startswith(f"{registry.host}/test.helloserver@sha256:")
    assert "ServerType=go" in inspect(target, "--config")["config"]["Env"]
    # the same package on the same base: the same image
    again = k8stars(
        "build", str(package), "--base", base, "--image", f"{registry.host}/test.helloserver:v2", "--server-type", "go"
    )
    assert again.stdout.strip().split("@")[1] == out.split("@")[1]

    bad = tmp_path / "bad.tgz"
    bad.write_bytes(b"not a package")
    assert "not a gzip'd tar" in k8stars("build", str(bad), "--base", base, "--image", target, rc=2).stderr
    assert "give --image, or --namespace" in k8stars("build", str(package), "--base", base, rc=2).stderr
    gone = k8stars("build", str(package), "--base", f"{registry.host}/tars/none:1", "--image", target, rc=1).stderr
    assert "no image tars/none:1" in gone


def test_base_from_a_root_file_system(registry: LocalRegistry, tmp_path: Path) -> None:
    """A rootfs tar (as mmdebstrap writes one): files, modes, times, symlinks and hard links kept; device nodes
    left to the container runtime."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, kind, data, link in (
            ("./", tarfile.DIRTYPE, b"", ""),
            ("./usr/bin/", tarfile.DIRTYPE, b"", ""),
            ("./usr/bin/python3.11", tarfile.REGTYPE, b"\x7fELF python", ""),
            ("./usr/bin/python3", tarfile.SYMTYPE, b"", "python3.11"),
            ("./usr/bin/pydoc", tarfile.LNKTYPE, b"", "./usr/bin/python3.11"),
            ("./dev/null", tarfile.CHRTYPE, b"", ""),
            ("./.hidden", tarfile.REGTYPE, b"dot file", ""),
        ):
            info = tarfile.TarInfo(name)
            info.type, info.size, info.linkname, info.mtime, info.mode = kind, len(data), link, 1700000000, 0o755
            info.gid = 42 if name == "./.hidden" else 0  # as /etc/shadow's group shadow
            tar.addfile(info, io.BytesIO(data) if data else None)
    rootfs = tmp_path / "rootfs.tar"
    rootfs.write_bytes(buf.getvalue())
    target = f"{registry.host}/tars/debian:1"
    k8stars("base", target, "--rootfs", str(rootfs), "--cmd", '["/usr/bin/python3"]')
    manifest = copy_to_dir(target, tmp_path / "dir")
    with tarfile.open(tmp_path / "dir" / manifest["layers"][0]["digest"].split(":")[1], "r:gz") as tar:
        members = {m.name: m for m in tar.getmembers()}
    # a hard link pair: the first path in order is the file, the other links to it
    assert members["usr/bin/pydoc"].isreg() and members["usr/bin/pydoc"].mtime == 1700000000
    assert members["usr/bin/python3.11"].islnk() and members["usr/bin/python3.11"].linkname == "usr/bin/pydoc"
    assert members["usr/bin/python3"].issym() and members[".hidden"].isreg() and members[".hidden"].gid == 42
    assert "dev/null" not in members
    assert inspect(target, "--config")["config"]["Cmd"] == ["/usr/bin/python3"]
    assert "give one of --busybox" in k8stars("base", target, rc=2).stderr


def test_push_credentials_from_a_docker_config(auth_registry: LocalRegistry, tmp_path: Path) -> None:
    (user, password), host = next(iter(USERS.items())), auth_registry.host
    config = tmp_path / "config.json"
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    config.write_text(json.dumps({"auths": {f"http://{host}": {"auth": auth}}}))
    denied = k8stars("base", f"{host}/tars/busybox:1", "--busybox", rc=1).stderr
    assert "needs credentials and none were given" in denied
    k8stars("base", f"{host}/tars/busybox:1", "--busybox", "--auth", str(config))
    assert password not in denied
