"""TUP: the UniAttribute bodies of iVersion 3 (``map<string, vector<byte>>``) and iVersion 2 (with type names).

Each parameter is stored under its name as a single field with tag 0. Replies to TUP requests are RequestPackets
whose attribute holds the return value under ``""`` (and ``tars_ret``) and out parameters by name.
"""

from __future__ import annotations

from typing import Any

from k8stars.tars.codec import BYTES, STRING, TarsType, decode_value, encode_value, map_of
from k8stars.tars.errors import DecodeError
from k8stars.tars.packet import TUPVERSION2

_V3 = map_of(STRING, BYTES)
_V2 = map_of(STRING, map_of(STRING, BYTES))


class UniAttribute:
    """Named, encoded values; ``version`` is 3 (simple) or 2 (with type names)."""

    def __init__(self, version: int = 3) -> None:
        self.version = version
        self.data: dict[str, bytes] = {}
        self.types: dict[str, str] = {}

    def put(self, name: str, t: TarsType, value: Any) -> None:
        self.data[name] = encode_value(t, value, 0)
        self.types[name] = t.tup_name()

    def get(self, name: str, t: TarsType) -> Any:
        if name not in self.data:
            raise DecodeError(f"TUP attribute {name!r} is missing")
        return decode_value(t, self.data[name], 0)

    def __contains__(self, name: str) -> bool:
        return name in self.data

    def encode(self) -> bytes:
        if self.version == TUPVERSION2:
            return encode_value(_V2, {k: {self.types.get(k, ""): v} for k, v in self.data.items()}, 0)
        return encode_value(_V3, self.data, 0)

    @classmethod
    def decode(cls, data: bytes, version: int) -> UniAttribute:
        ua = cls(version)
        if version == TUPVERSION2:
            for name, typed in decode_value(_V2, data, 0).items():
                for type_name, value in typed.items():
                    ua.data[name], ua.types[name] = value, type_name
        else:
            ua.data = decode_value(_V3, data, 0)
        return ua
