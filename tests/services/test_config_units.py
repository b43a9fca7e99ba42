"""The config servant over an in-memory index: override rule, host resolution, every ConfigF operation's answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from k8stars.services.config.app import ConfigServiceError, ConfigServiceOptions
from k8stars.services.config.servant import ConfigImp, ordinal_from_name, split_app_server
from k8stars.services.config.store import ConfigIndex, entry_of
from k8stars.tars.protocol.configf import ConfigInfo, GetConfigListInfo


def tconfig(name: str, app: str, server: str, file: str, seq: str, content: str, **extra: Any) -> dict[str, Any]:
    labels = extra.pop("labels", {})
    md = {"namespace": "ns", "name": name, "labels": labels,
          "creationTimestamp": extra.pop("created", "2026-01-01T00:00:00Z")}  # fmt: skip
    return {"metadata": md, "app": app, "server": server, "configName": file, "podSeq": seq,
            "configContent": content, "activated": extra.pop("activated", True), **extra}  # fmt: skip


def pod(name: str, ip: str, phase: str = "Running") -> dict[str, Any]:
    return {"metadata": {"namespace": "ns", "name": name}, "status": {"podIP": ip, "phase": phase}}


@pytest.fixture
def index() -> ConfigIndex:
    ix = ConfigIndex()
    ix.put_config(tconfig("m", "Test", "HelloServer", "hello.conf", "m", "<a>\nlevel=server\n</a>"))
    ix.put_config(tconfig("p1", "Test", "HelloServer", "hello.conf", "1", "<a>\nlevel=pod1\n</a>"))
    ix.put_config(tconfig("app", "Test", "", "common.conf", "m", "shared=1"))
    ix.put_config(tconfig("bad", "Test", "HelloServer", "bad.conf", "m", "<a>\nx=1\n"))
    ix.put_pod(pod("test-helloserver-0", "127.64.1.10"))
    ix.put_pod(pod("test-helloserver-1", "127.64.1.11"))
    return ix


def test_ordinal_from_name() -> None:
    assert ordinal_from_name("test-helloserver-1", "Test", "HelloServer") == 1
    assert ordinal_from_name("test-helloserver-12.test-helloserver.ns.svc", "Test", "HelloServer") == 12
    assert ordinal_from_name("test-helloserver-x", "Test", "HelloServer") is None
    assert ordinal_from_name("test-other-1", "Test", "HelloServer") is None
    assert ordinal_from_name("test-helloserver-", "Test", "HelloServer") is None
    assert split_app_server("Test") == ("Test", "")
    assert split_app_server("Test.HelloServer") == ("Test", "HelloServer")
    for bad in ("", "a.b.c", ".x", "x."):
        with pytest.raises(ValueError, match="bad appServerName"):
            split_app_server(bad)


def test_only_activated_not_deleting_count() -> None:
    assert entry_of(tconfig("a", "T", "S", "f", "m", "c")) is not None
    assert entry_of(tconfig("a", "T", "S", "f", "m", "c", activated=False)) is None
    assert entry_of(tconfig("a", "T", "S", "f", "m", "c", labels={"tars.io/Deleting": "true"})) is None
    assert entry_of(tconfig("a", "", "S", "f", "m", "c")) is None  # no app


async def test_pod_level_overrides_server_level(index: ConfigIndex) -> None:
    imp = ConfigImp(index)
    assert await imp.loadConfigByHost("Test.HelloServer", "hello.conf", "127.64.1.11") == (0, "<a>\nlevel=pod1\n</a>")
    assert await imp.loadConfigByHost("Test.HelloServer", "hello.conf", "test-helloserver-1") == (
        0, "<a>\nlevel=pod1\n</a>")  # fmt: skip
    assert (await imp.loadConfigByHost("Test.HelloServer", "hello.conf", "127.64.1.10")).config == (
        "<a>\nlevel=server\n</a>")  # fmt: skip
    assert (await imp.loadConfigByHost("Test.HelloServer", "hello.conf", "10.9.9.9")).config.endswith("server\n</a>")
    info = ConfigInfo("Test", "HelloServer", "hello.conf", False, "127.64.1.11")
    assert (await imp.loadConfigByInfo(info)).config == "<a>\nlevel=pod1\n</a>"
    # the pod's IP moves to another pod: the new owner counts
    index.remove_pod(pod("test-helloserver-1", "127.64.1.11"))
    index.put_pod(pod("test-helloserver-0", "127.64.1.11"))
    assert (await imp.loadConfigByInfo(info)).config.endswith("server\n</a>")


async def test_deactivating_and_newest(index: ConfigIndex) -> None:
    imp = ConfigImp(index)
    index.put_config(tconfig("m2", "Test", "HelloServer", "hello.conf", "m", "v2", created="2026-02-01T00:00:00Z"))
    assert (await imp.loadConfig("Test", "HelloServer", "hello.conf")).config == "v2"
    index.put_config(tconfig("m2", "Test", "HelloServer", "hello.conf", "m", "v2", created="2026-02-01T00:00:00Z",
                             labels={"tars.io/Deactivate": "true"}))  # fmt: skip
    assert (await imp.loadConfig("Test", "HelloServer", "hello.conf")).config == "<a>\nlevel=server\n</a>"
    index.put_config(tconfig("m", "Test", "HelloServer", "hello.conf", "m", "x", labels={"tars.io/Deleting": "1"}))
    assert (await imp.loadConfig("Test", "HelloServer", "hello.conf")).config == "v2"


async def test_app_level_lists_and_errors(index: ConfigIndex) -> None:
    imp = ConfigImp(index)
    assert await imp.loadConfigByHost("Test", "common.conf", "127.64.1.11") == (0, "shared=1")
    assert await imp.loadConfigByInfo(ConfigInfo("Test", "HelloServer", "common.conf", True)) == (0, "shared=1")
    assert await imp.ListConfig("Test", "HelloServer") == (0, ["bad.conf", "hello.conf"])
    assert await imp.ListConfig("Test", "") == (0, ["common.conf"])
    assert await imp.ListConfigByInfo(ConfigInfo("Test", "HelloServer", "", True)) == (0, ["common.conf"])
    assert await imp.ListAllConfigByInfo(GetConfigListInfo("Test", "HelloServer")) == (0, ["bad.conf", "hello.conf"])
    assert await imp.ListAllConfigByInfo(GetConfigListInfo("Test", "HelloServer", True)) == (0, ["common.conf"])
    assert await imp.ListConfig("", "x") == (-1, [])
    ret, msg = await imp.loadConfig("Test", "HelloServer", "nope.conf")
    assert (ret, msg) == (-1, "config nope.conf of server Test.HelloServer not found: no activated TConfig")
    assert await imp.loadConfigByHost("a.b.c", "f", "") == (-1, "bad appServerName 'a.b.c': expected App or App.Server")
    assert (await imp.loadConfig("Test", "HelloServer", "")).config == "filename is empty"


async def test_check_config(index: ConfigIndex) -> None:
    imp = ConfigImp(index)
    assert await imp.checkConfig("Test.HelloServer", "hello.conf", "127.64.1.11") == (0, "<a>\nlevel=pod1\n</a>")
    ret, msg = await imp.checkConfig("Test.HelloServer", "bad.conf", "")
    assert ret == -1 and msg == "bad.conf is not a valid TARS config: <a> is never closed"
    ret, msg = await imp.checkConfigByInfo(ConfigInfo("Test", "HelloServer", "bad.conf"))
    assert ret == -1 and "never closed" in msg
    assert (await imp.checkConfig("Test.HelloServer", "none.conf", "")).ret == -1


def test_options_are_checked() -> None:
    with pytest.raises(ConfigServiceError, match="--namespace is required"):
        ConfigServiceOptions(store="kubernetes").check()
    with pytest.raises(ConfigServiceError, match="--endpoint"):
        ConfigServiceOptions(namespace="x", endpoint="tcp -h 1.2.3.4").check()
    with pytest.raises(ConfigServiceError, match="--locator"):
        ConfigServiceOptions(namespace="x", locator="tcp -h 127.0.0.1 -p 1").check()


APP_CONFIG = """<tars>
  <application>
    <server>
      app=Test
      server=HelloServer
      localip={localip}
      local=tcp -h 127.0.0.1 -p {admin} -t 10000
      basepath={basepath}
      config=tars.tarsconfig.ConfigObj@tcp -h 127.0.0.1 -p {config}
      <Test.HelloServer.HelloObjAdapter>
        endpoint=tcp -h 127.0.0.1 -p {port} -t 60000
        servant=Test.HelloServer.HelloObj
      </Test.HelloServer.HelloObjAdapter>
    </server>
  </application>
</tars>
"""


async def test_application_load_config_through_admin(index: ConfigIndex, tmp_path: Path) -> None:
    """An Application's `tars.loadconfig FILE` fetches FILE (its pod's version, by localip) into basepath."""
    from examples.hello.server import HelloImp
    from k8stars.tars.protocol.adminf import AdminFProxy
    from k8stars.tars.rpc import Application, Communicator, Server
    from k8stars.tars.rpc.application import ConfigLoadError
    from tests.conftest import free_port

    service = Server()
    service.add_servant(ConfigImp(index), "tars.tarsconfig.ConfigObj", "tcp -h 127.0.0.1 -p 0 -t 60000")
    await service.start()
    config_port = service.adapters["tars.tarsconfig.ConfigObjAdapter"].endpoint.port
    admin_port, port, base = free_port(), free_port(), tmp_path / "base"
    conf = tmp_path / "HelloServer.conf"
    conf.write_text(APP_CONFIG.format(localip="127.64.1.11", admin=admin_port, basepath=base, config=config_port,
                                      port=port))  # fmt: skip
    app = Application.from_config(conf)
    app.add_servant(HelloImp(), "Test.HelloServer.HelloObj")
    await app.start()
    try:
        async with Communicator() as comm:
            admin = comm.string_to_proxy(AdminFProxy, f"AdminObj@tcp -h 127.0.0.1 -p {admin_port}")
            reply = await admin.notify("tars.loadconfig hello.conf")
            assert reply == f"tars.loadconfig hello.conf succ: written to {base / 'hello.conf'}"
            assert (base / "hello.conf").read_text() == "<a>\nlevel=pod1\n</a>"
            assert await admin.notify("tars.loadconfig nope.conf") == (
                "tars.loadconfig nope.conf failed: config service tars.tarsconfig.ConfigObj@tcp -h 127.0.0.1 -p "
                f"{config_port} answered -1: config nope.conf of server Test.HelloServer not found: no activated "
                "TConfig"
            )
        # a newer version replaces the file; the previous one is kept as .bak
        index.put_config(tconfig("p1b", "Test", "HelloServer", "hello.conf", "1", "v2", created="2026-03-01T00:00:00Z"))
        assert await app.load_config("hello.conf") == "v2"
        assert (base / "hello.conf").read_text() == "v2"
        assert (base / "hello.conf.bak").read_text() == "<a>\nlevel=pod1\n</a>"
        assert await app.load_config("common.conf", app_only=True) == "shared=1"
        for bad in ("../x", "a/b", ""):
            with pytest.raises(ConfigLoadError, match="is not a plain file name"):
                await app.load_config(bad)
    finally:
        await app.stop()
        await service.stop()


def test_index_follows_deletes_and_updates(index: ConfigIndex) -> None:
    index.on_config(tconfig("bad", "Test", "HelloServer", "bad.conf", "m", ""), "DELETED")
    assert index.names("Test", "HelloServer") == ["hello.conf"]
    index.on_config(tconfig("m", "Test", "HelloServer", "hello.conf", "m", "x", activated=False), "MODIFIED")
    assert index.names("Test", "HelloServer") == []  # only the pod-level one is left: not listed
    assert [e.pod_seq for e in index.entries("Test", "HelloServer", "hello.conf")] == ["1"]
    index.on_config(tconfig("p1", "Test", "HelloServer", "hello.conf", "1", ""), "DELETED")
    assert index.entries("Test", "HelloServer", "hello.conf") == []
    index.on_pod(pod("test-helloserver-1", "127.64.1.11"), "DELETED")
    assert index.pod_name("127.64.1.11") is None and index.pod_name("127.64.1.10") == "test-helloserver-0"
    index.on_pod(pod("test-helloserver-0", "127.64.1.10", phase="Failed"), "MODIFIED")
    assert index.pod_name("127.64.1.10") is None


async def test_reactivated_old_version_wins_while_both_are_activated(index: ConfigIndex) -> None:
    """The operator stamps an old version it activates again (k8stars.io/activated-at); until it deactivates the
    other one, that stamp decides, as in the operator."""
    imp = ConfigImp(index)
    index.put_config(tconfig("m2", "Test", "HelloServer", "hello.conf", "m", "v2", created="2026-02-01T00:00:00Z"))
    old = tconfig("m", "Test", "HelloServer", "hello.conf", "m", "v1 again")
    old["metadata"]["annotations"] = {"k8stars.io/activated-at": "2026-03-01T00:00:00.000000Z"}
    index.put_config(old)
    assert (await imp.loadConfig("Test", "HelloServer", "hello.conf")).config == "v1 again"
