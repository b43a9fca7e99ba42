"""JSON-schema builders and the patterns (Go RE2 syntax, evaluated by the apiserver) of K8SFramework's CRDs."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

Schema = dict[str, Any]

TARS_NAME = r"^[A-Za-z][0-9A-Za-z]*$"
SERVANT_NAME = r"^[A-Za-z][0-9A-Za-z]{0,62}$"
DNS_LABEL = r"^([0-9a-z][-0-9a-z]*)?[0-9a-z]$"
DNS_SUBDOMAIN = r"^([0-9a-z][-0-9a-z]*)?[0-9a-z](\.([0-9a-z][-0-9a-z]*)?[0-9a-z])*$"
OPTIONAL_SUBDOMAIN = r"^([0-9a-z][-0-9a-z]*)?[0-9a-z]?(\.([0-9a-z][-0-9a-z]*)?[0-9a-z])*$"
MIXED_LABEL = r"^([0-9A-Za-z][-0-9A-Za-z]*)?[0-9A-Za-z]$"
RELEASE_ID = r"^([0-9A-Za-z][-_.0-9A-Za-z]*)?[0-9A-Za-z]$"
IMAGE = r"^[\x2D-\x3A\x61-\x7A]*$"  # lower-case letters, digits and - . / : as upstream
QUANTITY = r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
LABEL_KEY = r"^([0-9A-Za-z][-._0-9A-Za-z]*[0-9A-Za-z]\/)?([0-9A-Za-z][-._0-9A-Za-z]*)?[0-9A-Za-z]$"
LABEL_VALUE = r"^([0-9A-Za-z][-_.0-9A-Za-z]*)?[0-9A-Za-z]?$"
ENV_NAME = r"^[-._0-9A-Za-z]{1,63}$"
FILE_KEY = r"^[-._0-9A-Za-z]{1,253}$"
PRINTABLE_HAN = r"^[\x21-\x7e\p{Han}]{2,32}$"


def string(
    pattern: str | None = None,
    *,
    max_length: int | None = None,
    min_length: int | None = None,
    default: str | None = None,
    enum: Sequence[str] | None = None,
    fmt: str | None = None,
) -> Schema:
    s: Schema = {"type": "string"}
    if pattern is not None:
        s["pattern"] = pattern
    if min_length is not None:
        s["minLength"] = min_length
    if max_length is not None:
        s["maxLength"] = max_length
    if enum is not None:
        s["enum"] = list(enum)
    if fmt is not None:
        s["format"] = fmt
    if default is not None:
        s["default"] = default
    return s


def integer(minimum: int | None = None, maximum: int | None = None, default: int | None = None) -> Schema:
    s: Schema = {"type": "integer"}
    if minimum is not None:
        s["minimum"] = minimum
    if maximum is not None:
        s["maximum"] = maximum
    if default is not None:
        s["default"] = default
    return s


def boolean(default: bool | None = None) -> Schema:
    s: Schema = {"type": "boolean"}
    if default is not None:
        s["default"] = default
    return s


def obj(
    properties: Mapping[str, Schema] | None = None,
    *,
    required: Sequence[str] = (),
    default: Any = None,
    one_of: Sequence[Sequence[str]] = (),
    additional: Schema | None = None,
    preserve: bool = False,
) -> Schema:
    s: Schema = {"type": "object"}
    if properties is not None:
        s["properties"] = dict(properties)
    if additional is not None:
        s["additionalProperties"] = additional
    if required:
        s["required"] = list(required)
    if one_of:
        s["oneOf"] = [{"required": list(r)} for r in one_of]
    if preserve:
        s["x-kubernetes-preserve-unknown-fields"] = True
    if default is not None:
        s["default"] = default
    return s


def array(
    items: Schema,
    *,
    default: Any = None,
    min_items: int | None = None,
    max_items: int | None = None,
) -> Schema:
    s: Schema = {"type": "array", "items": items}
    if min_items is not None:
        s["minItems"] = min_items
    if max_items is not None:
        s["maxItems"] = max_items
    if default is not None:
        s["default"] = default
    return s


def int_or_string(pattern: str | None = None, default: str | None = None) -> Schema:
    s: Schema = {"x-kubernetes-int-or-string": True}
    if pattern is not None:
        s["pattern"] = pattern
    if default is not None:
        s["default"] = default
    return s


def column(name: str, kind: str, path: str) -> dict[str, str]:
    return {"name": name, "type": kind, "jsonPath": path}


def copy_schema(schema: Schema) -> Schema:
    """A deep copy, to derive an older version's schema from the current one."""
    copied: Schema = json.loads(json.dumps(schema))
    return copied
