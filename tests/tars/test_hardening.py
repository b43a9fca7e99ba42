"""Hostile requests against the RPC server (issue 16, items 10 and 13), over real connections: a JSON nesting bomb
gets an error reply and the connection, with every call on it, stays; a flood of bad packets costs one warning per
interval, and the next one says how many were suppressed; endpoint strings no TARS peer reads the same way are
refused by the one parser every part uses."""

from __future__ import annotations

import asyncio
import json
import logging
import struct
from collections.abc import AsyncIterator

import pytest

from examples.hello.server import SERVANT, HelloImp
from k8stars.tars import errors, packet
from k8stars.tars.endpoint import Endpoint, EndpointError
from k8stars.tars.rpc import Server
from k8stars.tars.untrusted import BadName, Throttle, check_name, printable


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    srv = Server(grace_seconds=2)
    srv.add_servant(HelloImp(), SERVANT, "tcp -h 127.0.0.1 -p 0 -t 60000")
    await srv.start()
    yield srv
    await srv.stop(0)


def _json_call(request_id: int, body: bytes) -> bytes:
    req = packet.RequestPacket(iVersion=packet.JSONVERSION, iRequestId=request_id, sServantName=SERVANT,
                               sFuncName="greet", sBuffer=body, iTimeout=10000)  # fmt: skip
    return packet.encode_request(req)


async def _replies(reader: asyncio.StreamReader, n: int) -> dict[int, packet.ResponsePacket]:
    decoder, out = packet.FrameDecoder(), dict[int, packet.ResponsePacket]()
    while len(out) < n:
        data = await asyncio.wait_for(reader.read(65536), 30)
        assert data, "the server closed the connection"
        for body in decoder.feed(data):
            rsp = packet.decode_response(body)
            out[rsp.iRequestId] = rsp
    return out


async def test_a_json_nesting_bomb_gets_an_error_and_the_connection_stays(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    ep = server.adapters[SERVANT + "Adapter"].endpoint
    reader, writer = await asyncio.open_connection(ep.host, ep.port)
    try:
        good = json.dumps({"req": {"name": "js", "times": 1}}).encode()
        bomb = b'{"req": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
        # a call in flight before the bomb, the bomb, and one after, pipelined on one connection
        writer.write(_json_call(1, good) + _json_call(2, bomb) + _json_call(3, good))
        replies = await _replies(reader, 3)
        assert replies[1].iRet == 0 and json.loads(replies[1].sBuffer)["lines"] == ["hello js"]
        assert replies[2].iRet == errors.TARSSERVERDECODEERR
        assert "nested too deep" in replies[2].sResultDesc
        assert replies[3].iRet == 0
        # a value of the wrong type, however large, is named briefly
        wide = json.dumps({"req": {"name": ["x" * 1000] * 10_000}}).encode()
        writer.write(_json_call(4, wide))
        (reply,) = (await _replies(reader, 1)).values()
        assert reply.iRet == errors.TARSSERVERDECODEERR and len(reply.sResultDesc) < 400, reply.sResultDesc
    finally:
        writer.close()
    assert "Traceback" not in caplog.text and "RecursionError" not in caplog.text


async def test_a_flood_of_bad_packets_costs_one_warning(server: Server, caplog: pytest.LogCaptureFixture) -> None:
    ep = server.adapters[SERVANT + "Adapter"].endpoint
    caplog.set_level(logging.WARNING, "k8stars.tars.rpc")
    for i in range(100):
        reader, writer = await asyncio.open_connection(ep.host, ep.port)
        writer.write(b"\x00\x00\x00\x0bgarbage\n%d" % (i % 10) if i % 2 else struct.pack(">I", 1 << 30))
        assert await asyncio.wait_for(reader.read(), 30) == b""  # each one is closed
        writer.close()
    warnings = [r for r in caplog.records if r.name == "k8stars.tars.rpc" and r.levelno == logging.WARNING]
    assert len(warnings) <= 2  # one per kind (frame, packet) per interval, whatever came before this test


def test_throttle_says_how_many_it_suppressed(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    throttle = Throttle(logging.getLogger("test.throttle"), interval=10, clock=lambda: now[0])
    caplog.set_level(logging.WARNING, "test.throttle")
    for i in range(50):
        now[0] = i * 0.1  # 50 bad packets in 5 s
        throttle.emit("packet", "bad packet from %s", printable(f"peer{i}\nFORGED LINE"))
    now[0] = 12.0
    throttle.emit("packet", "bad packet from %s", "peer50")
    assert [r.getMessage() for r in caplog.records] == [
        "bad packet from peer0\\nFORGED LINE",
        "bad packet from peer50 (49 more like this suppressed since the last one)",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tcp -h 127.0.0.1 -p 20001 -t 99999999999", "is not an integer in 0..2147483647"),
        ("tcp -h 127.0.0.1 -p 20001 -g 1099511627776", "(grid) is not an integer"),
        ("tcp -h 127.0.0.1 -p 2_0001", "is not a port"),
        ("tcp -h 127.0.0.1 -p \u0662\u0660\u0660\u0660\u0661", "is not a port"),
        ("tcp -h 127.0.0.1 -p 1 -t \uff15", "(timeout) is not an integer"),  # a fullwidth 5
        ("tcp -h 0 -p 20001", "is not an IP address or a host name"),
        ("tcp -h 127.1 -p 20001", "is not an IP address or a host name"),
        ("tcp -h h\u00e9llo -p 20001", "is not an IP address or a host name"),
    ],
)
def test_the_endpoint_parser_refuses_what_peers_read_differently(text: str, expected: str) -> None:
    with pytest.raises(EndpointError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        Endpoint.parse(text)


def test_the_endpoint_parser_keeps_what_peers_read() -> None:
    ep = Endpoint.parse("ssl -h fe80::1%eth0 -p 65535 -t 2147483647 -w 150 -v 1 -e 1 -x ignored")
    assert (ep.host, ep.port, ep.timeout, ep.weight, ep.weight_type, ep.auth_type) == (
        "fe80::1%eth0", 65535, 2147483647, 100, 1, 1)  # fmt: skip
    assert Endpoint.parse("tcp -h * -p 0").is_wildcard and Endpoint.parse("tcp -h ::0 -p 1").is_wildcard
    assert not Endpoint.parse("tcp -h tars-registry.tars.svc.cluster.local. -p 17890").is_wildcard


def test_one_name_rule() -> None:
    assert check_name("server", "Hello-Server_2:x.y", 128) == "Hello-Server_2:x.y"
    for bad in ("", "HelloServer'; DROP TABLE t_config_files; --", "a\nb", "é", ".hidden", "x" * 129):
        with pytest.raises(BadName):
            check_name("server", bad, 128)
