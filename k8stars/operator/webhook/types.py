"""Type checks of an object against its CRD's schema, before any hook reads it.

The apiserver checks the schema only after the mutating webhooks: a hook reading ``readinessGates: "warm"`` as a list
or ``replicas: "two"`` as a number would build a wrong patch or fail. Every field the schema types is checked here
first, and a wrong one is refused with its path, the type wanted and the value given (issue 16, item 9)."""

from __future__ import annotations

from functools import cache
from typing import Any

from k8stars.kube import crds
from k8stars.kube.client import Obj

from .context import Refused

Schema = dict[str, Any]

_PYTHON = {"object": (dict,), "array": (list,), "string": (str,), "integer": (int,), "number": (int, float),
           "boolean": (bool,)}  # fmt: skip
_ARTICLE = {"object": "an object", "array": "an array", "string": "a string", "integer": "an integer",
            "number": "a number", "boolean": "a boolean"}  # fmt: skip
MAX_ERRORS = 5  # a message listing every wrong field of a large object would be unreadable


@cache
def _schemas() -> dict[tuple[str, str], Schema]:
    """(kind, version) → openAPIV3Schema of every served version, the converted ones included."""
    found: dict[tuple[str, str], Schema] = {}
    for crd in crds.all_crds():
        kind = crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            found[(kind, version["name"])] = version["schema"]["openAPIV3Schema"]
    for kind, versions in crds.CONVERTED.items():
        for name, schema in versions.items():
            found.setdefault((kind, name), schema())
    return found


def _type_name(value: object) -> str:
    for name, types in _PYTHON.items():
        if isinstance(value, types) and not (isinstance(value, bool) and name != "boolean"):
            return name
    return type(value).__name__


def _matches(value: object, schema: Schema) -> bool:
    if schema.get("x-kubernetes-int-or-string"):
        return isinstance(value, (int, str)) and not isinstance(value, bool)
    wanted = schema.get("type")
    if wanted is None:
        return True
    if isinstance(value, bool) and wanted != "boolean":
        return False
    return isinstance(value, _PYTHON.get(str(wanted), (object,)))


def _walk(value: object, schema: Schema, path: str, errors: list[str]) -> None:
    if value is None or len(errors) >= MAX_ERRORS:
        return  # null: the apiserver drops it (or refuses it) itself
    if not _matches(value, schema):
        wanted = "an integer or a string" if schema.get("x-kubernetes-int-or-string") else _ARTICLE[schema["type"]]
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
        errors.append(f"{path} must be {wanted}, not {_ARTICLE.get(_type_name(value), _type_name(value))} ({shown})")
        return
    if isinstance(value, dict):
        properties: Schema = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            sub = properties.get(key, extra if isinstance(extra, dict) else None)
            if sub is not None:
                _walk(item, sub, f"{path}.{key}" if path else str(key), errors)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            _walk(item, schema["items"], f"{path}[{i}]", errors)


def type_errors(obj: Obj) -> list[str]:
    """What in ``obj`` has another type than its CRD's schema (of the object's version) says; empty when all fit or
    the kind is not one of ours."""
    version = str(obj.get("apiVersion", "")).rsplit("/", 1)[-1]
    schema = _schemas().get((str(obj.get("kind", "")), version))
    if schema is None:
        return []
    errors: list[str] = []  # metadata is the apiserver's: it refuses a wrong type there itself
    body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}
    _walk(body, schema, "", errors)
    return errors[:MAX_ERRORS]


def check_types(obj: Obj) -> None:
    """Raise Refused naming the fields of a wrong type (see type_errors)."""
    errors = type_errors(obj)
    if errors:
        metadata = obj.get("metadata")
        name = f"{obj.get('kind', 'object')} {metadata.get('name', '') if isinstance(metadata, dict) else ''}".strip()
        raise Refused(f"{name} is invalid: " + "; ".join(errors))
