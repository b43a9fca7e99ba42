"""CustomResourceDefinitions of group k8s.tars.io: v1beta3 (stored) and every older version K8SFramework serves.

The schemas follow K8SFramework's CRDs field by field (names, types, defaults, patterns, bounds, short names,
printer columns, subresources), so that a YAML valid there is valid here. They are built from the small helpers
below. Older versions: TConfig, TTemplate, TImage, TEndpoint, TExitedRecord, TTree and TAccount serve v1beta1 and
v1beta2 with (nearly) v1beta3's schema and no conversion; TServer v1beta1/v1beta2 and TFrameworkConfig v1beta2
differ and are served only with the conversion webhook (`with_conversion`, k8stars/operator/conversion.py).

Generated from this module (`outputs()`): deploy/crds/*.yaml (every kind, for kubectl), the controller chart's crds/
(the kinds without conversion) and files/crds/ (TServer and TFrameworkConfig, plain and with the webhook, which the
chart's templates/crds.yaml completes with its Service and CA):

    python -m k8stars.kube.crds write [DIR]     # DIR: only every kind's CRD, into DIR
    python -m k8stars.kube.crds check [DIR]     # exit 1 when a file is stale or no longer generated

Where K8SFramework's schema has a typo that disables a rule (`require:` instead of `required:`, `parrern:`), the
rule is not enforced here either, so objects accepted there stay accepted; the operator and the webhook check those
fields.
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .meta import GROUP, VERSION

Schema = dict[str, Any]

# PyYAML ships no type information (and types-PyYAML may be absent): use it untyped.
yaml: Any = importlib.import_module("yaml")

# Patterns (Go RE2 syntax, evaluated by the apiserver).
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
SERVER_TYPES = ["cpp", "nodejs", "nodejs-pkg", "java-war", "java-jar", "go", "php"]


# --- schema helpers ---------------------------------------------------------------------------------------------
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


# --- shared pieces ----------------------------------------------------------------------------------------------
def _port_list(default_empty: bool) -> Schema:
    port = obj(
        {
            "name": string(DNS_LABEL, max_length=15),
            "port": integer(1, 65535),
            "isTcp": boolean(True),
        },
        required=["name", "port"],
    )
    return array(port, default=[] if default_empty else None)


def _servant() -> Schema:
    return obj(
        {
            "name": string(SERVANT_NAME),
            "port": integer(1, 65535),
            "thread": integer(1, 99, 3),
            "capacity": integer(1, 3000000, 10000),
            "connection": integer(1, 3000000, 10000),
            "isTars": boolean(True),
            "isTcp": boolean(True),
            "timeout": integer(-1, 6000000, 60000),
        },
        required=["name", "port"],
    )


def _key_ref() -> Schema:
    return obj(
        {
            "name": string(DNS_SUBDOMAIN, max_length=253),
            "key": string(MIXED_LABEL, max_length=63),
            "optional": boolean(True),
        },
        required=["name", "key"],
    )


def _env() -> Schema:
    value_from = obj(
        {
            "fieldRef": obj({"apiVersion": string(), "fieldPath": string()}),
            "resourceFieldRef": obj(
                {"containerName": string(), "resource": string(), "divisor": int_or_string(default="1")},
                required=["resource"],
            ),
            "configMapKeyRef": _key_ref(),
            "secretKeyRef": _key_ref(),
        },
        one_of=[["fieldRef"], ["resourceFieldRef"], ["configMapKeyRef"], ["secretKeyRef"]],
    )
    item = obj(
        {"name": string(ENV_NAME), "value": string(), "valueFrom": value_from},
        required=["name"],
        one_of=[["value"], ["valueFrom"]],
    )
    return array(item)


def _env_from() -> Schema:
    def ref() -> Schema:
        return obj({"name": string(DNS_SUBDOMAIN, max_length=253), "optional": boolean(True)}, required=["name"])

    item = obj(
        {"configMapRef": ref(), "secretRef": ref(), "prefix": string(r"^[A-Za-z][_0-9A-Za-z]*$", max_length=63)},
        one_of=[["configMapRef"], ["secretRef"]],
    )
    return array(item)


def _key_to_path() -> Schema:
    return obj(
        {"key": string(FILE_KEY), "path": string(), "mode": integer(0, 0o777, 0o644)},
        required=["key", "path"],
    )


def _label_map() -> Schema:
    return obj(additional=string(LABEL_VALUE, max_length=63))


def _storage_resources() -> Schema:
    storage = obj({"storage": int_or_string(QUANTITY)}, required=["storage"])
    return obj({"limits": storage, "requests": storage}, required=["requests"])


def _mount_source() -> Schema:
    return obj(
        {
            "configMap": obj(
                {
                    "name": string(),
                    "items": array(_key_to_path()),
                    "defaultMode": integer(0, 0o777, 0o644),
                    "optional": boolean(True),
                },
                required=["name"],
            ),
            "secret": obj(
                {
                    "secretName": string(),
                    "items": array(_key_to_path()),
                    "defaultMode": integer(0, 0o777, 0o644),
                    "optional": boolean(True),
                },
                required=["secretName"],
            ),
            "emptyDir": obj({"medium": string(enum=["", "Memory"]), "sizeLimit": int_or_string()}),
            "hostPath": obj(
                {
                    "path": string(),
                    "type": string(
                        enum=[
                            "",
                            "Directory",
                            "DirectoryOrCreate",
                            "FileOrCreate",
                            "File",
                            "Socket",
                            "CharDevice",
                            "BlockDevice",
                        ]
                    ),
                },
                required=["path", "type"],
            ),
            "persistentVolumeClaim": obj({"claimName": string(), "readOnly": boolean(False)}, required=["claimName"]),
            "persistentVolumeClaimTemplate": obj(
                {
                    "metadata": obj({"labels": _label_map(), "annotations": _label_map()}),
                    "spec": obj(
                        {
                            "accessModes": array(
                                string(enum=["ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany"]), min_items=1
                            ),
                            "volumeName": string(),
                            "storageClassName": string(),
                            "volumeMode": string(enum=["Block", "Filesystem"]),
                            "resources": _storage_resources(),
                            "selector": obj(
                                {
                                    "matchLabels": _label_map(),
                                    "matchExpressions": array(
                                        obj(
                                            {
                                                "key": string(LABEL_KEY, max_length=63),
                                                "operator": string(enum=["In", "NotIn", "Exists", "DoesNotExist"]),
                                                "values": array(string(LABEL_VALUE, max_length=63)),
                                            }
                                        )
                                    ),
                                }
                            ),
                        },
                        required=["accessModes", "resources"],
                    ),
                },
                required=["spec"],
            ),
            "tLocalVolume": obj(
                {
                    "uid": string(r"^(0|[1-9][0-9]{0,5})$", default="0"),
                    "gid": string(r"^(0|[1-9][0-9]{0,5})$", default="0"),
                    # K8SFramework spells this rule `parrern` (so does not enforce it): neither does this schema.
                    "mode": string(default="755"),
                }
            ),
        },
        one_of=[
            ["configMap"],
            ["secret"],
            ["persistentVolumeClaim"],
            ["persistentVolumeClaimTemplate"],
            ["hostPath"],
            ["emptyDir"],
            ["tLocalVolume"],
        ],
    )


def _mounts() -> Schema:
    item = obj(
        {
            "name": string(MIXED_LABEL, max_length=63),
            "source": _mount_source(),
            "readOnly": boolean(False),
            "mountPath": string(),
            "subPath": string(),
            "mountPropagation": string(enum=["None", "HostToContainer", "Bidirectional"]),
            "subPathExpr": string(),
        }
    )
    return array(item)


def _resources() -> Schema:
    def cpu_mem() -> Schema:
        return obj({"memory": string(QUANTITY), "cpu": string(QUANTITY)})

    return obj({"requests": cpu_mem(), "limits": cpu_mem()}, default={})


def _release(*, strict: bool) -> Schema:
    if not strict:  # TEndpoint mirrors without validation
        return obj({k: string() for k in ("id", "image", "secret", "time", "nodeImage", "nodeSecret")})
    return obj(
        {
            "id": string(RELEASE_ID, max_length=63),
            "image": string(IMAGE, max_length=500),
            "secret": string(OPTIONAL_SUBDOMAIN, max_length=253),
            "time": string(fmt="date-time"),
            "nodeImage": string(IMAGE, max_length=500),
            "nodeSecret": string(OPTIONAL_SUBDOMAIN, max_length=253),
        },
        required=["id", "image"],
    )


# --- kinds ------------------------------------------------------------------------------------------------------
def tserver_schema() -> Schema:
    tars = obj(
        {
            "profile": string(),
            "servants": array(_servant(), default=[]),
            "ports": _port_list(False),
            "asyncThread": integer(0, 50, 3),
            "template": string(DNS_SUBDOMAIN, max_length=253),
        },
        required=["servants", "template"],
    )
    normal = obj({"ports": _port_list(True)}, required=["ports"])
    k8s = obj(
        {
            "command": array(string()),
            "args": array(string()),
            "abilityAffinity": string(
                enum=["AppRequired", "ServerRequired", "AppOrServerPreferred", "None"], default="AppOrServerPreferred"
            ),
            "daemonSet": boolean(False),
            "env": _env(),
            "envFrom": _env_from(),
            "hostIPC": boolean(False),
            "hostNetwork": boolean(False),
            "hostPorts": array(
                obj(
                    {"nameRef": string(MIXED_LABEL, max_length=63), "port": integer(1, 65535)},
                    required=["nameRef", "port"],
                )
            ),
            "mounts": _mounts(),
            "nodeSelector": array(
                obj(
                    {
                        "key": string(LABEL_KEY, max_length=63),
                        "operator": string(enum=["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"]),
                        "values": array(string(LABEL_VALUE, max_length=63)),
                    }
                ),
                default=[],
            ),
            "notStacked": boolean(False),
            "podManagementPolicy": string(enum=["OrderedReady", "Parallel"], default="Parallel"),
            "readinessGates": array(string(LABEL_KEY, max_length=63)),
            "replicas": integer(0, 99),
            "resources": _resources(),
            "serviceAccount": string(MIXED_LABEL, max_length=63),
            "imagePullPolicy": string(enum=["Always", "Never", "IfNotPresent"], default="Always"),
            "launcherType": string(enum=["foreground", "background"], default="background"),
            "updateStrategy": obj(
                {
                    "type": string(enum=["RollingUpdate", "OnDelete"], default="RollingUpdate"),
                    "rollingUpdate": obj({"partition": integer(default=0)}, default={}),
                },
                default={},
            ),
        }
    )
    spec = obj(
        {
            "app": string(TARS_NAME, max_length=63),
            "server": string(TARS_NAME, max_length=63),
            "important": integer(1, 20, 3),
            "subType": string(enum=["tars", "normal"]),
            "tars": tars,
            "normal": normal,
            "k8s": k8s,
            "release": _release(strict=True),
        },
        required=["app", "server", "subType"],
        one_of=[["tars", "k8s"], ["normal", "k8s"]],
    )
    status = obj(
        {"replicas": integer(), "readyReplicas": integer(), "currentReplicas": integer(), "selector": string()},
        required=["replicas", "readyReplicas", "currentReplicas", "selector"],
    )
    return obj({"spec": spec, "status": status}, required=["spec"])


def tconfig_schema() -> Schema:
    return obj(
        {
            "app": string(TARS_NAME, max_length=63),
            "server": string(r"^([A-Za-z][0-9A-Za-z]*)?$", max_length=63, default=""),
            "configName": string(r"^([0-9A-Za-z][-._0-9A-Za-z]*)?[0-9A-Za-z]$", max_length=63),
            "configContent": string(max_length=1560000),
            "podSeq": string(r"^(m|0|[1-9][0-9]?)$", default="m"),
            "updateTime": string(fmt="date-time"),
            "updatePerson": string(max_length=100),
            "updateReason": string(max_length=1600),
            "activated": boolean(True),
            "version": string(DNS_LABEL, max_length=63),
        },
        required=["app", "configName", "configContent"],
    )


def ttemplate_schema() -> Schema:
    spec = obj(
        {"content": string(max_length=1560000), "parent": string(DNS_SUBDOMAIN, max_length=253)},
        required=["content", "parent"],
    )
    return obj({"spec": spec})


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


def tendpoint_schema() -> Schema:
    ports = array(obj({"name": string(), "port": integer(), "isTcp": boolean()}))
    servant = obj(
        {
            "name": string(),
            "port": integer(),
            "thread": integer(),
            "capacity": integer(),
            "connection": integer(),
            "isTars": boolean(),
            "isTcp": boolean(),
            "timeout": integer(),
        }
    )
    spec = obj(
        {
            "app": string(),
            "server": string(),
            "important": integer(),
            "subType": string(),
            "tars": obj(
                {
                    "profile": string(),
                    "servants": array(servant),
                    "ports": ports,
                    "asyncThread": integer(),
                    "template": string(),
                }
            ),
            "normal": obj({"ports": ports}),
            "hostPorts": array(obj({"nameRef": string(), "port": integer()})),
            "release": _release(strict=False),
        }
    )
    pod = obj(
        {
            "uid": string(),
            "pid": string(),
            "name": string(),
            "id": string(),
            "podIP": string(),
            "hostIP": string(),
            "startTime": string(),
            # The pods' container statuses as the kubelet reports them (kept whole: newer kubelets add fields).
            "containerStatuses": array(obj(preserve=True)),
            "settingState": string(),
            "presentState": string(),
            "presentMessage": string(),
        }
    )
    status = obj({"pods": array(pod)}, required=["pods"])
    return obj({"spec": spec, "status": status})


def texitedrecord_schema() -> Schema:
    pod = obj({k: string() for k in ("uid", "name", "id", "nodeIP", "podIP", "createTime", "deleteTime")})
    return obj(
        {"app": string(), "server": string(), "pods": array(pod, max_items=150)},
        required=["app", "server", "pods"],
    )


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


# --- older versions whose schema differs (served through the conversion webhook) ------------------------------
def _copy(schema: Schema) -> Schema:
    copied: Schema = json.loads(json.dumps(schema))
    return copied


def tserver_v1beta2_schema() -> Schema:
    """v1beta2 TServer: no k8s.command/args, one `readinessGate` string instead of the `readinessGates` list."""
    schema = _copy(tserver_schema())
    k8s = schema["properties"]["spec"]["properties"]["k8s"]["properties"]
    del k8s["command"], k8s["args"]
    k8s["readinessGate"] = k8s.pop("readinessGates")["items"]
    return schema


def tserver_v1beta1_schema() -> Schema:
    """v1beta1 TServer: v1beta2 without k8s.updateStrategy/imagePullPolicy/launcherType and release.nodeImage/
    nodeSecret, with release.source; mount names of 2-48 characters; no defaults for normal.ports and k8s.resources."""
    schema = tserver_v1beta2_schema()
    spec = schema["properties"]["spec"]["properties"]
    k8s = spec["k8s"]["properties"]
    for key in ("updateStrategy", "imagePullPolicy", "launcherType"):
        del k8s[key]
    del k8s["resources"]["default"], spec["normal"]["properties"]["ports"]["default"]
    k8s["mounts"]["items"]["properties"]["name"] = string(r"^[A-Za-z][-0-9A-Za-z]{1,47}$")
    release = spec["release"]["properties"]
    del release["nodeImage"], release["nodeSecret"]
    spec["release"]["properties"] = {"source": string(max_length=253), **release}
    return schema


def tframeworkconfig_v1beta2_schema() -> Schema:
    """v1beta2 TFrameworkConfig: `imageRegistry` (renamed imageUpload in v1beta3), no imageBuild.executor, idFormat
    defaulting to "", a nodeImage secret of at most 253 characters; imageBuild optional."""
    schema = _copy(tframeworkconfig_schema())
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


def timage_v1beta1_schema() -> Schema:
    """v1beta1 TImage: release images restricted to [.-:a-z] (no '-'), build.last.secret defaulting to ""."""
    schema = _copy(timage_schema())
    props = schema["properties"]
    props["releases"]["items"]["properties"]["image"] = string(r"^[\x2E-\x3A\x61-\x7A]*$", max_length=500)
    props["build"]["properties"]["last"]["properties"]["secret"]["default"] = ""
    return schema


# Printer columns of TServer before v1beta3.
OLD_TSERVER_COLUMNS = [
    column("App", "string", ".spec.app"),
    column("Server", "string", ".spec.server"),
    column("SubType", "string", ".spec.subType"),
    column("Replicas", "integer", ".spec.k8s.replicas"),
    column("Ready", "integer", ".status.readyReplicas"),
]

# The kinds whose older versions K8SFramework converts by webhook (their schemas differ from v1beta3's), with the
# schema of each older version. Without a conversion webhook their CRDs serve v1beta3 only.
CONVERTED: dict[str, dict[str, Callable[[], Schema]]] = {
    "TServer": {"v1beta1": tserver_v1beta1_schema, "v1beta2": tserver_v1beta2_schema},
    "TFrameworkConfig": {"v1beta2": tframeworkconfig_v1beta2_schema},
}

# Older versions K8SFramework serves with conversion None (a schema equal to v1beta3's, but for what is listed here).
LEGACY = ("v1beta1", "v1beta2")
LEGACY_SCHEMAS: dict[str, dict[str, Callable[[], Schema]]] = {"TImage": {"v1beta1": timage_v1beta1_schema}}


# --- the CRDs ---------------------------------------------------------------------------------------------------
def crd(
    kind: str,
    schema: Schema,
    *,
    short_names: Sequence[str] = (),
    columns: Sequence[dict[str, str]] = (),
    status: bool = False,
    scale: dict[str, str] | None = None,
    legacy: Sequence[str] = (),
) -> dict[str, Any]:
    """A CRD storing v1beta3; `legacy` versions are served too, deprecated, with the same schema (K8SFramework's
    older versions of these kinds differ from v1beta3 in nothing but the name: conversion None)."""
    plural = kind.lower() + "s"
    names: dict[str, Any] = {"kind": kind, "listKind": f"{kind}List", "plural": plural, "singular": kind.lower()}
    if short_names:
        names["shortNames"] = list(short_names)
    version: dict[str, Any] = {"name": VERSION, "served": True, "storage": True, "schema": {"openAPIV3Schema": schema}}
    subresources: dict[str, Any] = {}
    if status:
        subresources["status"] = {}
    if scale:
        subresources["scale"] = scale
    if subresources:
        version["subresources"] = subresources
    if columns:
        version["additionalPrinterColumns"] = list(columns)
    schemas = LEGACY_SCHEMAS.get(kind, {})
    versions = [legacy_version(version, kind, name, schemas[name]() if name in schemas else None) for name in legacy]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}", "labels": {"app.kubernetes.io/part-of": "k8stars"}},
        "spec": {"group": GROUP, "names": names, "scope": "Namespaced", "versions": [*versions, version]},
    }


def legacy_version(
    current: dict[str, Any],
    kind: str,
    name: str,
    schema: Schema | None = None,
    columns: Sequence[dict[str, str]] | None = None,
) -> dict[str, Any]:
    older: dict[str, Any] = json.loads(json.dumps(current))
    older.update(
        name=name,
        storage=False,
        deprecated=True,
        deprecationWarning=f"{GROUP}/{name} {kind} is deprecated; use {GROUP}/{VERSION} {kind}",
    )
    if schema is not None:
        older["schema"] = {"openAPIV3Schema": schema}
    if columns is not None:
        older["additionalPrinterColumns"] = list(columns)
    return older


CONVERSION_PATH = "/convert"


def with_conversion(
    manifest: dict[str, Any],
    url: str | None = None,
    ca_bundle: str = "",
    *,
    service: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The CRD of a kind in CONVERTED also serving its older versions, converted by the webhook at `url`
    (https://.../convert) or at a Service (`{name, namespace, path, port}`, as a Helm chart installs it)."""
    kind = manifest["spec"]["names"]["kind"]
    if kind not in CONVERTED:
        raise ValueError(f"{kind} needs no conversion webhook: its versions differ in name only")
    if (url is None) == (service is None):
        raise ValueError("with_conversion needs either url or service")
    converted: dict[str, Any] = json.loads(json.dumps(manifest))
    spec = converted["spec"]
    (current,) = [v for v in spec["versions"] if v["name"] == VERSION]
    columns = OLD_TSERVER_COLUMNS if kind == "TServer" else None
    older = [legacy_version(current, kind, name, make(), columns) for name, make in CONVERTED[kind].items()]
    spec["versions"] = [*older, current]
    client: dict[str, Any] = {"url": url} if url is not None else {"service": dict(service or {})}
    if ca_bundle:
        client["caBundle"] = ca_bundle
    spec["conversion"] = {
        "strategy": "Webhook",
        "webhook": {"conversionReviewVersions": ["v1"], "clientConfig": client},
    }
    return converted


def all_crds() -> list[dict[str, Any]]:
    """Every CRD of the group, in the order they are written and applied."""
    return [
        crd(
            "TServer",
            tserver_schema(),
            short_names=["ts"],
            status=True,
            scale={
                "specReplicasPath": ".spec.k8s.replicas",
                "statusReplicasPath": ".status.currentReplicas",
                "labelSelectorPath": ".status.selector",
            },
            columns=[
                column("App", "string", ".spec.app"),
                column("Server", "string", ".spec.server"),
                column("SubType", "string", ".spec.subType"),
                column("ReleaseImage", "string", ".spec.release.image"),
                column("NodeImage", "string", ".spec.release.nodeImage"),
                column("Template", "string", ".spec.tars.template"),
                column("Replicas", "integer", ".spec.k8s.replicas"),
                column("Ready", "integer", ".status.readyReplicas"),
            ],
        ),
        crd(
            "TConfig",
            tconfig_schema(),
            short_names=["tc"],
            legacy=LEGACY,
            columns=[
                column("App", "string", ".app"),
                column("Server", "string", ".server"),
                column("PodSeq", "string", ".podSeq"),
                column("ConfigName", "string", ".configName"),
                column("Version", "string", ".version"),
                column("Activated", "boolean", ".activated"),
            ],
        ),
        crd(
            "TTemplate",
            ttemplate_schema(),
            short_names=["tt"],
            columns=[column("Parent", "string", ".spec.parent")],
            legacy=LEGACY,
        ),
        crd("TImage", timage_schema(), short_names=["ti"], legacy=LEGACY),
        crd("TEndpoint", tendpoint_schema(), short_names=["te"], status=True, legacy=LEGACY),
        crd("TExitedRecord", texitedrecord_schema(), legacy=LEGACY),
        crd("TFrameworkConfig", tframeworkconfig_schema(), short_names=["tfc"]),
        crd("TTree", ttree_schema(), legacy=LEGACY),
        crd(
            "TAccount",
            taccount_schema(),
            short_names=["ta"],
            columns=[column("Username", "string", ".spec.username")],
            legacy=LEGACY,
        ),
    ]


# --- generated files --------------------------------------------------------------------------------------------
HEADER = "# Generated by `python -m k8stars.kube.crds write` from k8stars/kube/crds.py: edit that file, not this one.\n"
_DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
CHART = _DEPLOY / "helm" / "k8stars-controller"
# What the chart's template puts in place of this Service (its webhook Service) and caBundle (its generated CA).
CHART_SERVICE_PLACEHOLDER = {
    "name": "k8stars-webhook",
    "namespace": "tars-system",
    "path": CONVERSION_PATH,
    "port": 443,
}


def render(manifest: dict[str, Any]) -> str:
    # A JSON round trip unshares sub-schemas used twice, so that the YAML has no anchors or aliases.
    plain = json.loads(json.dumps(manifest))
    text: str = yaml.safe_dump(plain, sort_keys=False, width=120, allow_unicode=True)
    return HEADER + text


def _file_name(manifest: dict[str, Any], suffix: str = "") -> str:
    return f"{manifest['spec']['names']['singular']}{suffix}.yaml"


def files() -> dict[str, str]:
    """File name → YAML text of every CRD (v1beta3 and the older versions that need no conversion)."""
    return {_file_name(m): render(m) for m in all_crds()}


def outputs() -> dict[Path, str]:
    """Every generated file: deploy/crds (all kinds, for kubectl), the chart's crds/ (the kinds without conversion:
    Helm installs those before anything else and never changes them) and the chart's files/crds/ (the kinds with
    conversion, plain and with the webhook, rendered by templates/crds.yaml with the chart's Service and CA)."""
    out = {_DEPLOY / "crds" / name: text for name, text in files().items()}
    for manifest in all_crds():
        if manifest["spec"]["names"]["kind"] in CONVERTED:
            converted = with_conversion(manifest, service=CHART_SERVICE_PLACEHOLDER)
            out[CHART / "files" / "crds" / _file_name(manifest)] = render(manifest)
            out[CHART / "files" / "crds" / _file_name(manifest, "-conversion")] = render(converted)
        else:
            out[CHART / "crds" / _file_name(manifest)] = render(manifest)
    return out


def _strays(wanted: Mapping[Path, str]) -> list[Path]:
    """Generated-looking files in the output directories that are no longer generated."""
    directories = {path.parent for path in wanted}
    return sorted(
        path
        for directory in directories
        if directory.is_dir()
        for path in directory.glob("*.yaml")
        if path not in wanted and path.read_text().startswith(HEADER)
    )


def main(argv: Sequence[str]) -> int:
    command = argv[0] if argv else "check"
    if len(argv) > 1:  # one directory: every CRD as deploy/crds has them
        wanted = {Path(argv[1]) / name: text for name, text in files().items()}
    else:
        wanted = outputs()
    if command == "write":
        for path, text in wanted.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        for path in _strays(wanted):
            path.unlink()
        return 0
    if command == "check":
        stale = [p for p, t in wanted.items() if not p.is_file() or p.read_text() != t]
        for path in stale:
            print(f"stale: {path} (run python -m k8stars.kube.crds write)", file=sys.stderr)
        for path in _strays(wanted):
            print(f"no longer generated: {path} (run python -m k8stars.kube.crds write)", file=sys.stderr)
        return 1 if stale or _strays(wanted) else 0
    print("usage: python -m k8stars.kube.crds write|check [DIR]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
