"""Property and fuzz tests: any value round-trips; any bytes give a value or a DecodeError, never anything else."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from k8stars.tars import codec as c
from k8stars.tars import packet
from k8stars.tars.errors import DecodeError, FrameError
from k8stars.tars.protocol.endpointf import EndpointF
from k8stars.tars.protocol.queryf import QueryF_interface
from k8stars.tars.protocol.statf import StatMicMsgBody, StatMicMsgHead

SCALARS: dict[c.TarsType, st.SearchStrategy[Any]] = {
    c.BOOL: st.booleans(),
    c.BYTE: st.integers(-128, 127),
    c.SHORT: st.integers(-(2**15), 2**15 - 1),
    c.INT: st.integers(-(2**31), 2**31 - 1),
    c.LONG: st.integers(-(2**63), 2**63 - 1),
    c.UBYTE: st.integers(0, 255),
    c.USHORT: st.integers(0, 2**16 - 1),
    c.UINT: st.integers(0, 2**32 - 1),
    c.FLOAT: st.floats(width=32, allow_nan=False),
    c.DOUBLE: st.floats(allow_nan=False),
    c.STRING: st.text(max_size=300),
    c.BYTES: st.binary(max_size=300),
}
KEY_TYPES = [c.INT, c.LONG, c.STRING]

types: st.SearchStrategy[c.TarsType] = st.recursive(
    st.sampled_from(list(SCALARS)),
    lambda inner: st.one_of(
        inner.map(c.vector_of),
        st.tuples(st.sampled_from(KEY_TYPES), inner).map(lambda kv: c.map_of(*kv)),
    ),
    max_leaves=6,
)


def values_of(t: c.TarsType) -> st.SearchStrategy[Any]:
    if t in SCALARS:
        return SCALARS[t]
    if t.kind is c.Kind.VECTOR:
        assert t.elem is not None
        return st.lists(values_of(t.elem), max_size=5)
    assert t.key is not None and t.value is not None
    return st.dictionaries(values_of(t.key), values_of(t.value), max_size=5)


@st.composite
def typed_values(draw: st.DrawFn) -> tuple[c.TarsType, Any, int]:
    t = draw(types)
    return t, draw(values_of(t)), draw(st.integers(0, 255))


@given(typed_values())
@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
def test_any_value_round_trips(tv: tuple[c.TarsType, Any, int]) -> None:
    t, value, tag = tv
    assert c.decode_value(t, c.encode_value(t, value, tag), tag) == value


endpoints = st.builds(
    EndpointF,
    host=st.text(max_size=20),
    port=st.integers(0, 65535),
    timeout=st.integers(0, 2**31 - 1),
    istcp=st.integers(0, 2),
    setId=st.text(max_size=10),
    weight=st.integers(-1, 100),
    nodeName=st.text(max_size=10),
)


@given(st.lists(endpoints, max_size=20))
def test_query_response_round_trips(eps: list[EndpointF]) -> None:
    op = QueryF_interface["findObjectById4Any"]
    result = op.decode_result(op.encode_result((0, eps, eps[:1])))
    assert result.activeEp == eps and result.inactiveEp == eps[:1]
    assert [e.nodeName for e in result.activeEp] == [e.nodeName for e in eps]


@given(st.dictionaries(st.builds(StatMicMsgHead, masterName=st.text(max_size=5), slavePort=st.integers(0, 9)),
                       st.builds(StatMicMsgBody, count=st.integers(0, 100)), max_size=5))  # fmt: skip
def test_struct_keyed_maps_round_trip(msg: dict[StatMicMsgHead, StatMicMsgBody]) -> None:
    t = c.map_of(c.struct_of(StatMicMsgHead), c.struct_of(StatMicMsgBody))
    assert c.decode_value(t, c.encode_value(t, msg, 1), 1) == msg


def _frame_bytes() -> bytes:
    req = packet.RequestPacket(
        iVersion=1, iRequestId=7, sServantName="A.B.C", sFuncName="f", sBuffer=b"\x16\x01x",
        iTimeout=3000, context={"k": "v"}, status={"s": "t"},
    )  # fmt: skip
    return packet.encode_request(req)


VALID = _frame_bytes()


@given(st.binary(max_size=200))
@settings(max_examples=2000)
def test_random_bytes_only_raise_decode_errors(data: bytes) -> None:
    for decoder in (packet.decode_request, packet.decode_response):
        try:
            decoder(data)
        except DecodeError:
            pass
    try:
        c.decode_value(c.vector_of(c.struct_of(EndpointF)), data)
    except DecodeError:
        pass


@given(st.lists(st.tuples(st.integers(0, len(VALID) - 1), st.integers(0, 255)), min_size=1, max_size=8))
@settings(max_examples=2000)
def test_mutated_frames_only_raise_decode_errors(edits: list[tuple[int, int]]) -> None:
    data = bytearray(VALID)
    for pos, b in edits:
        data[pos] = b
    try:
        for body in packet.FrameDecoder().feed(bytes(data)):
            packet.decode_request(body)
    except (DecodeError, FrameError):
        pass


@given(st.binary(min_size=1, max_size=64), st.integers(1, 16))
def test_frame_decoder_chunking(payload: bytes, chunk: int) -> None:
    stream = packet.frame(payload) + packet.frame(payload[::-1])
    dec = packet.FrameDecoder()
    bodies: list[bytes] = []
    for i in range(0, len(stream), chunk):
        bodies += dec.feed(stream[i : i + chunk])
    assert bodies == [payload, payload[::-1]] and dec.pending == 0


def test_frame_limits() -> None:
    dec = packet.FrameDecoder(max_size=100)
    for bad in (b"\x00\x00\x00\x04", b"\x00\x00\x00\x65", b"\xff\xff\xff\xff"):
        try:
            packet.FrameDecoder(max_size=100).feed(bad)
        except FrameError as e:
            assert "outside 5..100" in str(e)
        else:
            raise AssertionError("accepted a bad frame length")
    assert dec.feed(b"\x00\x00\x00\x05\x0c") == [b"\x0c"]
