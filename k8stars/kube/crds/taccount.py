"""TAccount (`ta`): a console user, its password (bcrypt) and tokens, and its roles."""

from __future__ import annotations

from typing import Any

from .manifest import LEGACY
from .manifest import crd as make_crd
from .schema import Schema, array, boolean, column, obj, string


def taccount_schema() -> Schema:
    token = obj(
        {
            "name": string(r"^[\x21-\x7e]*$", min_length=2, max_length=32),
            "content": string(max_length=8092),
            "updateTime": string(fmt="date-time"),
            "expirationTime": string(fmt="date-time"),
            "valid": boolean(True),
        },
        required=["name", "content", "expirationTime"],
    )
    authentication = obj(
        {
            "password": string(r"^[\x21-\x7e]*$", min_length=6, max_length=32),
            "bcryptPassword": string(min_length=60, max_length=60),
            "activated": boolean(False),
            "tokens": array(token),
        },
        one_of=[["password"], ["bcryptPassword"]],
    )
    authorization = obj(
        {
            "role": string(enum=["admin", "operator", "developer"]),
            "flag": string(max_length=1600),
            "updateTime": string(fmt="date-time"),
        },
        required=["role", "flag"],
    )
    spec = obj(
        {
            "username": string(r"^[\x21-\x7e\p{Han}]*$", min_length=2, max_length=16),
            "extra": array(string(max_length=1024)),
            "authentication": authentication,
            "authorization": array(authorization),
        },
        required=["username", "authentication", "authorization"],
    )
    return obj({"spec": spec})


def crd() -> dict[str, Any]:
    return make_crd(
        "TAccount",
        taccount_schema(),
        short_names=["ta"],
        columns=[column("Username", "string", ".spec.username")],
        legacy=LEGACY,
    )
