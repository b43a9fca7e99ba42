"""Server packages turned into layers: a normal package (first directory stripped, under /usr/local/server/bin),
a war unzipped, a jar put as <Server>.jar, and every hostile package refused with the reason."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest
from packages import HOSTILE, server_tgz, war

from k8stars.image.package import PackageError, PackageLimits, package_layer

LIMITS = PackageLimits(max_unpacked=16 << 20)


def members(layer_path: Path | None) -> dict[str, tarfile.TarInfo]:
    assert layer_path is not None
    with tarfile.open(layer_path, "r:gz") as tar:
        return {m.name: m for m in tar.getmembers()}


def build(tmp_path: Path, name: str, content: bytes, limits: PackageLimits = LIMITS) -> dict[str, tarfile.TarInfo]:
    upload = tmp_path / "upload"
    upload.write_bytes(content)
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    return members(package_layer(upload, name, "HelloServer", work, limits).path)


def test_tgz_first_directory_stripped(tmp_path: Path) -> None:
    got = build(tmp_path, "HelloServer.tgz", server_tgz())
    base = "usr/local/server/bin"
    assert {f"{base}/HelloServer", f"{base}/conf/HelloServer.conf", f"{base}/lib/libhello.so"} <= set(got)
    assert got[f"{base}/HelloServer"].mode == 0o755 and got[f"{base}/lib/libhello.so"].linkname == "libhello.so.1"
    assert not any(name.startswith(f"{base}/HelloServer/") for name in got)


def test_same_package_same_layer(tmp_path: Path) -> None:
    content = server_tgz(size=4096)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    upload = tmp_path / "upload"
    upload.write_bytes(content)
    one = package_layer(upload, "x.tgz", "HelloServer", tmp_path / "a")
    two = package_layer(upload, "x.tgz", "HelloServer", tmp_path / "b")
    assert (one.digest, one.diff_id) == (two.digest, two.diff_id)


def test_war_unzipped_and_jar_kept(tmp_path: Path) -> None:
    got = build(tmp_path, "hello.war", war({"WEB-INF/web.xml": b"<web-app/>", "index.jsp": b"hi"}))
    assert {"usr/local/server/bin/WEB-INF/web.xml", "usr/local/server/bin/index.jsp"} <= set(got)
    got = build(tmp_path, "hello.jar", war({"META-INF/MANIFEST.MF": b"Main-Class: x\n"}))
    assert got["usr/local/server/bin/HelloServer.jar"].isreg()


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_package_refused(tmp_path: Path, case: str) -> None:
    filename, make, reason = HOSTILE[case]
    with pytest.raises(PackageError, match=reason):
        build(tmp_path, filename, make())
    assert not list((tmp_path / "work").glob("*.tar.gz")), "no layer written for a refused package"


def test_member_limit(tmp_path: Path) -> None:
    with pytest.raises(PackageError, match="members"):
        build(tmp_path, "a.tgz", server_tgz(), PackageLimits(max_members=3))
