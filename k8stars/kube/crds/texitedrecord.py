"""TExitedRecord: the pods of a server that went away."""

from __future__ import annotations

from typing import Any

from .manifest import LEGACY
from .manifest import crd as make_crd
from .schema import Schema, array, obj, string


def texitedrecord_schema() -> Schema:
    pod = obj({k: string() for k in ("uid", "name", "id", "nodeIP", "podIP", "createTime", "deleteTime")})
    return obj(
        {"app": string(), "server": string(), "pods": array(pod, max_items=150)},
        required=["app", "server", "pods"],
    )


def crd() -> dict[str, Any]:
    return make_crd("TExitedRecord", texitedrecord_schema(), legacy=LEGACY)
