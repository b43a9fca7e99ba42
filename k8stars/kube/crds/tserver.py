"""TServer (`ts`): one TARS or normal server; status and scale subresources. v1beta1 and v1beta2 differ from v1beta3
and are served only through the conversion webhook (k8stars/operator/conversion.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import pod
from .manifest import crd as make_crd
from .schema import (
    DNS_LABEL,
    DNS_SUBDOMAIN,
    IMAGE,
    LABEL_KEY,
    LABEL_VALUE,
    MIXED_LABEL,
    OPTIONAL_SUBDOMAIN,
    RELEASE_ID,
    SERVANT_NAME,
    TARS_NAME,
    Schema,
    array,
    boolean,
    column,
    copy_schema,
    integer,
    obj,
    string,
)


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


def release(*, strict: bool) -> Schema:
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
            "env": pod.env(),
            "envFrom": pod.env_from(),
            "hostIPC": boolean(False),
            "hostNetwork": boolean(False),
            "hostPorts": array(
                obj(
                    {"nameRef": string(MIXED_LABEL, max_length=63), "port": integer(1, 65535)},
                    required=["nameRef", "port"],
                )
            ),
            "mounts": pod.mounts(),
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
            "resources": pod.resources(),
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
            "release": release(strict=True),
        },
        required=["app", "server", "subType"],
        one_of=[["tars", "k8s"], ["normal", "k8s"]],
    )
    # K8SFramework's status fields, plus (ours) `conditions`: Ready with a reason and message saying what keeps the
    # server from serving its release (k8stars/operator/conditions.py); clients that don't know it ignore it.
    condition = obj({"type": string(), "status": string(enum=["True", "False", "Unknown"]), "reason": string(),
                     "message": string(), "lastTransitionTime": string(fmt="date-time")},
                    required=["type", "status"])  # fmt: skip
    conditions = array(condition)
    conditions["x-kubernetes-list-type"] = "map"
    conditions["x-kubernetes-list-map-keys"] = ["type"]
    status = obj(
        {"replicas": integer(), "readyReplicas": integer(), "currentReplicas": integer(), "selector": string(),
         "conditions": conditions},
        required=["replicas", "readyReplicas", "currentReplicas", "selector"],
    )  # fmt: skip
    return obj({"spec": spec, "status": status}, required=["spec"])


def tserver_v1beta2_schema() -> Schema:
    """v1beta2 TServer: no k8s.command/args, one `readinessGate` string instead of the `readinessGates` list."""
    schema = copy_schema(tserver_schema())
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


# The older versions and their schemas (served through the conversion webhook), and their printer columns.
OLDER_VERSIONS: dict[str, Callable[[], Schema]] = {"v1beta1": tserver_v1beta1_schema, "v1beta2": tserver_v1beta2_schema}
OLD_COLUMNS = [
    column("App", "string", ".spec.app"),
    column("Server", "string", ".spec.server"),
    column("SubType", "string", ".spec.subType"),
    column("Replicas", "integer", ".spec.k8s.replicas"),
    column("Ready", "integer", ".status.readyReplicas"),
]


def crd() -> dict[str, Any]:
    return make_crd(
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
    )
