"""TTemplate (`tt`): a TARS config template and its parent."""

from __future__ import annotations

from typing import Any

from .manifest import LEGACY
from .manifest import crd as make_crd
from .schema import DNS_SUBDOMAIN, Schema, column, obj, string


def ttemplate_schema() -> Schema:
    spec = obj(
        {"content": string(max_length=1560000), "parent": string(DNS_SUBDOMAIN, max_length=253)},
        required=["content", "parent"],
    )
    return obj({"spec": spec})


def crd() -> dict[str, Any]:
    return make_crd(
        "TTemplate",
        ttemplate_schema(),
        short_names=["tt"],
        columns=[column("Parent", "string", ".spec.parent")],
        legacy=LEGACY,
    )
