"""TPlugin (`tp`): a web console plugin (K8SFramework's newer kind; nothing here reads it).

K8SFramework serves v1beta1, v1beta2 and v1beta3 with conversion None: `spec` {name, name_en, obj, type, path} and,
since v1beta2, `extern`.
"""

from __future__ import annotations

from typing import Any

from .manifest import crd as make_crd
from .schema import Schema, integer, obj, string


def tplugin_schema(extern: bool = True) -> Schema:
    fields: dict[str, Schema] = {"name": string(), "name_en": string(), "obj": string(), "type": integer()}
    fields["path"] = string()
    if extern:
        fields["extern"] = integer()
    return obj({"spec": obj(fields)})


def crd() -> dict[str, Any]:
    return make_crd(
        "TPlugin",
        tplugin_schema(),
        short_names=["tp"],
        legacy=("v1beta1", "v1beta2"),
        legacy_schemas={"v1beta1": lambda: tplugin_schema(extern=False)},
    )
