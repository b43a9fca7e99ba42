"""TTree: the businesses and apps of a namespace (object `tars-tree`), for the web console."""

from __future__ import annotations

from typing import Any

from .manifest import LEGACY
from .manifest import crd as make_crd
from .schema import PRINTABLE_HAN, TARS_NAME, Schema, array, integer, obj, string


def ttree_schema() -> Schema:
    app = obj(
        {
            "name": string(TARS_NAME, max_length=63),
            "businessRef": string(r"^(|[\x21-\x7e\p{Han}]{2,32})$"),
            "createTime": string(fmt="date-time"),
            "createPerson": string(max_length=100),
            "mark": string(max_length=1600),
        },
        required=["name", "businessRef"],
    )
    business = obj(
        {
            "name": string(PRINTABLE_HAN),
            "show": string(min_length=1, max_length=100),
            "weight": integer(1, 5, 3),
            "createTime": string(fmt="date-time"),
            "createPerson": string(max_length=100),
            "mark": string(max_length=1600),
        },
        required=["name", "show", "weight"],
    )
    return obj({"apps": array(app), "businesses": array(business)}, required=["apps", "businesses"])


def crd() -> dict[str, Any]:
    return make_crd("TTree", ttree_schema(), legacy=LEGACY)
