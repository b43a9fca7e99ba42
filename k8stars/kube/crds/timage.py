"""TImage (`ti`): the releases of a server, node or base image and the state of its builds."""

from __future__ import annotations

from typing import Any

from .manifest import LEGACY
from .manifest import crd as make_crd
from .schema import IMAGE, OPTIONAL_SUBDOMAIN, RELEASE_ID, Schema, array, copy_schema, obj, string

# K8SFramework's server types, and python (tars.python, K8STARS's base images): a superset, old YAML stays valid.
SERVER_TYPES = ["cpp", "nodejs", "nodejs-pkg", "java-war", "java-jar", "go", "php", "python"]


def _build_state() -> Schema:
    return obj(
        {
            "id": string(RELEASE_ID, max_length=63),
            "baseImage": string(max_length=500),
            "baseImageSecret": string(OPTIONAL_SUBDOMAIN, max_length=253),
            "image": string(IMAGE, max_length=500),
            "secret": string(OPTIONAL_SUBDOMAIN, max_length=253),
            "serverType": string(enum=SERVER_TYPES),
            "createPerson": string(max_length=800),
            "createTime": string(fmt="date-time"),
            "mark": string(max_length=1600),
            "phase": string(),
            "message": string(max_length=1600),
            "handler": string(max_length=253),
        },
        required=["id", "baseImage", "image"],
    )


def timage_schema() -> Schema:
    release = obj(
        {
            "id": string(RELEASE_ID, max_length=63),
            "image": string(max_length=500),
            "secret": string(OPTIONAL_SUBDOMAIN, max_length=253),
            "createPerson": string(max_length=100),
            "createTime": string(fmt="date-time"),
            "mark": string(max_length=1600),
        },
        required=["id", "image"],
    )
    return obj(
        {
            "imageType": string(enum=["base", "server", "node"]),
            "supportedType": array(string(enum=SERVER_TYPES), min_items=1),
            "mark": string(max_length=1600),
            "releases": array(release, min_items=0, max_items=120),
            "build": obj({"last": _build_state(), "running": _build_state()}),
        }
    )


def timage_v1beta1_schema() -> Schema:
    """v1beta1 TImage: release images restricted to [.-:a-z] (no '-'), build.last.secret defaulting to ""."""
    schema = copy_schema(timage_schema())
    props = schema["properties"]
    props["releases"]["items"]["properties"]["image"] = string(r"^[\x2E-\x3A\x61-\x7A]*$", max_length=500)
    props["build"]["properties"]["last"]["properties"]["secret"]["default"] = ""
    return schema


def crd() -> dict[str, Any]:
    return make_crd(
        "TImage", timage_schema(), short_names=["ti"], legacy=LEGACY, legacy_schemas={"v1beta1": timage_v1beta1_schema}
    )
