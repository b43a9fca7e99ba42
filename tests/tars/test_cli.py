"""`k8stars call` and `k8stars tars2py` through the command line, against a real server process."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from k8stars.testing.procs import free_port, stop_process, wait_port

ROOT = Path(__file__).resolve().parents[2]
HELLO_IDL = ROOT / "examples" / "hello" / "Hello.tars"
CONFIG = """<tars>
  <application>
    <server>
      app=TestApp
      server=HelloServer
      local=tcp -h 127.0.0.1 -p {admin} -t 10000
      <TestApp.HelloServer.HelloObjAdapter>
        endpoint=tcp -h 127.0.0.1 -p {port} -t 60000
        servant=TestApp.HelloServer.HelloObj
      </TestApp.HelloServer.HelloObjAdapter>
    </server>
  </application>
</tars>
"""


@pytest.fixture(scope="module")
def hello_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, int, subprocess.Popen[bytes]]]:
    port, admin = free_port(), free_port()
    conf = tmp_path_factory.mktemp("hello") / "HelloServer.conf"
    conf.write_text(CONFIG.format(port=port, admin=admin))
    proc = subprocess.Popen(
        [sys.executable, "-m", "examples.hello.server", "--config", str(conf)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_port(port, proc)
        wait_port(admin, proc)
        yield port, admin, proc
    finally:
        stop_process(proc)


def k8stars(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "k8stars", *args], capture_output=True, text=True, timeout=60)


def target(port: int) -> str:
    return f"TestApp.HelloServer.HelloObj@tcp -h 127.0.0.1 -p {port}"


def test_call_prints_ret_and_out_params(hello_server: tuple[int, int, subprocess.Popen[bytes]]) -> None:
    port = hello_server[0]
    res = k8stars("call", "--idl", str(HELLO_IDL), target(port), "greet", '{"req": {"name": "cli", "times": 2}}')
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == {"ret": 0, "lines": ["hello cli", "hello cli"]}
    res = k8stars("call", "--idl", str(HELLO_IDL), target(port), "sayHello", '{"name": "x"}')
    assert json.loads(res.stdout) == {"ret": "hello x"}
    res = k8stars("call", "--idl", str(HELLO_IDL), target(port), "sleep", '{"ms": 1}')
    assert json.loads(res.stdout) == {}


def test_call_list(hello_server: tuple[int, int, subprocess.Popen[bytes]]) -> None:
    res = k8stars("call", "--idl", str(HELLO_IDL), target(hello_server[0]), "--list")
    assert res.returncode == 0
    assert "int greet(TestApp.HelloReq req, out vector<string> lines)" in res.stdout.splitlines()
    res = k8stars("call", "tars.tarsregistry.QueryObj", "--list")
    assert "int findObjectById4Any(string id, out vector<tars.EndpointF> activeEp, out vector<tars.EndpointF> " \
           "inactiveEp)" in res.stdout  # fmt: skip


def test_call_framework_servant_without_idl(hello_server: tuple[int, int, subprocess.Popen[bytes]]) -> None:
    admin, proc = hello_server[1], hello_server[2]
    res = k8stars("call", f"AdminObj@tcp -h 127.0.0.1 -p {admin}", "getPid")
    assert json.loads(res.stdout) == {"ret": proc.pid}
    res = k8stars("call", f"AdminObj@tcp -h 127.0.0.1 -p {admin}", "notify", '{"command": "tars.viewstatus"}')
    assert "TestApp.HelloServer.HelloObjAdapter" in json.loads(res.stdout)["ret"]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["greet", '{"req": {"name": "x", "times": "two"}}'], 2, "req.times: expected an integer"),
        (["greet", '{"nope": 1}'], 2, "greet has no parameter nope"),
        (["nope", "{}"], 2, "Hello has no operation nope"),
        (["greet", "not json"], 2, "ARGS is not valid JSON"),
    ],
)
def test_call_argument_errors(
    hello_server: tuple[int, int, subprocess.Popen[bytes]], args: list[str], code: int, message: str
) -> None:
    res = k8stars("call", "--idl", str(HELLO_IDL), target(hello_server[0]), *args)
    assert res.returncode == code and message in res.stderr and "Traceback" not in res.stderr


def test_call_tars_errors_exit_1(hello_server: tuple[int, int, subprocess.Popen[bytes]], tmp_path: Path) -> None:
    extra = tmp_path / "Hello2.tars"
    extra.write_text(HELLO_IDL.read_text().replace("void sleep(int ms);", "void sleep(int ms); int missing();"))
    res = k8stars("call", "--idl", str(extra), target(hello_server[0]), "missing")
    assert res.returncode == 1 and "TARSSERVERNOFUNCERR (-3)" in res.stderr
    res = k8stars("call", "--idl", str(HELLO_IDL), "--timeout", "100", target(hello_server[0]), "sleep", '{"ms": 2000}')
    assert res.returncode == 1 and "TARSINVOKETIMEOUT (-7)" in res.stderr
    res = k8stars("call", "--idl", str(HELLO_IDL), target(free_port()), "sayHello", '{"name": "x"}')
    assert res.returncode == 1 and "TARSPROXYCONNECTERR (-8)" in res.stderr


def test_call_needs_idl_for_unknown_servants() -> None:
    res = k8stars("call", "Some.Server.Obj@tcp -h 127.0.0.1 -p 1", "f")
    assert res.returncode == 2 and "give its IDL with --idl" in res.stderr
