"""The config service against hostile files, names and callers (issue 16, items 11, 13 and 14), through the CLI and
TARS RPC: a file loadConfig could never answer is refused at put with the limit named, and an answer too large
says so; target names follow the registry's rule (one function), in every mode; names cannot forge log lines."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from k8stars.services.config.app import ConfigService, ConfigServiceOptions
from k8stars.services.config.servant import MAX_CONFIG_BYTES, ConfigImp
from k8stars.services.config.sqlstore import LEVEL_APP, LEVEL_SERVER, SqlConfigStore
from k8stars.services.config.store import ConfigIndex
from k8stars.tars.protocol.configf import ConfigInfo, ConfigProxy
from k8stars.tars.rpc import Communicator
from k8stars.testing.mariadb import SqlSpec, sql_spec
from k8stars.testing.procs import free_port

ROOT = Path(__file__).resolve().parents[2]
INJECTION = "HelloServer'; DROP TABLE t_config_files; --"
LIMIT = f"at most {MAX_CONFIG_BYTES} bytes (8 MiB)"


@pytest.fixture
def spec(request: pytest.FixtureRequest, tmp_path: Path) -> SqlSpec:
    return sql_spec("sqlite", request, tmp_path)


@pytest.fixture
async def store(spec: SqlSpec) -> AsyncIterator[SqlConfigStore]:
    s = SqlConfigStore(spec.kind, data_dir=spec.data_dir, dsn=spec.dsn)
    await s.open()
    yield s
    await s.close()


@pytest.fixture
async def config(spec: SqlSpec, store: SqlConfigStore) -> AsyncIterator[ConfigProxy]:
    options = ConfigServiceOptions(store=spec.kind, data_dir=str(spec.data_dir), dsn=spec.dsn,
                                   endpoint=f"tcp -h 127.0.0.1 -p {free_port()} -t 60000")  # fmt: skip
    svc = ConfigService(options)
    await svc.start()
    try:
        async with Communicator() as comm:
            yield comm.string_to_proxy(ConfigProxy, f"tars.tarsconfig.ConfigObj@{svc.endpoint}")
    finally:
        await svc.stop()


def k8stars(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "k8stars", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)  # fmt: skip


async def test_a_file_loadconfig_could_never_fetch_is_refused_at_put(
    spec: SqlSpec, store: SqlConfigStore, config: ConfigProxy, tmp_path: Path
) -> None:
    big = tmp_path / "big.conf"
    big.write_bytes(b"x" * (60 << 20))  # before: stored, then loadConfig failed as "-8 bad frame"
    r = k8stars("config", "put", *spec.options(), "Test.HelloServer", str(big))
    assert (
        r.returncode == 2 and f"big.conf is {60 << 20} bytes: a config file (or merged answer) is {LIMIT}" in r.stderr
    )
    assert await store.files("Test.HelloServer") == []
    assert spec.data_dir is not None and (Path(spec.data_dir) / "config.db").stat().st_mode & 0o777 == 0o600
    # the limit itself is served
    edge = "y" * MAX_CONFIG_BYTES
    await store.put("Test.HelloServer", "edge.conf", LEVEL_SERVER, edge)
    assert await config.loadConfig("Test", "HelloServer", "edge.conf") == (0, edge)
    # two files under the limit whose merged answer is over it: a clear -1, not a frame the caller refuses
    half = "z" * (MAX_CONFIG_BYTES // 2 + 1)
    await store.put("Test", "common.conf", LEVEL_APP, half)
    await store.put("Test.HelloServer", "merged.conf", LEVEL_SERVER, half, references=["common.conf"])
    ret, why = await config.loadConfig("Test", "HelloServer", "merged.conf")
    assert ret == -1 and LIMIT in why, why


async def test_target_names_follow_the_registry_rule(spec: SqlSpec, config: ConfigProxy, tmp_path: Path) -> None:
    conf = tmp_path / "hello.conf"
    conf.write_text("<a>\n</a>\n")
    for target in (f"Test.{INJECTION}", "Te st", "Test.Hello\nServer", "T\u00e9st", "A" * 51):
        r = k8stars("config", "put", *spec.options(), target, str(conf))
        assert r.returncode == 2 and "bad target" in r.stderr, (target, r)
    r = k8stars("config", "put", *spec.options(), "Test.HelloServer", str(conf), "--name", "a\nb.conf")
    assert r.returncode == 2 and "bad file name 'a\\nb.conf'" in r.stderr, r
    # the service answers such names with -1 and the reason, in the classic mode ...
    why = f"servername {INJECTION!r} may only hold letters, digits and _ . : -"
    assert await config.loadConfig("Test", INJECTION, "hello.conf") == (-1, why)
    assert await config.loadConfigByHost(f"Test.{INJECTION}", "hello.conf", "") == (-1, why)
    assert (await config.loadConfigByInfo(ConfigInfo("Test", INJECTION, "hello.conf"))).ret == -1
    assert await config.ListConfig("Test", INJECTION) == (-1, [])
    # ... and over TConfigs: one rule
    imp = ConfigImp(ConfigIndex())
    assert await imp.loadConfig("Test", INJECTION, "hello.conf") == (-1, why)
    assert await imp.ListConfig("Te st", "") == (-1, [])


async def test_names_cannot_forge_log_lines(config: ConfigProxy, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "k8stars.services.config")
    forged = "x.conf\n2026-12-04 20:00:00 WARNING k8stars.registry: forged"
    ret, why = await config.loadConfig("Test", "HelloServer", forged)
    assert ret == -1 and why.startswith("bad file name 'x.conf\\n2026"), why
    await config.loadConfigByHost("Test.Hello\nServer", "hello.conf", "")
    messages = [r.getMessage() for r in caplog.records if r.name == "k8stars.services.config"]
    assert messages and not any("\n" in m for m in messages), messages
