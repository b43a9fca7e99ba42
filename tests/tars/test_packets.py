"""The verified frames of the reference note, built and parsed through the public packet API."""

from __future__ import annotations

from pathlib import Path

from k8stars.tars import codec as c
from k8stars.tars import packet
from k8stars.tars.idl.compiler import load_runtime
from k8stars.tars.protocol.endpointf import EndpointF
from k8stars.tars.protocol.queryf import QueryF_interface

REQUEST = (
    "00 00 00 5D 10 01 2C 3C 40 01 56 1A"
    + " 74 61 72 73 2E 74 61 72 73 72 65 67 69 73 74 72 79 2E 51 75 65 72 79 4F 62 6A"
    " 66 0E 66 69 6E 64 4F 62 6A 65 63 74 42 79 49 64"
    " 7D 00 00 1C 16 1A 48 65 6C 6C 6F 2E 48 65 6C 6C 6F 53 65 72 76 65 72 2E 48 65 6C 6C 6F 4F 62 6A"
    " 81 0B B8 98 0C A8 0C"
)
RESPONSE = (
    "00 00 00 37 10 01 2C 30 01 4C 5C 6D 00 00 22"
    " 09 00 01 0A 06 08 31 30 2E 30 2E 30 2E 35 11 4E 21 22 00 00 EA 60 30 01 4C 5C 6C 76 00 8C 9C BC CC 0B"
    " 78 0C 86 00 98 0C"
)


def unhex(s: str) -> bytes:
    return bytes.fromhex(s.replace(" ", ""))


def test_query_request_frame() -> None:
    op = QueryF_interface["findObjectById"]
    req = packet.RequestPacket(
        iVersion=packet.TARSVERSION, iRequestId=1, sServantName="tars.tarsregistry.QueryObj",
        sFuncName="findObjectById", sBuffer=op.encode_args(["Hello.HelloServer.HelloObj"]), iTimeout=3000,
    )  # fmt: skip
    assert packet.encode_request(req) == unhex(REQUEST)
    (body,) = packet.FrameDecoder().feed(unhex(REQUEST))
    back = packet.decode_request(body)
    assert back == req
    assert op.decode_args(back.sBuffer) == ["Hello.HelloServer.HelloObj"]


def test_query_response_frame(tmp_path: Path) -> None:
    (body,) = packet.FrameDecoder().feed(unhex(RESPONSE))
    rsp = packet.decode_response(body)
    assert (rsp.iRequestId, rsp.iRet, rsp.sResultDesc, rsp.context) == (1, 0, "", {})
    (ep,) = QueryF_interface["findObjectById"].decode_result(rsp.sBuffer)
    assert ep == EndpointF(host="10.0.0.5", port=20001, timeout=60000, istcp=1)
    # Node's EndpointF stops at tag 12 and writes every field: with that shape and policy the frame is identical.
    idl = tmp_path / "NodeEndpointF.tars"
    idl.write_text(
        "module tars { struct EndpointF { 0 require string host; 1 require int port; 2 require int timeout;"
        " 3 require int istcp; 4 require int grid; 5 optional int groupworkid; 6 optional int grouprealid;"
        " 7 optional string setId; 8 optional int qos; 9 optional int bakFlag; 11 optional int weight;"
        " 12 optional int weightType; }; };"
    )
    node_ep = load_runtime([idl])["tars::EndpointF"]
    t = c.vector_of(c.struct_of(node_ep))
    sbuf = c.encode_value(t, [node_ep(host="10.0.0.5", port=20001, timeout=60000, istcp=1)], 0, skip_defaults=False)
    w = c.TarsWriter(skip_defaults=False)
    w.write_struct_body(packet.ResponsePacket(iVersion=1, iRequestId=1, sBuffer=sbuf))
    assert packet.frame(w.getvalue()) == unhex(RESPONSE)
    assert packet.encode_response(rsp, skip_defaults=False) == unhex(RESPONSE)


def test_peek_request_id() -> None:
    (body,) = packet.FrameDecoder().feed(unhex(RESPONSE))
    assert packet.peek_request_id(body) == 1
    (body,) = packet.FrameDecoder().feed(unhex(REQUEST))
    assert packet.peek_request_id(body, response=False) == 1
