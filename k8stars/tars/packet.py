"""RPC packets (RequestPacket / ResponsePacket of RequestF.tars) and their framing on a stream.

A frame is a 4-byte big-endian length that counts itself, then the packet's bare fields. Requests and responses
share a connection and are matched by request id.
"""

from __future__ import annotations

import struct as _struct

from k8stars.tars import codec as _codec
from k8stars.tars.codec import TarsReader
from k8stars.tars.errors import DecodeError, FrameError
from k8stars.tars.protocol.requestf import RequestPacket, ResponsePacket

__all__ = [
    "JSONVERSION",
    "MAX_FRAME_SIZE",
    "TARSNORMAL",
    "TARSONEWAY",
    "TARSVERSION",
    "TUPVERSION",
    "TUPVERSION2",
    "FrameDecoder",
    "RequestPacket",
    "ResponsePacket",
    "decode_request",
    "decode_response",
    "encode_request",
    "encode_response",
    "frame",
]

# iVersion (BaseF.tars)
TARSVERSION = 1
TUPVERSION2 = 2  # TUP with type names ("complex")
TUPVERSION = 3  # TUP UniAttribute ("simple")
JSONVERSION = 5

# cPacketType
TARSNORMAL = 0
TARSONEWAY = 1

# iMessageType bits
TARSMESSAGETYPENULL = 0x00
TARSMESSAGETYPEHASH = 0x01
TARSMESSAGETYPEGRID = 0x02
TARSMESSAGETYPEDYED = 0x04
TARSMESSAGETYPESAMPLE = 0x08
TARSMESSAGETYPEASYNC = 0x10
TARSMESSAGETYPESETNAME = 0x80
TARSMESSAGETYPETRACE = 0x100

# status keys
STATUS_DYED_KEY = "STATUS_DYED_KEY"
STATUS_GRID_KEY = "STATUS_GRID_KEY"
STATUS_SETNAME_VALUE = "STATUS_SETNAME_VALUE"
STATUS_TRACE_KEY = "STATUS_TRACE_KEY"
STATUS_RESULT_CODE = "STATUS_RESULT_CODE"
STATUS_RESULT_DESC = "STATUS_RESULT_DESC"

PING_FUNC = "tars_ping"
RECONNECT_DESC = "_reconnect_"  # sResultDesc of the push a TarsGo server sends on graceful stop

MAX_FRAME_SIZE = 10 * 1024 * 1024  # TarsGo's and TarsJava's default
_HEADER = _struct.Struct(">I")


def frame(body: bytes) -> bytes:
    """``body`` with its length prefix."""
    return _HEADER.pack(len(body) + 4) + body


# The codec functions are looked up on the module at each call, so that codec.use_backend() applies here too.


def encode_request(pkt: RequestPacket) -> bytes:
    """A framed RequestPacket."""
    return _codec._encode_framed(pkt)


def encode_response(pkt: ResponsePacket, *, skip_defaults: bool = True) -> bytes:
    """A framed ResponsePacket; ``skip_defaults=False`` also writes an empty sResultDesc and context, as Node does."""
    return _codec._encode_framed(pkt, skip_defaults=skip_defaults)


def decode_request(body: bytes) -> RequestPacket:
    """A RequestPacket from a frame's body (without the length prefix)."""
    return _codec.decode(RequestPacket, body)


def decode_response(body: bytes) -> ResponsePacket:
    """A ResponsePacket from a frame's body (without the length prefix)."""
    return _codec.decode(ResponsePacket, body)


def peek_request_id(body: bytes, response: bool = True) -> int:
    """The request id of a packet without decoding the rest (tag 3 in a response, 4 in a request)."""
    r = TarsReader(body)
    want = 3 if response else 4
    while not r.at_end():
        tag, wire = r.read_head()
        if tag == want:
            return r.read_int_payload(wire)
        r.skip_field(wire)
    raise DecodeError("packet has no request id")


class FrameDecoder:
    """Splits a byte stream into frame bodies. A length below 5 or above ``max_size`` raises FrameError: the
    stream cannot be resynchronised, so the connection must be closed."""

    __slots__ = ("_buf", "max_size")

    def __init__(self, max_size: int = MAX_FRAME_SIZE) -> None:
        self._buf = bytearray()
        self.max_size = max_size

    def feed(self, data: bytes) -> list[bytes]:
        buf = self._buf
        buf += data
        out: list[bytes] = []
        pos = 0
        n = len(buf)
        while n - pos >= 4:
            size = _HEADER.unpack_from(buf, pos)[0]
            if size < 5 or size > self.max_size:
                raise FrameError(f"frame length {size} is outside 5..{self.max_size}")
            if n - pos < size:
                break
            out.append(bytes(buf[pos + 4 : pos + size]))
            pos += size
        if pos:
            del buf[:pos]
        return out

    @property
    def pending(self) -> int:
        """Bytes received that do not yet form a whole frame."""
        return len(self._buf)
