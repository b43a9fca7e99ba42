"""TFrameworkKey (`tfk`): the web console's key material (K8SFramework's newer kind; nothing here reads it).

K8SFramework names it `tframeworkkey.k8s.tars.io` with the plural `tframeworkkey` (no s) and serves v1beta2 and
v1beta3 with one schema: `spec` {cuid, pri_key, autologin}; kept exactly so.
"""

from __future__ import annotations

from typing import Any

from .manifest import crd as make_crd
from .schema import Schema, integer, obj, string


def tframeworkkey_schema() -> Schema:
    return obj({"spec": obj({"cuid": string(), "pri_key": string(), "autologin": integer()})})


def crd() -> dict[str, Any]:
    return make_crd(
        "TFrameworkKey", tframeworkkey_schema(), short_names=["tfk"], plural="tframeworkkey", legacy=("v1beta2",)
    )
