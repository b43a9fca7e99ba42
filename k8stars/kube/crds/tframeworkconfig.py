"""TFrameworkConfig (`tfc`): the framework settings of a namespace (object `tars-framework`). v1beta2 differs from
v1beta3 and is served only through the conversion webhook (k8stars/operator/conversion.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .manifest import crd as make_crd
from .schema import IMAGE, OPTIONAL_SUBDOMAIN, Schema, array, boolean, copy_schema, integer, obj, string


def tframeworkconfig_schema() -> Schema:
    def image_ref(key: str) -> Schema:
        return obj(
            {key: string(IMAGE, max_length=500), "secret": string(OPTIONAL_SUBDOMAIN, default="")},
            required=[key],
        )

    upchain_item = obj(
        {
            "host": string(IMAGE, max_length=500),
            "port": integer(1, 65535),
            "timeout": integer(default=6000),
            "isTcp": boolean(True),
        },
        required=["host", "port"],
    )
    limit = integer(10, 100, 48)
    return obj(
        {
            "imageBuild": obj(
                {
                    "maxBuildTime": integer(180, 900, 300),  # seconds
                    "idFormat": string(),
                    "executor": image_ref("image"),
                },
                required=["executor"],
            ),
            "imageUpload": image_ref("registry"),
            "recordLimit": obj(
                {"texitedPod": limit, "tconfigHistory": dict(limit), "timageRelease": dict(limit)}, default={}
            ),
            "nodeImage": image_ref("image"),
            "upChain": obj(additional=array(upchain_item, min_items=1), default={}),
            "expand": obj(additional=string(), default={}),
        },
        required=["imageBuild", "imageUpload", "nodeImage"],
    )


def tframeworkconfig_v1beta2_schema() -> Schema:
    """v1beta2 TFrameworkConfig: `imageRegistry` (renamed imageUpload in v1beta3), no imageBuild.executor, idFormat
    defaulting to "", a nodeImage secret of at most 253 characters; imageBuild optional."""
    schema = copy_schema(tframeworkconfig_schema())
    props = schema["properties"]
    build = props["imageBuild"]
    del build["properties"]["executor"], build["required"]
    build["properties"]["idFormat"] = string(default="")
    upload = props.pop("imageUpload")
    props["nodeImage"]["properties"]["secret"] = string(OPTIONAL_SUBDOMAIN, max_length=253, default="")
    schema["properties"] = {
        "imageBuild": build,
        "imageRegistry": upload,
        **{k: v for k, v in props.items() if k != "imageBuild"},
    }
    schema["required"] = ["imageRegistry", "nodeImage"]
    return schema


# The older versions and their schemas (served through the conversion webhook).
OLDER_VERSIONS: dict[str, Callable[[], Schema]] = {"v1beta2": tframeworkconfig_v1beta2_schema}


def crd() -> dict[str, Any]:
    return make_crd("TFrameworkConfig", tframeworkconfig_schema(), short_names=["tfc"])
