"""k8stars against the real peers, @tars/stream + @tars/rpc (npm) and TarsGo (Go module proxy).

Codec: random typed values (hypothesis) are encoded by a peer and decoded by us, and the other way round; our
bytes equal TarsGo's. RPC: each peer's client calls a k8stars server, directly and through a locator that is a
k8stars QueryF servant; a k8stars client calls each peer's server, directly and through a Node locator.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import json
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from k8stars.tars import codec as c
from k8stars.tars.idl.compiler import load_runtime
from k8stars.tars.interface import Interface
from k8stars.tars.protocol.endpointf import EndpointF
from k8stars.tars.protocol.queryf import QueryF_findObjectByIdInSameGroup_result, QueryFServant
from k8stars.tars.rpc import Communicator, Servant, ServantProxy, Server
from k8stars.testing import peers
from k8stars.testing.procs import free_port, stop_process, wait_port

PEERS: list[peers.Peer] = ["node", "go"]

# ---------------------------------------------------------------------------------------------------------------
# Codec: the peers' JSON type/value protocol (k8stars/testing/peers/README.md) mapped onto our types

_SCALARS = {"bool": c.BOOL, "byte": c.BYTE, "short": c.SHORT, "int": c.INT, "long": c.LONG, "float": c.FLOAT,
            "double": c.DOUBLE, "string": c.STRING, "bytes": c.BYTES}  # fmt: skip
_struct_ids = itertools.count()


def tars_type(spec: Any) -> c.TarsType:
    if isinstance(spec, str):
        return _SCALARS[spec]
    if "vector" in spec:
        return c.vector_of(tars_type(spec["vector"]))
    if "map" in spec:
        return c.map_of(tars_type(spec["map"][0]), tars_type(spec["map"][1]))
    return c.struct_of(struct_class(spec["struct"]))


_CLASSES: dict[str, type] = {}


def struct_class(fields: list[dict[str, Any]]) -> type:
    key = json.dumps(fields, sort_keys=True)
    if key not in _CLASSES:
        tfields = tuple(c.Field(f["tag"], f"f{f['tag']}", tars_type(f["type"]), f.get("require", True)) for f in fields)
        specs = [(f.name, object, dataclasses.field(default_factory=f.default_value)) for f in tfields]
        _CLASSES[key] = dataclasses.make_dataclass(
            f"S{next(_struct_ids)}", specs, bases=(c.Struct,), namespace={"__tars_fields__": tfields},
            slots=True, unsafe_hash=True,
        )  # fmt: skip
    return _CLASSES[key]


def to_python(spec: Any, v: Any) -> Any:
    if spec == "long":
        return int(v)
    if spec == "bytes":
        return bytes.fromhex(v)
    if spec in ("float", "double"):
        return float(v)  # JSON writers print big round doubles as integers
    if isinstance(spec, str):
        return v
    if "vector" in spec:
        return [to_python(spec["vector"], x) for x in v]
    if "map" in spec:
        return {to_python(spec["map"][0], k): to_python(spec["map"][1], x) for k, x in v}
    return struct_class(spec["struct"])(*(to_python(f["type"], x) for f, x in zip(spec["struct"], v, strict=True)))


def to_wire_json(spec: Any, v: Any) -> Any:
    if spec == "long":
        return str(v)
    if spec == "bytes":
        return v.hex()
    if isinstance(spec, str):
        return v
    if "vector" in spec:
        return [to_wire_json(spec["vector"], x) for x in v]
    if "map" in spec:
        return [[to_wire_json(spec["map"][0], k), to_wire_json(spec["map"][1], x)] for k, x in v.items()]
    return [to_wire_json(f["type"], getattr(v, f"f{f['tag']}")) for f in spec["struct"]]


text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=300)
# @tars/stream keeps maps in plain JS objects, where "__proto__" is not an ordinary key (a quirk of the peer)
map_keys = text.filter(lambda s: s != "__proto__")
SCALAR_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "bool": st.booleans(),
    "byte": st.integers(-128, 127),
    "short": st.integers(-(2**15), 2**15 - 1),
    "int": st.integers(-(2**31), 2**31 - 1),
    "long": st.integers(-(2**63), 2**63 - 1),
    "float": st.floats(width=32, allow_nan=False, allow_infinity=False),
    "double": st.floats(allow_nan=False, allow_infinity=False),
    "string": text,
    "bytes": st.binary(max_size=300),
}
KEY_SPECS = ["int", "long", "string"]  # Node cannot key maps by bool or bytes


@st.composite
def struct_specs(draw: st.DrawFn, inner: st.SearchStrategy[Any]) -> Any:
    tags = sorted(draw(st.sets(st.integers(0, 255), min_size=1, max_size=4)))
    return {"struct": [{"tag": t, "type": draw(inner)} for t in tags]}


type_specs: st.SearchStrategy[Any] = st.recursive(
    st.sampled_from(list(SCALAR_VALUES)),
    lambda inner: st.one_of(
        st.builds(lambda t: {"vector": t}, inner.filter(lambda t: t != "byte")),
        st.builds(lambda k, v: {"map": [k, v]}, st.sampled_from(KEY_SPECS), inner),
        struct_specs(inner),
    ),
    max_leaves=5,
)


def values(spec: Any) -> st.SearchStrategy[Any]:
    if isinstance(spec, str):
        return SCALAR_VALUES[spec]
    if "vector" in spec:
        return st.lists(values(spec["vector"]), max_size=4)
    if "map" in spec:
        keys = map_keys if spec["map"][0] == "string" else values(spec["map"][0])
        return st.dictionaries(keys, values(spec["map"][1]), max_size=4)
    fields = spec["struct"]
    return st.tuples(*(values(f["type"]) for f in fields)).map(lambda vs: struct_class(fields)(*vs))


@st.composite
def cases(draw: st.DrawFn) -> list[dict[str, Any]]:
    tags = sorted(draw(st.sets(st.integers(0, 255), min_size=1, max_size=5)))
    out = []
    for tag in tags:
        spec = draw(type_specs)
        out.append({"tag": tag, "type": spec, "value": draw(values(spec))})
    return out


def our_bytes(fields: list[dict[str, Any]]) -> bytes:
    w = c.TarsWriter()
    for f in fields:
        w.write(f["tag"], tars_type(f["type"]), f["value"])
    return w.getvalue()


def our_decode(fields: list[dict[str, Any]], data: bytes) -> list[Any]:
    tf = [c.Field(f["tag"], f"f{f['tag']}", tars_type(f["type"]), True) for f in fields]
    return c.decode_fields(tf, data)


@pytest.fixture(scope="module", autouse=True)
def built_peers() -> None:
    peers.node_dir()
    peers.go_binary()


@given(st.lists(cases(), min_size=40, max_size=40))
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
def test_random_values_both_directions(batch: list[list[dict[str, Any]]]) -> None:
    for peer in PEERS:
        # the peer writes, we read
        request = {"cases": [{"fields": [{**f, "value": to_wire_json(f["type"], f["value"])} for f in case]}
                             for case in batch]}  # fmt: skip
        written = peers.run_codec(peer, "encode", request)["hex"]
        for case, hexs in zip(batch, written, strict=True):
            assert our_decode(case, bytes.fromhex(hexs)) == [f["value"] for f in case], (peer, case)
            if peer == "go":
                assert our_bytes(case).hex() == hexs, case  # same writer policy, same bytes
        # we write, the peer reads
        request = {"cases": [{"fields": [{"tag": f["tag"], "type": f["type"]} for f in case],
                              "hex": our_bytes(case).hex()} for case in batch]}  # fmt: skip
        read = peers.run_codec(peer, "decode", request)["values"]
        for case, got in zip(batch, read, strict=True):
            assert not isinstance(got, dict), (peer, got, case)
            decoded = [to_python(f["type"], v) for f, v in zip(case, got, strict=True)]
            assert decoded == [f["value"] for f in case], (peer, case)


def test_optional_fields_across_writer_policies() -> None:
    """TarsGo skips optional zeros, Node writes them: we read both and our skipping writer is read by both."""
    spec = {"struct": [{"tag": 0, "type": "int"}, {"tag": 1, "type": "string", "require": False},
                       {"tag": 2, "type": {"vector": "int"}, "require": False}]}  # fmt: skip
    cls = struct_class(spec["struct"])
    value = cls(7, "", [])
    fields = [{"tag": 1, "type": spec, "value": value}]
    for peer in PEERS:
        (hexs,) = peers.run_codec(peer, "encode", {"cases": [{"fields": [{**fields[0], "value": [7, "", []]}]}]})["hex"]
        assert our_decode(fields, bytes.fromhex(hexs)) == [value]
        got = peers.run_codec(peer, "decode", {"cases": [{"fields": [{"tag": 1, "type": spec}],
                                                          "hex": our_bytes(fields).hex()}]})["values"]  # fmt: skip
        assert got == [[[7, "", []]]]
    assert our_bytes(fields).hex() == "1a00070b"


# ---------------------------------------------------------------------------------------------------------------
# RPC

ECHO = load_runtime([peers.GO_SRC / "echo.tars"]).interfaces()["Test::Echo"]
SERVANT = "Test.EchoServer.EchoObj"


class EchoImp(Servant):
    __tars_interface__ = ECHO

    async def echo(self, s: str) -> tuple[int, str]:
        return 0, s


def echo_proxy(comm: Communicator, target: str, iface: Interface = ECHO) -> ServantProxy:
    return comm.string_to_proxy(ServantProxy, target, interface=iface)


@contextlib.contextmanager
def peer_server(peer: peers.Peer, tmp_path: Path) -> Iterator[int]:
    port = free_port()
    argv = [*peers.peer_command(peer, "echo-server"), "--endpoint", f"tcp -h 127.0.0.1 -p {port} -t 60000"]
    with open(tmp_path / f"{peer}-server.log", "wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            wait_port(port, proc)
            yield port
        finally:
            stop_process(proc)


async def run_client(peer: peers.Peer, *args: str) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        *peers.peer_command(peer, "echo-client"), *args,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    result: dict[str, Any] = json.loads(out)
    return result


@pytest.fixture
async def k8stars_echo() -> AsyncIterator[Server]:
    srv = Server()
    srv.add_servant(EchoImp(), SERVANT, "tcp -h 127.0.0.1 -p 0 -t 60000")
    await srv.start()
    yield srv
    await srv.stop(0)


@pytest.mark.parametrize("peer", PEERS)
async def test_k8stars_client_calls_peer_server(peer: peers.Peer, tmp_path: Path) -> None:
    with peer_server(peer, tmp_path) as port:
        async with Communicator() as comm:
            p = echo_proxy(comm, f"{SERVANT}@tcp -h 127.0.0.1 -p {port}")
            for s in ["hi", "", "é中✓" * 500, "x" * 100_000]:
                assert tuple(await p.tars_invoke("echo", (s,))) == (0, s)
            results = await asyncio.gather(*(p.tars_invoke("echo", (str(i),)) for i in range(200)))
            assert [r.r for r in results] == [str(i) for i in range(200)]
            await p.tars_ping()


@pytest.mark.parametrize("peer", PEERS)
async def test_peer_client_calls_k8stars_server(peer: peers.Peer, k8stars_echo: Server) -> None:
    ep = k8stars_echo.adapters[SERVANT + "Adapter"].endpoint
    for s in ["hello", "", "é中✓" * 100]:
        assert await run_client(peer, f"{SERVANT}@{ep}", "--once", s) == {"ret": 0, "r": s}
    bench = await run_client(peer, f"{SERVANT}@{ep}", "--bench", "--concurrency", "16", "--seconds", "1",
                             "--payload", "100")  # fmt: skip
    assert bench["errors"] == 0 and bench["qps"] > 100


class Locator(QueryFServant):
    def __init__(self, table: dict[str, list[EndpointF]]) -> None:
        self.table = table

    async def findObjectByIdInSameGroup(self, id: str) -> QueryF_findObjectByIdInSameGroup_result:
        return QueryF_findObjectByIdInSameGroup_result(0, self.table.get(id, []), [])


@pytest.mark.parametrize("peer", PEERS)
async def test_peer_client_resolves_through_k8stars_locator(peer: peers.Peer, k8stars_echo: Server) -> None:
    ep = k8stars_echo.adapters[SERVANT + "Adapter"].endpoint
    reg = Server()
    reg.add_servant(Locator({SERVANT: [ep.to_endpointf()]}), "tars.tarsregistry.QueryObj",
                    "tcp -h 127.0.0.1 -p 0 -t 60000")  # fmt: skip
    await reg.start()
    try:
        locator = f"tars.tarsregistry.QueryObj@{reg.adapters['tars.tarsregistry.QueryObjAdapter'].endpoint}"
        assert await run_client(peer, SERVANT, "--locator", locator, "--once", "by name") == {"ret": 0, "r": "by name"}
    finally:
        await reg.stop(0)


async def test_k8stars_client_resolves_through_node_locator(tmp_path: Path) -> None:
    reg_port = free_port()
    with peer_server("go", tmp_path) as go_port:
        argv = [*peers.node_script("fake_registry"), "--endpoint", f"tcp -h 127.0.0.1 -p {reg_port} -t 60000",
                "--object", f"Test.GoServer.EchoObj=tcp -h 127.0.0.1 -p {go_port} -t 60000"]  # fmt: skip
        reg = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        try:
            wait_port(reg_port, reg)
            locator = f"tars.tarsregistry.QueryObj@tcp -h 127.0.0.1 -p {reg_port}"
            async with Communicator(locator=locator) as comm:
                p = echo_proxy(comm, "Test.GoServer.EchoObj")
                assert tuple(await p.tars_invoke("echo", ("via node locator",))) == (0, "via node locator")
                assert [e.port for e in await p.tars_endpoints()] == [go_port]
        finally:
            stop_process(reg)
