"""Interop between the two real TARS peers (@tars/stream + @tars/rpc, TarsGo).

These tests build both peers (npm ci + go build, cached under ~/.cache/k8stars/peers) and
check them against each other and against the byte examples of the protocol reference
(§1.10), so later tests can trust them as oracles for our own codec and RPC stack.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from k8stars.testing import peers
from k8stars.testing.procs import free_port, stop_process, wait_port

PEERS: tuple[peers.Peer, ...] = ("node", "go")


@pytest.fixture(scope="module", autouse=True)
def built_peers() -> None:
    # Build (or reuse) both peers once; failures carry npm/go's own output.
    peers.node_dir()
    peers.go_binary()


# ------------------------------------------------------------------------ cases

INNER = {"struct": [{"tag": 0, "type": "int"}, {"tag": 1, "type": "string"}]}
NESTED = {
    "struct": [
        {"tag": 0, "type": "int"},
        {"tag": 1, "type": {"struct": [{"tag": 0, "type": "string"}, {"tag": 1, "type": {"vector": "long"}}]}},
        {"tag": 2, "type": {"map": ["string", "int"]}},
        {"tag": 15, "type": "double"},
    ]
}
F32_MAX = 3.4028234663852886e38
F32_MIN_DENORM = 1.401298464324817e-45


def f(tag: int, typ: Any, value: Any, **extra: Any) -> dict[str, Any]:
    return {"tag": tag, "type": typ, "value": value, **extra}


# Each case: (name, fields, same_bytes) - same_bytes: both writers must agree byte for byte.
CASES: list[tuple[str, list[dict[str, Any]], bool]] = [
    (
        "primitives",
        [
            f(0, "bool", True),
            f(1, "bool", False),
            f(2, "byte", -128),
            f(3, "byte", 127),
            f(4, "short", -32768),
            f(5, "short", 32767),
            f(6, "int", -2147483648),
            f(7, "int", 2147483647),
            f(8, "long", "-9223372036854775808"),
            f(9, "long", "9223372036854775807"),
            f(10, "float", 1.5),
            f(11, "double", -2.5e300),
            f(12, "string", "h\u00e9llo \u2713"),
            f(13, "bytes", "00ff7f80"),
            f(14, "int", 0),
        ],
        True,
    ),
    (
        "tags",
        [
            f(0, "int", 1),
            f(14, "string", "fourteen"),
            f(15, "int", -1),
            f(200, "long", "200"),
            f(255, "string", "last"),
        ],
        True,
    ),
    (
        "narrowing",
        [
            f(0, "byte", 0),
            f(1, "byte", 1),
            f(2, "byte", -1),
            f(3, "short", 127),
            f(4, "short", 128),
            f(5, "short", -129),
            f(6, "int", 32767),
            f(7, "int", 32768),
            f(8, "int", -32769),
            f(9, "long", "2147483647"),
            f(10, "long", "2147483648"),
            f(11, "long", "-2147483649"),
            f(12, "long", "9007199254740993"),
            f(13, "long", "-9007199254740993"),
            f(14, "long", "0"),
            f(16, "long", "-1"),
            f(17, "long", "1234567890123456789"),
        ],
        True,
    ),
    (
        "strings",
        [
            f(0, "string", ""),
            f(1, "string", "a" * 255),
            f(2, "string", "b" * 256),
            f(3, "string", "\u00e9\u4e2d" * 200),
            f(4, "string", 'line\nbreak\ttab"quote\\'),
        ],
        True,
    ),
    (
        "floats",
        [
            f(0, "float", -2.25),
            f(1, "float", F32_MAX),
            f(2, "float", F32_MIN_DENORM),
            f(3, "double", 1e-300),
            f(4, "double", math.pi),
            f(5, "float", 0.1),
        ],
        True,
    ),
    ("float_zero", [f(1, "float", 0), f(2, "double", 0)], False),
    (
        "nested_struct",
        [
            f(1, NESTED, [7, ["in", ["1", "-9007199254740993"]], [["k", 1]], 0.5]),
            f(2, {"struct": [{"tag": 0, "type": NESTED}]}, [[0, ["", []], [], 2.0]]),
        ],
        True,
    ),
    (
        "map_struct_keys",
        [
            f(3, {"map": [INNER, "string"]}, [[[1, "a"], "one"], [[2, "b"], "two"], [[-3, ""], "minus"]]),
        ],
        True,
    ),
    (
        "vector_of_structs",
        [
            f(4, {"vector": INNER}, [[1, "x"], [2, "y"], [300000, "z" * 300]]),
            f(5, {"vector": {"vector": "int"}}, [[1, 2], [], [70000]]),
        ],
        True,
    ),
    (
        "containers",
        [
            f(0, {"vector": "bytes"}, ["", "01", "ffff"]),
            # JS objects list integer-like keys first: keep them first so both writers agree
            f(1, {"map": ["long", {"vector": "string"}]}, [["7", []], ["-5000000000", ["a", "b"]]]),
            f(2, {"map": ["int", {"map": ["string", "double"]}]}, [[1, [["x", 1.25]]], [2, []]]),
            f(3, {"vector": "bool"}, [True, False, True]),
            f(4, {"vector": "float"}, [1.5, -0.5]),
            f(5, {"map": ["string", "bytes"]}, [["k", "deadbeef"], ["e", ""]]),
            f(6, {"vector": "byte"}, [1, -1, 0]),
        ],
        True,
    ),
    (
        "empty_containers",
        [
            f(0, {"vector": "int"}, []),
            f(1, {"map": ["string", "string"]}, []),
            f(2, "bytes", ""),
            f(3, {"vector": INNER}, []),
            f(4, {"map": [INNER, INNER]}, []),
            f(5, {"struct": [{"tag": 0, "type": {"vector": "string"}}, {"tag": 1, "type": "bytes"}]}, [[], ""]),
        ],
        True,
    ),
    (
        "optional_fields",
        [
            f(0, "int", 0, require=False),
            f(1, "string", "", require=False),
            f(2, {"vector": "int"}, [], require=False),
            f(3, "bool", False, require=False),
            f(4, "int", 5, require=False),
            f(5, "string", "set", require=False),
            f(
                6,
                {"struct": [{"tag": 0, "type": "int", "require": False}, {"tag": 1, "type": "long"}]},
                [0, "0"],
                require=False,
            ),
        ],
        False,
    ),
]


def _f32(x: float) -> float:
    return float(struct.unpack(">f", struct.pack(">f", x))[0])


def normalize(typ: Any, value: Any) -> Any:
    """Canonical form for comparison: float32 rounding, long as int, maps order-free."""
    if isinstance(typ, str):
        if typ == "long":
            return int(value)
        if typ == "float":
            return _f32(float(value))
        if typ == "double":
            return float(value)
        if typ == "bytes":
            return value.lower()
        return value
    if "vector" in typ:
        return [normalize(typ["vector"], v) for v in value]
    if "map" in typ:
        kt, vt = typ["map"]
        pairs = [(normalize(kt, k), normalize(vt, v)) for k, v in value]
        return sorted(pairs, key=lambda kv: json.dumps(kv, sort_keys=True))
    return [normalize(fd["type"], v) for fd, v in zip(typ["struct"], value, strict=True)]


def expected_values(fields: list[dict[str, Any]]) -> list[Any]:
    return [normalize(fd["type"], fd["value"]) for fd in fields]


def decoded_values(fields: list[dict[str, Any]], values: list[Any]) -> list[Any]:
    return [normalize(fd["type"], v) for fd, v in zip(fields, values, strict=True)]


def decode_request(fields: list[dict[str, Any]], hex_: str) -> dict[str, Any]:
    spec = [{k: v for k, v in fd.items() if k != "value"} for fd in fields]
    return {"cases": [{"fields": spec, "hex": hex_}]}


@pytest.fixture(scope="module")
def encoded() -> dict[str, list[str]]:
    req = {"cases": [{"fields": fields} for _, fields, _ in CASES]}
    out: dict[str, list[str]] = {p: peers.run_codec(p, "encode", req)["hex"] for p in PEERS}
    for p in PEERS:
        assert len(out[p]) == len(CASES)
    return out


# ------------------------------------------------------------------------ codec tests


@pytest.mark.parametrize("writer", PEERS)
@pytest.mark.parametrize("reader", PEERS)
def test_cross_peer_round_trip(encoded: dict[str, list[str]], writer: peers.Peer, reader: peers.Peer) -> None:
    req: dict[str, Any] = {"cases": []}
    for (_, fields, _), hex_ in zip(CASES, encoded[writer], strict=True):
        req["cases"] += decode_request(fields, hex_)["cases"]
    values = peers.run_codec(reader, "decode", req)["values"]
    for (name, fields, _), got in zip(CASES, values, strict=True):
        assert not isinstance(got, dict), f"{reader} rejected {writer}'s {name}: {got}"
        assert decoded_values(fields, got) == expected_values(fields), f"{writer} -> {reader}: {name}"


def test_writers_agree_on_bytes(encoded: dict[str, list[str]]) -> None:
    for i, (name, _, same) in enumerate(CASES):
        if same:
            assert encoded["node"][i] == encoded["go"][i], name


def test_writer_policy_differences(encoded: dict[str, list[str]]) -> None:
    idx = {name: i for i, (name, _, _) in enumerate(CASES)}
    # @tars/stream writes float/double 0 as ZeroTag; TarsGo always writes type 4 / 5.
    assert encoded["node"][idx["float_zero"]] == "1c2c"
    assert encoded["go"][idx["float_zero"]] == "1400000000" + "250000000000000000"
    # TarsGo skips optional fields holding their zero default (optional structs are always
    # written); @tars/stream writes everything.
    assert encoded["go"][idx["optional_fields"]] == "4005" + "5603736574" + "6a" + "1c" + "0b"
    assert encoded["node"][idx["optional_fields"]] == (
        "0c" + "1600" + "290c" + "3c" + "4005" + "5603736574" + "6a" + "0c" + "1c" + "0b"
    )


# Reference note §1.10 (produced there with @tars/stream 2.0.3).
REFERENCE_EXAMPLES: list[tuple[list[dict[str, Any]], str]] = [
    ([f(1, "int", 0)], "1C"),
    ([f(2, "int", 300)], "21 01 2C"),
    ([f(3, "int", -1)], "30 FF"),
    ([f(4, "int", 70000)], "42 00 01 11 70"),
    ([f(5, "long", "5000000000")], "53 00 00 00 01 2A 05 F2 00"),
    ([f(0, "bool", True)], "00 01"),
    ([f(1, "float", 1.5)], "14 3F C0 00 00"),
    ([f(20, "string", "hi")], "F6 14 02 68 69"),
    ([f(15, "int", 1), f(200, "string", "x")], "F0 0F 01  F6 C8 01 78"),
    ([f(9, {"map": ["string", "string"]}, [["a", "b"]])], "98 00 01 06 01 61 16 01 62"),
    ([f(3, {"vector": "int"}, [1, 1000])], "39 00 02 00 01 01 03 E8"),
    ([f(7, "bytes", "010203")], "7D 00 00 03 01 02 03"),
    ([f(9, {"map": ["string", "string"]}, [])], "98 0C"),
    # TestInfo2 {1 require TestInfo t; 2 require int a=12345;}, TestInfo {1 ii=34; 2 optional s="abc"}
    (
        [f(1, {"struct": [{"tag": 1, "type": "int"}, {"tag": 2, "type": "string"}]}, [34, "abc"]), f(2, "int", 12345)],
        "1A 10 22 26 03 61 62 63 0B 21 30 39",
    ),
]


@pytest.mark.parametrize("peer", PEERS)
def test_reference_byte_examples(peer: peers.Peer) -> None:
    req = {"cases": [{"fields": fields} for fields, _ in REFERENCE_EXAMPLES]}
    got = peers.run_codec(peer, "encode", req)["hex"]
    for (fields, want), hex_ in zip(REFERENCE_EXAMPLES, got, strict=True):
        assert hex_ == want.replace(" ", "").lower(), fields
    # and both read them back
    dec = {"cases": [decode_request(fields, want.replace(" ", ""))["cases"][0] for fields, want in REFERENCE_EXAMPLES]}
    values = peers.run_codec(peer, "decode", dec)["values"]
    for (fields, _), vals in zip(REFERENCE_EXAMPLES, values, strict=True):
        assert decoded_values(fields, vals) == expected_values(fields)


# Malformed input that both readers reject.
REJECTED: list[tuple[str, list[dict[str, Any]], str]] = [
    ("string where int expected", [{"tag": 1, "type": "int"}], "16026869"),
    ("missing require tag", [{"tag": 1, "type": "int"}, {"tag": 3, "type": "int"}], "1c2603616263a60178303c"),
    ("type code 14", [{"tag": 2, "type": "int"}], "1e2101"),
    ("int4 where short expected", [{"tag": 1, "type": "short"}], "1200010000"),
    ("negative list size", [{"tag": 1, "type": {"vector": "int"}}], "1900ff"),
    ("long where int expected", [{"tag": 1, "type": "int"}], "13000000000000000001"),
    ("empty input", [{"tag": 0, "type": "string"}], ""),
]


@pytest.mark.parametrize("peer", PEERS)
def test_both_reject_malformed(peer: peers.Peer) -> None:
    req = {"cases": [{"fields": fields, "hex": hex_} for _, fields, hex_ in REJECTED]}
    values = peers.run_codec(peer, "decode", req)["values"]
    for (name, _, _), got in zip(REJECTED, values, strict=True):
        assert isinstance(got, dict) and got.get("error"), f"{peer} accepted {name}: {got}"


def test_reader_leniency_differences() -> None:
    cases = {
        "cases": [
            # double field carrying a float (type 4): TarsGo widens, @tars/stream rejects
            {"fields": [{"tag": 1, "type": "double"}], "hex": "143fc00000"},
            # vector<byte> sent as a List of int1: TarsGo accepts, @tars/stream only takes SimpleList
            {"fields": [{"tag": 1, "type": "bytes"}], "hex": "190003000100ff0c"},
        ]
    }
    go = peers.run_codec("go", "decode", cases)["values"]
    node = peers.run_codec("node", "decode", cases)["values"]
    assert go[0] == [1.5] and "error" in node[0]
    assert go[1] == ["01ff00"] and "error" in node[1]


@pytest.mark.parametrize("peer", PEERS)
def test_codec_bench_smoke(peer: peers.Peer) -> None:
    out = peers.run_codec(peer, "bench", {"seconds": 0.05})
    rp, el = out["request_packet"], out["endpoint_list_100"]
    assert rp["bytes"] == 58
    assert rp["encode_per_s"] > 0 and rp["decode_per_s"] > 0
    assert el["encode_per_s"] > 0 and el["decode_per_s"] > 0
    assert rp["encode_per_cpu_s"] > 0 and el["decode_per_cpu_s"] > 0  # per core: bench/codec's default clock
    # TarsGo's EndpointF skips zero optional fields, @tars/registry's writes all of them.
    assert el["bytes"] == {"go": 2403, "node": 3203}[peer]


def test_codec_usage_errors() -> None:
    for p in PEERS:
        with pytest.raises(peers.PeerError):
            peers.run_codec(p, "encode", {"cases": [{"fields": [f(0, "nosuchtype", 1)]}]})
        with pytest.raises(peers.PeerError):
            peers.run_codec(p, "encode", {"cases": [{"fields": [f(0, "int", 2**31)]}]})


async def test_run_codec_async() -> None:
    out = await peers.run_codec_async("go", "encode", {"cases": [{"fields": [f(2, "int", 300)]}]})
    assert out == {"hex": ["21012c"]}


# ------------------------------------------------------------------------ RPC tests


SERVANT = "Test.EchoServer.EchoObj"


def server_config(path: Path, port: int, logdir: Path) -> Path:
    path.write_text(f"""<tars>
  <application>
    enableset=n
    setdivision=NULL
    <client>
      refresh-endpoint-interval=60000
      modulename=Test.EchoServer
    </client>
    <server>
      app=Test
      server=EchoServer
      localip=127.0.0.1
      logpath={logdir}
      <Test.EchoServer.EchoObjAdapter>
        endpoint=tcp -h 127.0.0.1 -p {port} -t 60000
        servant=Test.EchoServer.EchoObj
        protocol=tars
        threads=1
        queuecap=10000
        queuetimeout=60000
      </Test.EchoServer.EchoObjAdapter>
    </server>
  </application>
</tars>
""")
    return path


@contextlib.contextmanager
def running_server(peer: peers.Peer, mode: str, tmp_path: Path) -> Iterator[int]:
    """Start an echo server of ``peer`` (by --endpoint or from a config file), yield its port."""
    port = free_port()
    argv = peers.peer_command(peer, "echo-server")
    env = dict(os.environ)
    if mode == "endpoint":
        argv += ["--endpoint", f"tcp -h 127.0.0.1 -p {port} -t 60000", "--servant", SERVANT]
    else:
        conf = server_config(tmp_path / "server.conf", port, tmp_path / "log")
        if peer == "node":
            env["TARS_CONFIG"] = str(conf)  # the @tars/rpc convention
        else:
            argv += ["--config", str(conf)]
    tmp_path.mkdir(parents=True, exist_ok=True)
    with open(tmp_path / "server.log", "wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        try:
            wait_port(port, proc)
            yield port
        finally:
            stop_process(proc)


@pytest.fixture(
    params=[("node", "endpoint"), ("go", "endpoint"), ("node", "config"), ("go", "config")],
    ids=lambda p: f"{p[0]}-server-{p[1]}",
)
def echo_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[int]:
    peer, mode = request.param
    with running_server(peer, mode, tmp_path) as port:
        yield port


def run_client(peer: peers.Peer, args: list[str], timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    argv = peers.peer_command(peer, "echo-client") + args
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("client", PEERS)
def test_echo_once(echo_server: int, client: peers.Peer) -> None:
    port = echo_server
    proxy = f"{SERVANT}@tcp -h 127.0.0.1 -p {port} -t 60000"
    for s in ["hello", "", "\u00e9\u4e2d\u2713" * 100]:
        res = run_client(client, [proxy, "--once", s])
        assert res.returncode == 0, res.stderr
        assert json.loads(res.stdout) == {"ret": 0, "r": s}


@pytest.mark.parametrize(("server", "client"), [("node", "go"), ("go", "node")])
def test_echo_bench_cross(server: peers.Peer, client: peers.Peer, tmp_path: Path) -> None:
    with running_server(server, "endpoint", tmp_path) as port:
        proxy = f"{SERVANT}@tcp -h 127.0.0.1 -p {port}"
        res = run_client(client, [proxy, "--bench", "--concurrency", "8", "--seconds", "1", "--payload", "100"])
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["errors"] == 0, out
    assert out["qps"] > 100 and 0 < out["p50_ms"] <= out["p99_ms"]


@pytest.mark.parametrize("client", PEERS)
def test_echo_client_error(client: peers.Peer) -> None:
    port = free_port()  # nothing listens there
    t0 = time.monotonic()
    res = run_client(client, [f"{SERVANT}@tcp -h 127.0.0.1 -p {port}", "--timeout", "1000", "--once", "x"], 30)
    assert res.returncode != 0
    assert "echo failed" in res.stderr
    assert res.stdout.strip() == ""
    assert time.monotonic() - t0 < 20


def test_echo_via_locator(tmp_path: Path) -> None:
    """Both clients resolve both servers through a QueryObj (findObjectByIdInSameGroup)."""
    reg_port = free_port()
    with (
        running_server("node", "endpoint", tmp_path / "n") as node_port,
        running_server("go", "endpoint", tmp_path / "g") as go_port,
    ):
        argv = [
            *peers.node_script("fake_registry"),
            "--endpoint", f"tcp -h 127.0.0.1 -p {reg_port} -t 60000",
            "--object", f"Test.NodeServer.EchoObj=tcp -h 127.0.0.1 -p {node_port} -t 60000",
            "--object", f"Test.GoServer.EchoObj=tcp -h 127.0.0.1 -p {go_port} -t 60000",
        ]  # fmt: skip
        reg = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        try:
            wait_port(reg_port, reg)
            locator = f"tars.tarsregistry.QueryObj@tcp -h 127.0.0.1 -p {reg_port}"
            for client in PEERS:
                for server in ("Test.NodeServer.EchoObj", "Test.GoServer.EchoObj"):
                    res = run_client(client, [server, "--locator", locator, "--once", f"{client}->{server}"])
                    assert res.returncode == 0, res.stderr
                    assert json.loads(res.stdout) == {"ret": 0, "r": f"{client}->{server}"}
                res = run_client(
                    client, ["Test.Unknown.EchoObj", "--locator", locator, "--timeout", "1000", "--once", "x"]
                )
                assert res.returncode != 0 and res.stdout.strip() == ""
        finally:
            stop_process(reg)
        assert reg.stdout is not None
        lookups = [json.loads(line) for line in reg.stdout.read().decode().splitlines()]
    assert {(q["func"], q["id"]) for q in lookups} >= {
        ("findObjectByIdInSameGroup", "Test.NodeServer.EchoObj"),
        ("findObjectByIdInSameGroup", "Test.GoServer.EchoObj"),
    }
